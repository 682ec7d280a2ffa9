"""Evaluator runs: ``execute_evaluation(run, context) -> RunOutcome`` (``settings.RUN_EXECUTORS["evaluator"]``).

Thin on purpose: read the frozen spec and the dataset version's rows, get a response per row (the
dataset's own, or the model under test's), score them with the engine, store one SampleResult and one
MetricScore per (row, metric), and return per-metric aggregates as Score rows (task "evaluator").
Storing is idempotent: a retried run replaces what an earlier attempt stored, in one transaction.

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

from django.db import transaction

from evaluator.endpoints import EndpointRefused, endpoint_config
from evaluator.generation import generate_responses
from evaluator.models import DatasetRow, MetricScore, SampleResult
from evaluator.scoring import score_samples
from evaluator.scoring_types import CustomCriterion, EvalSample, JudgeDown, LLMConfig, SampleScore, ScoringError
from runs.executors import EvaluationFailed, RunContext, RunOutcome, ScoreRow
from runs.messages import Message, message_of

SCORE_TASK = "evaluator"


def _target_config(target: dict[str, Any]) -> LLMConfig | None:
    if target["kind"] == "precomputed":
        return None
    if target["kind"] == "endpoint":
        return endpoint_config(target["endpoint"])
    return LLMConfig(kind="local", model_name=target.get("model_name", ""), local_path=target["model_path"],
                     max_concurrency=1, max_tokens=target.get("max_tokens", 256))


def _progress_note(code: str, note: Any) -> Message:
    """A phase's progress note; the engine's own note inside it (a message, or text recognised when it can be)."""
    from runs.messages import message_parse

    inner = note if isinstance(note, Message) else (message_parse(str(note)) or str(note or ""))
    return Message(code, note=inner)


def aggregate(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and its standard error over the scored samples (None when there are none)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def execute_evaluation(run: Any, context: RunContext) -> RunOutcome:
    spec = run.spec
    started = time.monotonic()
    rows = list(DatasetRow.objects.filter(version_id=spec["dataset_version_id"]).order_by("position"))
    if not rows:
        raise EvaluationFailed(Message("evaluator.no_rows"))
    samples = [EvalSample(sample_id=str(r.pk), question=r.question, reference=r.reference,
                          contexts=tuple(r.contexts), response=r.response) for r in rows]
    # Here, on the worker, before any call: each endpoint's base URL is checked against ENDPOINT_ALLOWED_HOSTS
    # and its key resolved from where the spec says (never from the spec itself).
    try:
        target = _target_config(spec["target"])
    except EndpointRefused as exc:
        raise EvaluationFailed(Message("evaluator.target_refused", reason=message_of(exc))) from exc
    try:
        judge = endpoint_config(spec["judge"]) if spec.get("judge") else None
    except EndpointRefused as exc:
        raise EvaluationFailed(Message("evaluator.judge_refused", reason=message_of(exc))) from exc

    generation_errors: dict[str, str] = {}
    timings = {}
    if target is not None:
        context.log(f"Generating {len(samples)} responses with {target.model_name or 'a local model'}")
        generated = generate_responses(samples, target=target, prompt_template=spec["prompt_template"],
                                       on_progress=lambda d, t, n: context.progress(d, t, _progress_note("progress.generating", n)),
                                       should_stop=context.is_cancelled)
        by_id = {g.sample_id: g for g in generated}
        samples = [replace(s, response=by_id[s.sample_id].response) for s in samples]
        generation_errors = {g.sample_id: g.error for g in generated if g.error}
        timings["generation_s"] = round(time.monotonic() - started, 2)
        context.raise_if_cancelled()
        if len(generation_errors) == len(samples):
            raise EvaluationFailed(Message("evaluator.no_response", error=next(iter(generation_errors.values()))))

    metric_keys = list(spec["metrics"])
    criteria = [CustomCriterion(key=c["key"], name=c["name"], definition=c["definition"], kind=c.get("kind", "aspect"),
                                rubric=c.get("rubric") or {}) for c in spec.get("custom_criteria", [])]
    keys = metric_keys + [c.key for c in criteria]
    answered = [s for s in samples if s.sample_id not in generation_errors]
    scoring_started = time.monotonic()
    judge_down: Message | str = ""
    try:
        scores = score_samples(answered, keys, judge=judge, embedding_path=spec.get("embedding_path"),
                               custom_criteria=criteria,
                               on_progress=lambda d, t, n: context.progress(d, t, _progress_note("progress.scoring", n)),
                               should_stop=context.is_cancelled)
    except JudgeDown as down:  # stored below, so that the results page shows each sample's reason
        scores, judge_down = down.scores, message_of(down)
    except ScoringError as exc:
        raise EvaluationFailed(message_of(exc)) from exc
    context.raise_if_cancelled()
    timings["scoring_s"] = round(time.monotonic() - scoring_started, 2)
    for sample_id, error in generation_errors.items():
        scores += [SampleScore(sample_id=sample_id, metric=key, value=None,
                               unscored_reason=f"the model under test gave no response: {error}") for key in keys]

    for score in scores:  # never a NaN in the tables: a metric that gave up is unscored, with why
        if score.value is not None and math.isnan(score.value):
            score.value = None
            score.unscored_reason = score.unscored_reason or "the judge gave no valid score"
    _results_store(run_id=run.pk, samples=samples, scores=scores, generation_errors=generation_errors)
    if judge_down:
        raise EvaluationFailed(judge_down)
    per_metric: dict[str, list[float]] = {key: [] for key in keys}
    unscored: dict[str, int] = {key: 0 for key in keys}
    for score in scores:
        if score.value is None or score.unscored_reason:
            unscored[score.metric] += 1
        else:
            per_metric[score.metric].append(score.value)
    rows_out = []
    for key in keys:
        mean, stderr = aggregate(per_metric[key])
        rows_out.append(ScoreRow(task=SCORE_TASK, metric=key, value=mean, stderr=stderr,
                                 sample_count=len(per_metric[key])))
    context.log(", ".join(f"{key}: {len(per_metric[key])} scored, {unscored[key]} unscored" for key in keys))
    return RunOutcome(scores=rows_out, details={
        "samples": len(samples), "scored": {k: len(v) for k, v in per_metric.items()}, "unscored": unscored,
        "generation_errors": len(generation_errors), **timings, "seconds": round(time.monotonic() - started, 2),
    })


def _results_store(*, run_id: int, samples: list[EvalSample], scores: list[SampleScore],
                   generation_errors: dict[str, str]) -> None:
    with transaction.atomic():
        SampleResult.objects.filter(run_id=run_id).delete()
        results = SampleResult.objects.bulk_create([
            SampleResult(run_id=run_id, row_id=int(s.sample_id), response=s.response,
                         generation_error=generation_errors.get(s.sample_id, ""))
            for s in samples
        ])
        by_row = {str(r.row_id): r for r in results}
        MetricScore.objects.bulk_create([
            MetricScore(sample=by_row[score.sample_id], metric=score.metric, value=score.value, reason=score.reason,
                        raw_output=score.raw_output, unscored_reason=score.unscored_reason)
            for score in scores
        ], batch_size=1000)
