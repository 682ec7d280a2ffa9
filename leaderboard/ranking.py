"""Keeps the ranking's read model (``LeaderboardEntry``) in step with runs and scores."""

from __future__ import annotations

import logging

from django.db import transaction

from leaderboard.models import LeaderboardEntry, RegisteredModel
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score

logger = logging.getLogger(__name__)


def _suite_columns(run: EvaluationRun):
    """The columns the table shows for the run's suite (the suite file), else the ones frozen in the run."""
    from leaderboard.harness.executor import suite_from_spec
    from leaderboard.harness.suites import SuiteError, suite_get

    try:
        return list(suite_get(run.spec["suite"]).columns)
    except SuiteError:
        return list(suite_from_spec(run.spec).columns)


def leaderboard_entry_refresh(*, model_id: int, suite_name: str) -> LeaderboardEntry | None:
    """Recompute one model's entry for one suite from its newest full succeeded run (idempotent).

    The model's row is locked first: two runs of one model finishing at once on two workers would
    otherwise each read the runs before the other committed, and the one that read first could write
    last, ranking the older run. Locked, the second refresh reads after the first committed. (FOR NO KEY
    UPDATE: it does not wait for, or hold up, transactions that only insert rows pointing at the model.)
    """
    with transaction.atomic():
        list(RegisteredModel.objects.select_for_update(no_key=True).filter(pk=model_id).values_list("pk", flat=True))
        return _entry_compute(model_id=model_id, suite_name=suite_name)


def _entry_compute(*, model_id: int, suite_name: str) -> LeaderboardEntry | None:
    run = (
        EvaluationRun.objects.filter(model_id=model_id, kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED,
                                     is_partial=False, spec__suite=suite_name)
        .order_by("-finished_at", "-pk").first()
    )
    if run is None:
        LeaderboardEntry.objects.filter(model_id=model_id, suite=suite_name).delete()
        return None
    columns = _suite_columns(run)
    stored = {(task, metric, filter_name): (value, stderr) for task, metric, filter_name, value, stderr in
              Score.objects.filter(run=run, task__in={c.score_task for c in columns})
              .values_list("task", "metric", "filter", "value", "stderr")}
    scores, stderrs = {}, {}
    for column in columns:
        value, stderr = stored.get((column.score_task, column.metric, column.filter), (None, None))
        scores[column.key], stderrs[column.key] = value, stderr
    present = list(scores.values())
    average = sum(present) / len(present) if present and all(v is not None for v in present) else None
    entry, _created = LeaderboardEntry.objects.update_or_create(
        model_id=model_id, suite=suite_name,
        defaults={"run": run, "average": average, "scores": scores, "stderrs": stderrs, "evaluated_at": run.finished_at},
    )
    return entry


def leaderboard_entry_refresh_for_run(*, run_id: int) -> None:
    """``RUN_FINISH_HOOKS`` entry: a finished benchmark run may change its model's row."""
    run = EvaluationRun.objects.filter(pk=run_id).values("kind", "model_id", "spec").first()
    if run and run["kind"] == RunKind.BENCHMARK and run["model_id"] and isinstance(run["spec"], dict) and run["spec"].get("suite"):
        leaderboard_entry_refresh(model_id=run["model_id"], suite_name=run["spec"]["suite"])


def leaderboard_rebuild() -> int:
    """Recompute every entry (after deleting runs, editing a suite, or restoring a backup)."""
    pairs = set(
        EvaluationRun.objects.filter(kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED, is_partial=False,
                                     model__isnull=False).values_list("model_id", "spec__suite")
    ) | set(LeaderboardEntry.objects.values_list("model_id", "suite"))
    with transaction.atomic():
        for model_id, suite_name in pairs:
            if suite_name:
                leaderboard_entry_refresh(model_id=model_id, suite_name=suite_name)
    return len(pairs)
