"""Keeps the ranking's read model (``LeaderboardEntry``) in step with runs and scores."""

from __future__ import annotations

import logging

from django.db import transaction

from leaderboard.harness.suites import mean_stderr
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
        EvaluationRun.objects.filter(
            model_id=model_id,
            kind=RunKind.BENCHMARK,
            status=RunStatus.SUCCEEDED,
            is_partial=False,
            spec__suite=suite_name,
        )
        .order_by("-finished_at", "-pk")
        .first()
    )
    if run is None:
        LeaderboardEntry.objects.filter(model_id=model_id, suite=suite_name).delete()
        return None
    columns = _suite_columns(run)
    scores, stderrs = _column_scores(run, columns)
    present = list(scores.values())
    average = sum(present) / len(present) if present and all(v is not None for v in present) else None
    entry, _created = LeaderboardEntry.objects.update_or_create(
        model_id=model_id,
        suite=suite_name,
        defaults={
            "run": run,
            "average": average,
            "average_stderr": mean_stderr(list(stderrs.values())),
            "scores": scores,
            "stderrs": stderrs,
            "evaluated_at": run.finished_at,
        },
    )
    return entry


def _column_scores(run: EvaluationRun, columns) -> tuple[dict, dict]:
    """Column key -> value and -> stderr from the run's score rows. A multi-task column's row written before
    plain means had a stderr gets one from its leaves' (``suite_column_stderrs``), so old runs have one too."""
    from leaderboard.harness.suites import suite_column_stderrs

    leaf_tasks = EvaluationRun.objects.filter(pk=run.pk).values_list("details__leaf_tasks", flat=True).first()
    leaf_tasks = leaf_tasks if isinstance(leaf_tasks, dict) else {}
    wanted = {c.score_task for c in columns} | {
        leaf for c in columns for name in c.lm_eval_names for leaf in leaf_tasks.get(name, [name])
    }
    rows = list(Score.objects.filter(run=run, task__in=wanted))
    stored = {(r.task, r.metric, r.filter): r for r in rows}
    from_leaves = suite_column_stderrs(columns, rows, leaf_tasks)
    scores, stderrs = {}, {}
    for column in columns:
        row = stored.get((column.score_task, column.metric, column.filter))
        scores[column.key] = row.value if row else None
        stderrs[column.key] = (
            row.stderr if row and row.stderr is not None else (from_leaves[column.key] if row else None)
        )
    return scores, stderrs


def leaderboard_entry_refresh_for_run(*, run_id: int) -> None:
    """``RUN_FINISH_HOOKS`` entry: a finished benchmark run may change its model's row."""
    run = EvaluationRun.objects.filter(pk=run_id).values("kind", "model_id", "spec").first()
    if (
        run
        and run["kind"] == RunKind.BENCHMARK
        and run["model_id"]
        and isinstance(run["spec"], dict)
        and run["spec"].get("suite")
    ):
        leaderboard_entry_refresh(model_id=run["model_id"], suite_name=run["spec"]["suite"])


def leaderboard_rebuild() -> int:
    """Recompute every entry (after deleting runs, editing a suite, or restoring a backup)."""
    pairs = set(
        EvaluationRun.objects.filter(
            kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED, is_partial=False, model__isnull=False
        ).values_list("model_id", "spec__suite")
    ) | set(LeaderboardEntry.objects.values_list("model_id", "suite"))
    with transaction.atomic():
        for model_id, suite_name in pairs:
            if suite_name:
                leaderboard_entry_refresh(model_id=model_id, suite_name=suite_name)
    return len(pairs)
