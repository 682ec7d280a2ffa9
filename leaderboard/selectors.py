"""Read side of the leaderboard: the one home of ranking queries.

The table is computed by the database in one query per page (plus one count and one for the page's
stderrs): every visible model's newest full succeeded run of the suite, its score in each column, the
average, the rank, filters, sort and the page slice. Nothing is computed per row in Python, so the
page's server time does not grow with the number of models or runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import add, or_
from typing import Protocol

from django.db.models import F, FloatField, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Cast, Rank

from leaderboard.models import LeaderboardPreference, ReferenceRow, RegisteredModel
from leaderboard.table import SIZE_BUCKETS, LeaderboardQuery, TableColumn, score_field, search_parse
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score


class ScoreColumn(Protocol):
    """A suite column: which score row holds its value (see leaderboard.harness.suites)."""

    key: str
    score_task: str
    metric: str
    filter: str


@dataclass
class LeaderboardRow:
    model: RegisteredModel
    rank: int | None
    run_id: int
    evaluated_at: object
    average: float | None
    values: dict[str, float | None] = field(default_factory=dict)
    stderrs: dict[str, float | None] = field(default_factory=dict)


@dataclass
class LeaderboardPage:
    rows: list[LeaderboardRow]
    total: int
    page: int
    num_pages: int
    first_rank_offset: int = 0


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


def _score_subquery(column: ScoreColumn):
    return Subquery(
        Score.objects.filter(run_id=OuterRef("latest_run_id"), task=column.score_task, metric=column.metric,
                             filter=column.filter).values("value")[:1],
        output_field=FloatField(),
    )


def _search_q(text: str) -> Q | None:
    """Queries split by ``;`` are a union; inside one, every word and @field must match."""
    terms = search_parse(text)
    if not terms:
        return None
    alternatives = []
    for term in terms:
        q = Q()
        for word in term.words:
            q &= Q(display_name__icontains=word) | Q(storage_path__icontains=word)
        for name, value in term.fields:
            if name == "type":
                q &= Q(model_type__icontains=value.replace("-", "_").replace(" ", "_"))
            elif name == "precision":
                q &= Q(precision__iexact=value)
            else:
                q &= Q(**{f"{name}__icontains": value})
        alternatives.append(q)
    return reduce(or_, alternatives)


def _size_q(sizes: tuple[str, ...]) -> Q | None:
    if not sizes:
        return None
    parts = []
    for key, _label, low, high in SIZE_BUCKETS:
        if key not in sizes:
            continue
        if low is None:
            parts.append(Q(num_params__isnull=True))
            continue
        q = Q(num_params__gte=int(low * 1e9))
        if high is not None:
            q &= Q(num_params__lt=int(high * 1e9))
        parts.append(q)
    return reduce(or_, parts)


def leaderboard_queryset(*, user, query: LeaderboardQuery, columns: list[ScoreColumn]) -> QuerySet[RegisteredModel]:
    """Visible models with a full succeeded run of the suite, filtered, annotated with scores, average and rank."""
    models = RegisteredModel.objects.visible_to(user).select_related("owner", "group")
    for toggle in ("private", "deleted", "merged", "moe", "flagged"):
        if not query.shows(toggle):
            models = models.filter(**{toggle: False})
    if query.types:
        models = models.filter(model_type__in=query.types)
    if query.precisions:
        models = models.filter(precision__in=query.precisions)
    for extra in (_size_q(query.sizes), _search_q(query.search)):
        if extra is not None:
            models = models.filter(extra)

    models = models.annotate(latest_run_id=Subquery(latest_succeeded_run_subquery(suite_name=query.suite)))
    models = models.filter(latest_run_id__isnull=False)
    models = models.annotate(
        evaluated_at=Subquery(EvaluationRun.objects.filter(pk=OuterRef("latest_run_id")).values("finished_at")[:1]),
        **{score_field(column.key): _score_subquery(column) for column in columns},
    )
    # SQL's NULL arithmetic gives the rule we want: a model missing any column has no average
    # (a partial mean would rank unfairly), as on the Open LLM Leaderboard.
    total = reduce(add, [F(score_field(column.key)) for column in columns])
    models = models.annotate(average=Cast(total, FloatField()) / len(columns))
    return models.annotate(rank=Window(Rank(), order_by=F("average").desc(nulls_last=True)))


def leaderboard_page(*, user, query: LeaderboardQuery, columns: list[ScoreColumn],
                     table_columns: list[TableColumn], paginate: bool = True) -> LeaderboardPage:
    """One page of the table (or every row, for exports), in the query's sort order."""
    models = leaderboard_queryset(user=user, query=query, columns=columns)
    sort_fields = {c.key: c.sort_field for c in table_columns if c.sort_field}
    sort_field = sort_fields.get(query.sort_key, "average")
    order = F(sort_field).desc(nulls_last=True) if query.sort_descending else F(sort_field).asc(nulls_last=True)
    models = models.order_by(order, "display_name", "pk")

    total = models.count() if paginate else None
    page, num_pages, offset = 1, 1, 0
    if paginate:
        num_pages = max(1, -(-total // query.page_size))
        page = min(query.page, num_pages)
        offset = (page - 1) * query.page_size
        models = models[offset: offset + query.page_size]
    models = list(models)
    if not paginate:
        total = len(models)

    rows = [
        LeaderboardRow(
            model=m, rank=m.rank if m.average is not None else None, run_id=m.latest_run_id,
            evaluated_at=m.evaluated_at, average=m.average,
            values={c.key: getattr(m, score_field(c.key)) for c in columns},
        )
        for m in models
    ]
    _attach_stderrs(rows, columns)
    return LeaderboardPage(rows=rows, total=total, page=page, num_pages=num_pages, first_rank_offset=offset)


def _attach_stderrs(rows: list[LeaderboardRow], columns: list[ScoreColumn]) -> None:
    """One query for the stderr of every shown score."""
    by_run = {row.run_id: row for row in rows}
    wanted = {(c.score_task, c.metric, c.filter): c.key for c in columns}
    scores = Score.objects.filter(run_id__in=by_run, task__in={c.score_task for c in columns}).values_list(
        "run_id", "task", "metric", "filter", "stderr")
    for run_id, task, metric, filter_name, stderr in scores:
        key = wanted.get((task, metric, filter_name))
        if key is not None:
            by_run[run_id].stderrs[key] = stderr


def leaderboard_rows(*, user, suite_name: str, columns: list[ScoreColumn]) -> list[LeaderboardRow]:
    """Every ranked row of a suite with the default view (for scripts and tests)."""
    from leaderboard.table import LEADING_COLUMNS

    query = LeaderboardQuery(suite=suite_name)
    return leaderboard_page(user=user, query=query, columns=columns, table_columns=list(LEADING_COLUMNS),
                            paginate=False).rows


def reference_rows(*, suite_name: str) -> list[ReferenceRow]:
    return list(ReferenceRow.objects.filter(suite=suite_name, shown=True))


def visible_columns_get(*, user, query: LeaderboardQuery, table_columns: list[TableColumn]) -> list[TableColumn]:
    """The columns to show: the URL's ``cols``, else the user's saved choice, else the defaults."""
    known = {c.key: c for c in table_columns}
    chosen = query.columns
    if chosen is None and user.is_authenticated:
        preference = LeaderboardPreference.objects.filter(user=user).values_list("columns", flat=True).first()
        chosen = tuple(preference) if preference else None
    if chosen:
        keys = [key for key in chosen if key in known]
        if keys:
            # The model name always stays: a row without it means nothing.
            if "model" not in keys:
                keys.insert(0, "model")
            return [c for c in table_columns if c.key in keys]
    return [c for c in table_columns if c.default_visible]
