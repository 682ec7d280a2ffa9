"""Read side of the leaderboard: the one home of ranking queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from django.db.models import OuterRef, Subquery

from leaderboard.models import RegisteredModel
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score


class ScoreColumn(Protocol):
    """A leaderboard column: which score row holds its value (see leaderboard.harness.suites)."""

    key: str
    score_task: str
    metric: str
    filter: str


@dataclass
class LeaderboardRow:
    model: RegisteredModel
    run_id: int
    finished_at: object
    values: dict[str, float | None] = field(default_factory=dict)
    stderrs: dict[str, float | None] = field(default_factory=dict)
    average: float | None = None


def latest_succeeded_run_subquery(*, suite_name: str):
    """The newest full (not smoke) succeeded benchmark run of the outer model for one suite."""
    return (
        EvaluationRun.objects.filter(
            model=OuterRef("pk"), kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED,
            is_partial=False, spec__suite=suite_name,
        )
        .order_by("-finished_at", "-pk")
        .values("pk")[:1]
    )


def leaderboard_rows(*, user, suite_name: str, columns: list[ScoreColumn], include_deleted: bool = False) -> list[LeaderboardRow]:
    """One row per visible model that has a succeeded full run of the suite: three queries in all."""
    models = RegisteredModel.objects.visible_to(user).select_related("owner", "group")
    if not include_deleted:
        models = models.filter(deleted=False)
    models = models.annotate(latest_run_id=Subquery(latest_succeeded_run_subquery(suite_name=suite_name))).filter(
        latest_run_id__isnull=False
    )
    models = list(models)
    run_finished = dict(EvaluationRun.objects.filter(pk__in=[m.latest_run_id for m in models]).values_list("pk", "finished_at"))
    rows = {m.latest_run_id: LeaderboardRow(model=m, run_id=m.latest_run_id, finished_at=run_finished.get(m.latest_run_id)) for m in models}

    wanted = {(c.score_task, c.metric, c.filter): c.key for c in columns}
    scores = Score.objects.filter(run_id__in=rows.keys(), task__in={c.score_task for c in columns}).values_list(
        "run_id", "task", "metric", "filter", "value", "stderr"
    )
    for run_id, task, metric, filter_name, value, stderr in scores:
        key = wanted.get((task, metric, filter_name))
        if key is not None:
            rows[run_id].values[key] = value
            rows[run_id].stderrs[key] = stderr

    for row in rows.values():
        present = [row.values.get(c.key) for c in columns]
        # The average needs every column, as on the Open LLM Leaderboard: a partial mean would rank unfairly.
        row.average = sum(present) / len(present) if present and all(v is not None for v in present) else None
    return sorted(rows.values(), key=lambda r: (r.average is None, -(r.average or 0), r.model.display_name))
