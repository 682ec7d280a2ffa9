"""Evaluator runs: ``execute_evaluation(run, context) -> RunOutcome`` (``settings.RUN_EXECUTORS["evaluator"]``).

Thin on purpose: read the frozen spec and the dataset version's rows, get a response per row (the
dataset's own, or the model under test's), score them with the engine, and return an outcome holding
per-metric aggregates as Score rows (task "evaluator", from ``evaluator.aggregates``) and one record per
sample. Nothing is written here: ``run_finish`` stores the records (``evaluator.ingest``) in the
transaction that ends the run, so a cancel before then leaves no rows, and a retry replaces them.

``run.spec`` (JSON, frozen by ``evaluator.services.evaluation_submit``): ``dataset_version_id``,
``target`` (``{"kind": "precomputed"}``, ``{"kind": "endpoint", "endpoint": {...}}`` or
``{"kind": "registered_model", "model_path": ...}``), ``judge`` (endpoint spec or None),
``embedding_path``, ``metrics``, ``custom_criteria``, ``prompt_template``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

from evaluator.aggregates import metric_summary
from evaluator.endpoints import EndpointRefused, endpoint_config
from evaluator.generation import generate_responses
from evaluator.models import DatasetRow
from evaluator.scoring import score_samples
from evaluator.scoring_types import CustomCriterion, EvalSample, JudgeDown, LLMConfig, SampleScore, ScoringError
from runs.executors import EvaluationFailed, RunContext, RunOutcome, ScoreRow
from runs.messages import Message, message_of, message_parse

SCORE_TASK = "evaluator"


def _target_config(target: dict[str, Any]) -> LLMConfig | None:
    if target["kind"] == "precomputed":
        return None
    if target["kind"] == "endpoint":
        return endpoint_config(target["endpoint"])
    return LLMConfig(
        kind="local",
        model_name=target.get("model_name", ""),
        local_path=target["model_path"],
        max_concurrency=1,
        max_tokens=target.get("max_tokens", 256),
    )


def _endpoint_configs(spec: dict[str, Any]) -> tuple[LLMConfig | None, LLMConfig | None]:
    """The model under test's and the judge's configs. Here, on the worker, before any call: each endpoint's
    base URL is checked against ENDPOINT_ALLOWED_HOSTS and its key resolved from where the spec says (never
    from the spec itself)."""
    try:
        target = _target_config(spec["target"])
    except EndpointRefused as exc:
        raise EvaluationFailed(Message("evaluator.target_refused", reason=message_of(exc))) from exc
    try:
        judge = endpoint_config(spec["judge"]) if spec.get("judge") else None
    except EndpointRefused as exc:
        raise EvaluationFailed(Message("evaluator.judge_refused", reason=message_of(exc))) from exc
    return target, judge


def _progress_note(code: str, note: Any) -> Message:
    """A phase's progress note; the engine's own note inside it (a message, or text recognised when it can be)."""
    inner = note if isinstance(note, Message) else (message_parse(str(note)) or str(note or ""))
    return Message(code, note=inner)


def execute_evaluation(run: Any, context: RunContext) -> RunOutcome:
    spec = run.spec
    started = time.monotonic()
    rows = list(DatasetRow.objects.filter(version_id=spec["dataset_version_id"]).order_by("position"))
    if not rows:
        raise EvaluationFailed(Message("evaluator.no_rows"))
    samples = [
        EvalSample(
            sample_id=str(r.pk),
            question=r.question,
            reference=r.reference,
            contexts=tuple(r.contexts),
            response=r.response,
        )
        for r in rows
    ]
    target, judge = _endpoint_configs(spec)

    generation_errors: dict[str, str] = {}
    timings = {}
    if target is not None:
        context.log(f"Generating {len(samples)} responses with {target.model_name or 'a local model'}")
        generated = generate_responses(
            samples,
            target=target,
            prompt_template=spec["prompt_template"],
            on_progress=lambda d, t, n: context.progress(d, t, _progress_note("progress.generating", n)),
            should_stop=context.is_cancelled,
        )
        by_id = {g.sample_id: g for g in generated}
        samples = [replace(s, response=by_id[s.sample_id].response) for s in samples]
        generation_errors = {g.sample_id: g.error for g in generated if g.error}
        timings["generation_s"] = round(time.monotonic() - started, 2)
        context.raise_if_cancelled()
        if len(generation_errors) == len(samples):
            raise EvaluationFailed(Message("evaluator.no_response", error=next(iter(generation_errors.values()))))

    metric_keys = list(spec["metrics"])
    criteria = [
        CustomCriterion(
            key=c["key"],
            name=c["name"],
            definition=c["definition"],
            kind=c.get("kind", "aspect"),
            rubric=c.get("rubric") or {},
        )
        for c in spec.get("custom_criteria", [])
    ]
    keys = metric_keys + [c.key for c in criteria]
    answered = [s for s in samples if s.sample_id not in generation_errors]
    scoring_started = time.monotonic()
    judge_down: Message | str = ""
    try:
        scores = score_samples(
            answered,
            keys,
            judge=judge,
            embedding_path=spec.get("embedding_path"),
            custom_criteria=criteria,
            on_progress=lambda d, t, n: context.progress(d, t, _progress_note("progress.scoring", n)),
            should_stop=context.is_cancelled,
        )
    except JudgeDown as down:  # stored below, so that the results page shows each sample's reason
        scores, judge_down = down.scores, message_of(down)
    except ScoringError as exc:
        raise EvaluationFailed(message_of(exc)) from exc
    context.raise_if_cancelled()
    timings["scoring_s"] = round(time.monotonic() - scoring_started, 2)
    for sample_id, error in generation_errors.items():
        scores += [
            SampleScore(
                sample_id=sample_id,
                metric=key,
                value=None,
                unscored_reason=f"the model under test gave no response: {error}",
            )
            for key in keys
        ]
    for score in scores:  # never a NaN in the tables: a metric that gave up is unscored, with why
        if score.value is not None and math.isnan(score.value):
            score.value = None
            score.unscored_reason = score.unscored_reason or "the judge gave no valid score"
    return _outcome(
        keys=keys,
        samples=samples,
        scores=scores,
        generation_errors=generation_errors,
        context=context,
        timings={**timings, "seconds": round(time.monotonic() - started, 2)},
        judge_down=judge_down,
    )


def _outcome(
    *,
    keys: list[str],
    samples: list[EvalSample],
    scores: list[SampleScore],
    generation_errors: dict[str, str],
    context: RunContext,
    timings: dict[str, float],
    judge_down: Message | str,
) -> RunOutcome:
    """The run's outcome: per-metric Score rows (evaluator.aggregates) and the per-sample records, which
    ``run_finish`` stores in its transaction (evaluator.ingest), so a run cancelled before then keeps none.

    A run fails, its samples kept so that the page shows each reason, when the judge went down or when no
    (sample, metric) at all could be scored: a run with no number is not a success (see README, Evaluator).
    """
    per_metric: dict[str, list[float]] = {key: [] for key in keys}
    unscored: dict[str, int] = {key: 0 for key in keys}
    for score in scores:
        if score.value is None or score.unscored_reason:
            unscored[score.metric] += 1
        else:
            per_metric[score.metric].append(score.value)
    summaries = [metric_summary(key=key, values=per_metric[key], unscored=unscored[key]) for key in keys]
    context.log(", ".join(f"{s.key}: {s.scored} scored, {s.unscored} unscored" for s in summaries))
    outcome = RunOutcome(
        scores=[
            ScoreRow(task=SCORE_TASK, metric=s.key, value=s.mean, stderr=s.stderr, sample_count=s.scored)
            for s in summaries
        ],
        details={
            "samples": len(samples),
            "scored": {s.key: s.scored for s in summaries},
            "unscored": unscored,
            "generation_errors": len(generation_errors),
            **timings,
        },
        samples=_sample_records(samples=samples, scores=scores, generation_errors=generation_errors),
    )
    if judge_down:
        raise EvaluationFailed(judge_down, outcome=replace(outcome, scores=[]))
    if scores and not any(s.scored for s in summaries):
        first = next((s.unscored_reason for s in scores if s.unscored_reason), "")
        reason = message_parse(first) or first  # a sample's reason is stored as text: recognised when known
        raise EvaluationFailed(
            Message("evaluator.all_unscored", n=len(scores), reason=reason), outcome=replace(outcome, scores=[])
        )
    return outcome


def _sample_records(
    *, samples: list[EvalSample], scores: list[SampleScore], generation_errors: dict[str, str]
) -> list[dict[str, Any]]:
    """One JSON record per sample with its scores: what ``evaluator.ingest`` stores."""
    by_sample: dict[str, list[dict[str, Any]]] = {s.sample_id: [] for s in samples}
    for score in scores:
        by_sample[score.sample_id].append(
            {
                "metric": score.metric,
                "value": score.value,
                "reason": score.reason,
                "raw_output": score.raw_output,
                "unscored_reason": score.unscored_reason,
            }
        )
    return [
        {
            "row_id": int(s.sample_id),
            "response": s.response,
            "generation_error": generation_errors.get(s.sample_id, ""),
            "scores": by_sample[s.sample_id],
        }
        for s in samples
    ]
