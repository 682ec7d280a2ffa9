"""Score evaluator samples: the entry point the executor calls (no ragas import here).

Text metrics are computed here at once; judge and embedding metrics go to ``ragas_adapter``. Every
(sample, metric) asked gets exactly one SampleScore: a sample that lacks what a metric needs, or that the
judge could not score, is ``value=None`` with a reason, never dropped and never 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from evaluator.metrics import CONTEXTS, CUSTOM_PREFIX, METRICS, REFERENCE, metric_needs_embeddings
from evaluator.scoring_types import CustomCriterion, EvalSample, JudgeDown, LLMConfig, SampleScore, ScoringError
from evaluator.text_metrics import TEXT_METRICS, text_metric_score
from runs.messages import Message

MISSING_REASONS = {
    REFERENCE: "the sample has no reference answer",
    CONTEXTS: "the sample has no retrieved contexts",
}


def missing_input(sample: EvalSample, key: str) -> str:
    """Why ``sample`` cannot be scored on ``key`` without calling anything, or ""."""
    if not (sample.response or "").strip():
        return "no response to score"
    if key.startswith(CUSTOM_PREFIX):
        return ""
    for need in sorted(METRICS[key].needs):
        if need == REFERENCE and not (sample.reference or "").strip():
            return MISSING_REASONS[REFERENCE]
        if need == CONTEXTS and not any((c or "").strip() for c in sample.contexts):
            return MISSING_REASONS[CONTEXTS]
    return ""


def score_samples(
    samples: Sequence[EvalSample],
    metric_keys: Sequence[str],
    *,
    judge: LLMConfig | None,
    embedding_path: str | None,
    custom_criteria: Sequence[CustomCriterion] = (),
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[SampleScore]:
    """One SampleScore per (sample, metric); raises ScoringError when the run as a whole cannot work."""
    criteria = {c.key: c for c in custom_criteria}
    keys = list(dict.fromkeys(metric_keys))
    unknown = [k for k in keys if k not in METRICS and k not in criteria]
    if unknown:
        raise ScoringError(Message("scoring.unknown_metric", metrics=", ".join(unknown)))
    bad_criteria = [
        c.key for c in custom_criteria if not c.key.startswith(CUSTOM_PREFIX) or c.kind not in {"aspect", "rubric"}
    ]
    if bad_criteria:
        raise ScoringError(Message("scoring.bad_criteria", keys=", ".join(bad_criteria)))

    results: list[SampleScore] = []
    remote_jobs: list[tuple[EvalSample, str]] = []
    for sample in samples:
        for key in keys:
            missing = missing_input(sample, key)
            if missing:
                results.append(SampleScore(sample_id=sample.sample_id, metric=key, value=None, unscored_reason=missing))
            elif key in TEXT_METRICS:
                value = text_metric_score(key, sample.response, sample.reference)
                results.append(SampleScore(sample_id=sample.sample_id, metric=key, value=value))
            else:
                remote_jobs.append((sample, key))

    total = len(samples) * len(keys)
    if not remote_jobs:
        if on_progress is not None:
            on_progress(total, total, Message("progress.text_metrics"))
        return results

    needs_judge = sorted({k for _, k in remote_jobs if k != "semantic_similarity"})
    if needs_judge and judge is None:
        raise ScoringError("these metrics need a judge LLM: " + ", ".join(needs_judge))
    if any(metric_needs_embeddings(k) for _, k in remote_jobs):
        if not embedding_path:
            from evaluator.generation import default_embedding_path

            embedding_path = default_embedding_path()

    from evaluator import ragas_adapter

    try:
        results.extend(
            ragas_adapter.score_with_ragas(
                samples,
                remote_jobs,
                judge=judge,
                embedding_path=embedding_path,
                criteria=criteria,
                on_progress=on_progress,
                should_stop=should_stop,
                progress_offset=total - len(remote_jobs),
                progress_total=total,
            )
        )
    except JudgeDown as down:
        down.scores = results + down.scores  # the text metrics were computed all the same
        raise
    return results
