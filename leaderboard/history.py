"""Scores through time, for the "Metrics through time" tab: the best score so far, and each model
family's line across its revisions. A family is one folder on the model storage (``storage_path``),
re-submitted at new revisions.

Two queries whatever the number of models and runs: the runs, then the score rows they need.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from leaderboard.models import RegisteredModel
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score

AVERAGE = "average"
DEFAULT_FAMILIES = 10


@dataclass(frozen=True)
class HistoryPoint:
    at: datetime
    value: float
    model_id: int
    display_name: str
    revision: str
    stderr: float | None = None  # lm-eval's; for the average, from the columns' (see _average_stderr)


@dataclass
class Family:
    key: str  # the storage path
    label: str  # the newest revision's display name
    model_ids: list[int]
    points: list[HistoryPoint] = field(default_factory=list)
    latest_average: float | None = None  # the suite average of its newest run that has every column

    @property
    def latest(self) -> HistoryPoint:
        return self.points[-1]


@dataclass
class ScoreHistory:
    metric_key: str
    best: list[HistoryPoint]  # each point a new best
    families: list[Family]  # all families with a value, best latest value first
    shown: list[Family]  # the picked ones (or the top ones)


def _average_stderr(stderrs: dict[str, float | None], columns: int) -> float | None:
    """The standard error of a plain mean of ``columns`` independent scores: sqrt(sum of se²) / n; unknown
    unless every column has one."""
    known = [se for se in stderrs.values() if se is not None]
    if len(known) != columns or not columns:
        return None
    return math.sqrt(sum(se * se for se in known)) / columns


def score_history(
    *, user, suite, metric_key: str = AVERAGE, model_ids: list[int] | None = None, top: int = DEFAULT_FAMILIES
) -> ScoreHistory:
    """History of one column (a suite column key, or "average") over full succeeded runs of visible models.

    ``model_ids`` picks families (any model of a family picks it; an empty list picks none); when it is
    None, the ``top`` families by their latest suite average are shown.
    """
    columns = list(suite.columns)
    if metric_key != AVERAGE and metric_key not in {c.key for c in columns}:
        raise ValueError(f"no column {metric_key!r} in suite {suite.name}")
    visible = RegisteredModel.objects.visible_to(user).filter(deleted=False).values("pk")
    runs_qs = EvaluationRun.objects.filter(
        kind=RunKind.BENCHMARK,
        status=RunStatus.SUCCEEDED,
        is_partial=False,
        spec__suite=suite.name,
        model__in=visible,
        finished_at__isnull=False,
    )
    runs = list(
        runs_qs.values_list(
            "pk", "finished_at", "model_id", "model__display_name", "model__revision", "model__storage_path"
        ).order_by("finished_at", "pk")
    )
    # Every column's score, even for one column's chart: the families are ranked by their average.
    # The runs go in as a subquery, not a list of ids, so no database limit on bound parameters is met.
    by_key = {(c.score_task, c.metric, c.filter): c.key for c in columns}
    values: dict[int, dict[str, float]] = defaultdict(dict)
    stderrs: dict[int, dict[str, float | None]] = defaultdict(dict)
    for run_id, task, metric, filter_name, value, stderr in Score.objects.filter(
        run__in=runs_qs.values("pk"), task__in={c.score_task for c in columns}
    ).values_list("run_id", "task", "metric", "filter", "value", "stderr"):
        key = by_key.get((task, metric, filter_name))
        if key is not None and value is not None:
            values[run_id][key] = value
            stderrs[run_id][key] = stderr

    best: list[HistoryPoint] = []
    families: dict[str, Family] = {}
    for run_id, finished_at, model_id, display_name, revision, storage_path in runs:
        run_values = values.get(run_id, {})
        # A run missing a column has no average, as on the leaderboard.
        average = sum(run_values.values()) / len(columns) if len(run_values) == len(columns) else None
        value = average if metric_key == AVERAGE else run_values.get(metric_key)
        run_stderrs = stderrs.get(run_id, {})
        stderr = _average_stderr(run_stderrs, len(columns)) if metric_key == AVERAGE else run_stderrs.get(metric_key)
        if average is None and value is None:
            continue
        family = families.setdefault(storage_path, Family(key=storage_path, label=display_name, model_ids=[]))
        if average is not None:
            family.latest_average = average
        if value is None:
            continue
        point = HistoryPoint(
            at=finished_at, value=value, model_id=model_id, display_name=display_name, revision=revision, stderr=stderr
        )
        family.points.append(point)
        family.label = display_name
        if model_id not in family.model_ids:
            family.model_ids.append(model_id)
        if not best or value > best[-1].value:
            best.append(point)

    ranked = sorted(
        (f for f in families.values() if f.points),
        key=lambda f: (f.latest_average is None, -(f.latest_average or 0.0), -f.latest.value, f.label),
    )
    if model_ids is not None:
        picked = set(model_ids)
        shown = [f for f in ranked if picked & set(f.model_ids)]
    else:
        shown = ranked[:top]
    return ScoreHistory(metric_key=metric_key, best=best, families=ranked, shown=shown)
