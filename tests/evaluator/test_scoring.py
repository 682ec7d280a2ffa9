"""score_samples with real ragas against the loopback judge (real HTTP), and a tiny local model as judge."""

from __future__ import annotations

import socket
import time

import pytest

from evaluator.metrics import METRICS
from evaluator.scoring import score_samples
from evaluator.scoring_types import CustomCriterion, EvalSample, JudgeDown, LLMConfig, ScoringError
from tests.evaluator.loopback_judge import GARBAGE_TEXT, LoopbackJudge

LLM_METRICS = [k for k, m in METRICS.items() if m.kind == "llm"] + ["answer_relevancy"]
CRITERIA = [
    CustomCriterion(key="custom:polite", name="Polite", definition="The answer is polite {and} respectful."),
    CustomCriterion(
        key="custom:detail",
        name="Detail",
        definition="The answer gives enough detail.",
        kind="rubric",
        rubric={"1": "no detail", "3": "some detail", "5": "complete detail"},
    ),
]


def make_samples(n: int) -> list[EvalSample]:
    samples = []
    for i in range(n):
        if i % 2:
            samples.append(
                EvalSample(
                    sample_id=str(i),
                    question=f"What is the capital of country number {i}?",
                    reference=f"The capital of country {i} is City {i}.",
                    contexts=(f"Country {i} has City {i} as its capital.", "Rivers cross the plains."),
                    response=f"City {i} is the capital.",
                )
            )
        else:
            samples.append(
                EvalSample(
                    sample_id=str(i),
                    question=f"대한민국의 수도는 어디인가요? ({i})",
                    reference="대한민국의 수도는 서울입니다.",
                    contexts=("서울은 대한민국의 수도이다.", f"부산은 항구 도시이다 {i}."),
                    response=f"수도는 서울입니다 {i}.",
                )
            )
    return samples


def judge_config(judge: LoopbackJudge, **overrides) -> LLMConfig:
    values = dict(
        kind="openai",
        model_name="loopback-judge",
        base_url=judge.base_url,
        timeout_s=10.0,
        max_concurrency=3,
        max_retries=1,
    )
    values.update(overrides)
    return LLMConfig(**values)


def by_key(scores):
    return {(s.sample_id, s.metric): s for s in scores}


def test_every_llm_metric_scores_in_range_with_reasons_and_bounded_concurrency():
    samples = make_samples(4)
    keys = LLM_METRICS + [c.key for c in CRITERIA]
    progress = []
    with LoopbackJudge(delay=0.05) as judge:
        scores = score_samples(
            samples,
            keys,
            judge=judge_config(judge),
            embedding_path=None,
            custom_criteria=CRITERIA,
            on_progress=lambda done, total, note: progress.append((done, total, note)),
        )
        stats = judge.stats()
        bodies = list(judge.requests)
    found = by_key(scores)
    assert len(scores) == len(found) == len(samples) * len(keys)
    for score in scores:
        assert score.value is not None, (score.metric, score.unscored_reason)
        assert 0.0 <= score.value <= 1.0
    for key in [
        "faithfulness",
        "context_precision",
        "context_recall",
        "coherence",
        "custom:polite",
        "custom:detail",
        "answer_correctness",
        "answer_relevancy",
    ]:
        assert all(found[(s.sample_id, key)].reason for s in samples), key
    # A rubric score s in 1..5 is stored as (s - 1) / 4.
    assert {found[(s.sample_id, "custom:detail")].value for s in samples} <= {0.0, 0.25, 0.5, 0.75, 1.0}
    # The loopback judge answers differently for different prompts: not every sample scores the same.
    assert (
        len(
            {found[(s.sample_id, "faithfulness")].value for s in samples}
            | {found[(s.sample_id, "context_recall")].value for s in samples}
        )
        > 1
    )
    # The judge's Korean text comes back through JSON parsing into the stored reasons.
    assert "판단" in found[(samples[0].sample_id, "faithfulness")].reason
    # Concurrency: never above max_concurrency, and the pool keeps it full.
    assert stats["peak_in_flight"] == 3
    assert progress[-1][0] == progress[-1][1] == len(scores)
    # Korean text reaches the judge intact, with our instruction on languages in the system message.
    assert any("대한민국의 수도는" in m["content"] for b in bodies for m in b["messages"])
    assert all("Korean" in b["messages"][0]["content"] for b in bodies)


def test_single_call_metrics_keep_the_judge_saturated():
    samples = make_samples(24)
    with LoopbackJudge(delay=0.05) as judge:
        started = time.monotonic()
        scores = score_samples(
            samples, ["coherence", "context_recall"], judge=judge_config(judge, max_concurrency=4), embedding_path=None
        )
        elapsed = time.monotonic() - started
        stats = judge.stats()
    assert all(s.value is not None for s in scores)
    assert stats["calls"] == 48
    assert stats["peak_in_flight"] == 4
    ideal = stats["calls"] * 0.05 / 4
    assert elapsed < ideal * 3 + 1.0, (elapsed, ideal)


@pytest.mark.parametrize(
    "keys", [["answer_accuracy", "faithfulness", "coherence", "custom:detail", "answer_relevancy"]]
)
def test_garbage_output_leaves_samples_unscored_with_reason_and_raw_text(keys):
    samples = make_samples(2)
    with LoopbackJudge(garbage=1.0) as judge:
        scores = score_samples(samples, keys, judge=judge_config(judge), embedding_path=None, custom_criteria=CRITERIA)
    assert len(scores) == len(samples) * len(keys)
    for score in scores:
        assert score.value is None
        assert "judge output is not valid JSON for" in score.unscored_reason, score.unscored_reason
        assert score.raw_output == GARBAGE_TEXT


def test_some_garbage_some_scored_none_dropped():
    samples = make_samples(12)
    with LoopbackJudge(garbage=0.5) as judge:
        scores = score_samples(samples, ["coherence"], judge=judge_config(judge), embedding_path=None)
    assert len(scores) == 12
    unscored = [s for s in scores if s.value is None]
    assert 0 < len(unscored) < 12
    assert all("not valid JSON for DiscreteResponseModel" in s.unscored_reason for s in unscored)


def test_http_500_after_retries_is_unscored_and_not_retried_by_ragas_again():
    samples = make_samples(2)
    with LoopbackJudge(mode="500") as judge:
        with pytest.raises(JudgeDown) as down:
            score_samples(
                samples, ["answer_accuracy", "coherence"], judge=judge_config(judge, max_retries=1), embedding_path=None
            )
        calls = judge.calls
    scores = down.value.scores
    assert len(scores) == 4 and "answered none of 4 calls" in str(down.value)
    for score in scores:
        assert score.value is None
        assert "HTTP 500 after 2 attempts" in score.unscored_reason, score.unscored_reason
    # 4 jobs x 2 attempts: answer accuracy's own re-asks do not call a failed judge again.
    assert calls == 8


def test_a_judge_that_keeps_failing_stops_being_called():
    samples = make_samples(12)
    with LoopbackJudge(mode="500") as judge:
        with pytest.raises(JudgeDown) as down:
            score_samples(
                samples, ["coherence"], judge=judge_config(judge, max_retries=0, max_concurrency=1), embedding_path=None
            )
        calls = judge.calls
    scores = down.value.scores
    assert calls == 8  # the breaker: max(8, 2 x concurrency) failures in a row
    assert all(s.value is None for s in scores)
    skipped = [s for s in scores if s.unscored_reason.startswith("not tried: the judge failed 8 calls in a row")]
    assert len(skipped) == 4


def test_transient_500_is_retried():
    samples = make_samples(2)
    with LoopbackJudge(fail_first=2) as judge:
        scores = score_samples(
            samples, ["coherence"], judge=judge_config(judge, max_retries=2, max_concurrency=1), embedding_path=None
        )
    assert all(s.value is not None for s in scores)


def test_timeout_is_unscored_with_reason():
    samples = make_samples(2)
    with LoopbackJudge(mode="hang", hang_s=5) as judge:
        with pytest.raises(JudgeDown) as down:
            score_samples(
                samples,
                ["coherence", "rouge_l"],
                judge=judge_config(judge, timeout_s=0.5, max_retries=0),
                embedding_path=None,
            )
    text_scores = [s for s in down.value.scores if s.metric == "rouge_l"]
    scores = [s for s in down.value.scores if s.metric == "coherence"]
    assert len(text_scores) == 2 and all(s.value is not None for s in text_scores)  # kept, though the judge was down
    assert [s.value for s in scores] == [None, None]
    assert all("did not answer within 0.5 s" in s.unscored_reason for s in scores)


def test_missing_inputs_are_unscored_without_calling_the_judge():
    sample = EvalSample(sample_id="1", question="Q?", response="A.")
    empty = EvalSample(sample_id="2", question="Q?", reference="R", contexts=("c",), response="")
    with LoopbackJudge() as judge:
        scores = score_samples(
            [sample, empty],
            ["answer_accuracy", "faithfulness", "rouge_l"],
            judge=judge_config(judge),
            embedding_path=None,
        )
        assert judge.calls == 0
    found = by_key(scores)
    assert found[("1", "answer_accuracy")].unscored_reason == "the sample has no reference answer"
    assert found[("1", "faithfulness")].unscored_reason == "the sample has no retrieved contexts"
    assert found[("2", "rouge_l")].unscored_reason == "no response to score"
    assert all(s.value is None for s in scores)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_whole_run_problems_raise_scoring_error(tmp_path):
    samples = make_samples(1)
    unreachable = LLMConfig(
        kind="openai", model_name="m", base_url=f"http://127.0.0.1:{_closed_port()}/v1", timeout_s=2
    )
    with pytest.raises(ScoringError, match="the judge could not be reached"):
        score_samples(samples, ["coherence"], judge=unreachable, embedding_path=None)
    with pytest.raises(ScoringError, match="unknown metric: nope"):
        score_samples(samples, ["nope"], judge=None, embedding_path=None)
    with pytest.raises(ScoringError, match="need a judge"):
        score_samples(samples, ["faithfulness"], judge=None, embedding_path=None)
    with pytest.raises(ScoringError, match="does not exist"):
        score_samples(samples, ["semantic_similarity"], judge=None, embedding_path=str(tmp_path / "missing"))
    with LoopbackJudge() as judge, pytest.raises(ScoringError, match="does not serve model 'other'"):
        score_samples(samples, ["coherence"], judge=judge_config(judge, model_name="other"), embedding_path=None)


def test_should_stop_cancels_and_keeps_every_pair():
    samples = make_samples(30)
    with LoopbackJudge(delay=0.2) as judge:
        scores = score_samples(
            samples,
            ["coherence"],
            judge=judge_config(judge, max_concurrency=2),
            embedding_path=None,
            should_stop=lambda: True,
        )
        calls = judge.calls
    assert len(scores) == 30
    assert calls < 30
    assert any("cancelled" in s.unscored_reason for s in scores)


@pytest.mark.slow
def test_tiny_local_model_as_judge_ends_unscored_with_raw_output(tiny_model):
    samples = make_samples(2)
    judge = LLMConfig(
        kind="local", local_path=str(tiny_model), max_tokens=12, timeout_s=60, max_concurrency=2, max_retries=0
    )
    scores = score_samples(samples, ["coherence", "answer_accuracy"], judge=judge, embedding_path=None)
    assert len(scores) == 4
    for score in scores:
        assert score.value is None
        assert "judge output is not valid JSON for" in score.unscored_reason, score.unscored_reason
    assert any(score.raw_output for score in scores)
