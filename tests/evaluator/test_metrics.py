"""The metric catalogue, the text metrics (English and Korean) and the embedding metric on the packaged MiniLM."""

from __future__ import annotations

import pytest

from evaluator import text_metrics
from evaluator.generation import default_embedding_path
from evaluator.metrics import HEADLINE_METRIC_ORDER, METRICS, PRESET_LABELS, PRESETS
from evaluator.scoring import score_samples
from evaluator.scoring_types import EvalSample

KOREAN_REFERENCE = "대한민국의 수도는 서울입니다."
KOREAN_RESPONSE = "한국의 수도는 서울이에요."


def test_catalogue_is_consistent():
    assert set(METRICS) == {
        "faithfulness",
        "response_groundedness",
        "answer_relevancy",
        "coherence",
        "context_precision",
        "context_recall",
        "answer_correctness",
        "answer_accuracy",
        "exact_match",
        "rouge_l",
        "bleu",
        "chrf",
        "semantic_similarity",
    }
    for key, info in METRICS.items():
        assert info.key == key
        assert info.kind in {"llm", "embedding", "text"}
        assert info.needs <= {"reference", "contexts"}
        assert str(info.label) and str(info.description)
    assert set(PRESETS) == set(PRESET_LABELS) >= {"chatbot", "qa", "summarization", "custom"}
    assert PRESETS["custom"] == []
    assert all(key in METRICS for keys in PRESETS.values() for key in keys)
    assert set(HEADLINE_METRIC_ORDER) <= set(METRICS)
    assert HEADLINE_METRIC_ORDER[0] == "answer_accuracy"


def test_rouge_score_default_tokenizer_drops_korean_ours_does_not():
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rougeL"]).score(KOREAN_REFERENCE, KOREAN_RESPONSE)["rougeL"].fmeasure
    assert default == 0.0  # why text_metrics has its own tokenizer
    assert text_metrics.tokenize("서울은 Capital, naïve!") == ["서", "울", "은", "capital", "naïve"]


@pytest.mark.parametrize("key", ["rouge_l", "bleu", "chrf"])
def test_korean_pair_scores_above_zero_and_identical_scores_one(key):
    assert 0.0 < text_metrics.text_metric_score(key, KOREAN_RESPONSE, KOREAN_REFERENCE) < 1.0
    assert text_metrics.text_metric_score(key, KOREAN_REFERENCE, KOREAN_REFERENCE) == pytest.approx(1.0)


@pytest.mark.parametrize("key", ["rouge_l", "bleu", "chrf"])
def test_english_pairs(key):
    close = text_metrics.text_metric_score(key, "The cat sat on the mat.", "A cat sat on the mat.")
    far = text_metrics.text_metric_score(key, "Quantum chromodynamics is hard.", "A cat sat on the mat.")
    assert 0.0 <= far < close < 1.0
    assert text_metrics.text_metric_score(key, "Paris", "Paris") == pytest.approx(1.0)
    assert text_metrics.text_metric_score(key, "", "Paris") == 0.0


def test_exact_match():
    assert text_metrics.exact_match("  서울  입니다 ", "서울 입니다") == 1.0
    assert text_metrics.exact_match("Paris", "paris") == 0.0


def test_text_metrics_through_score_samples_need_no_judge():
    samples = [
        EvalSample(
            sample_id="en",
            question="Capital of France?",
            reference="Paris is the capital.",
            response="Paris is the capital.",
        ),
        EvalSample(sample_id="ko", question="수도는?", reference=KOREAN_REFERENCE, response=KOREAN_RESPONSE),
    ]
    progress = []
    scores = score_samples(
        samples,
        ["exact_match", "rouge_l", "bleu", "chrf"],
        judge=None,
        embedding_path=None,
        on_progress=lambda *args: progress.append(args),
    )
    found = {(s.sample_id, s.metric): s.value for s in scores}
    assert len(found) == 8
    assert all(found[("en", k)] == pytest.approx(1.0) for k in ["exact_match", "rouge_l", "bleu", "chrf"])
    assert found[("ko", "exact_match")] == 0.0
    assert all(found[("ko", k)] > 0.0 for k in ["rouge_l", "bleu", "chrf"])
    assert progress[-1][:2] == (8, 8)


def test_default_embedding_path_is_the_packaged_minilm():
    from pathlib import Path

    folder = Path(default_embedding_path())
    assert (folder / "config.json").is_file() and (folder / "modules.json").is_file()
    assert list(folder.glob("*.safetensors"))


def test_semantic_similarity_with_packaged_minilm():
    samples = [
        EvalSample(
            sample_id="same",
            question="q",
            reference="The capital of France is Paris.",
            response="The capital of France is Paris.",
        ),
        EvalSample(
            sample_id="close",
            question="q",
            reference="The capital of France is Paris.",
            response="Paris is France's capital city.",
        ),
        EvalSample(
            sample_id="far",
            question="q",
            reference="The capital of France is Paris.",
            response="Bananas are rich in potassium.",
        ),
        EvalSample(sample_id="ko", question="q", reference=KOREAN_REFERENCE, response=KOREAN_REFERENCE),
    ]
    scores = {
        s.sample_id: s.value for s in score_samples(samples, ["semantic_similarity"], judge=None, embedding_path=None)
    }
    assert scores["same"] == pytest.approx(1.0, abs=1e-4)
    assert scores["ko"] == pytest.approx(1.0, abs=1e-4)
    assert 0.0 <= scores["far"] < scores["close"] < 1.0
