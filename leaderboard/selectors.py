"""Read side of the leaderboard: the one home of ranking queries.

A page of the table is one query on the ranking's read model (``LeaderboardEntry``: one row per model
and suite, kept up to date when runs finish) joined to the models, plus one count: filters, search,
rank (a window function), sort and the page slice all happen in the database. Nothing is computed per
row, so the page's server time stays flat as models and runs grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Protocol

from django.db.models import F, FloatField, Q, QuerySet, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Rank

from leaderboard.models import LeaderboardEntry, LeaderboardPreference, ReferenceRow, RegisteredModel
from leaderboard.table import SIZE_BUCKETS, LeaderboardQuery, TableColumn, score_field, search_parse


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
    average_stderr: float | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    stderrs: dict[str, float | None] = field(default_factory=dict)


@dataclass
class LeaderboardPage:
    rows: list[LeaderboardRow]
    total: int
    page: int
    num_pages: int
    first_rank_offset: int = 0


def _search_q(text: str, prefix: str = "") -> Q | None:
    """Queries split by ``;`` are a union; inside one, every word and @field must match."""
    terms = search_parse(text)
    if not terms:
        return None
    alternatives = []
    for term in terms:
        q = Q()
        for word in term.words:
            q &= Q(**{f"{prefix}display_name__icontains": word}) | Q(**{f"{prefix}storage_path__icontains": word})
        for name, value in term.fields:
            if name == "type":
                q &= Q(**{f"{prefix}model_type__icontains": value.replace("-", "_").replace(" ", "_")})
            elif name == "precision":
                q &= Q(**{f"{prefix}precision__iexact": value})
            else:
                q &= Q(**{f"{prefix}{name}__icontains": value})
        alternatives.append(q)
    return reduce(or_, alternatives)


def _size_q(sizes: tuple[str, ...], prefix: str = "") -> Q | None:
    if not sizes:
        return None
    parts = []
    for key, _label, low, high in SIZE_BUCKETS:
        if key not in sizes:
            continue
        if low is None:
            parts.append(Q(**{f"{prefix}num_params__isnull": True}))
            continue
        q = Q(**{f"{prefix}num_params__gte": int(low * 1e9)})
        if high is not None:
            q &= Q(**{f"{prefix}num_params__lt": int(high * 1e9)})
        parts.append(q)
    return reduce(or_, parts)


# Sort keys of the table that are model fields (the rest are entry fields or score columns).
_MODEL_SORT_FIELDS = {
    "display_name",
    "model_type",
    "architecture",
    "precision",
    "weight_type",
    "merged",
    "moe",
    "license",
    "num_params",
    "revision",
    "owner__username",
    "submitted_at",
}


def leaderboard_queryset(*, user, query: LeaderboardQuery, columns: list[ScoreColumn]) -> QuerySet[LeaderboardEntry]:
    """Ranking rows of visible models for the suite, filtered, with score columns and the rank annotated."""
    visible = RegisteredModel.objects.visible_to(user)
    for toggle in ("private", "deleted", "merged", "moe", "flagged"):
        if not query.shows(toggle):
            visible = visible.filter(**{toggle: False})
    entries = LeaderboardEntry.objects.filter(suite=query.suite, model__in=visible.values("pk"))
    if query.types:
        entries = entries.filter(model__model_type__in=query.types)
    if query.precisions:
        entries = entries.filter(model__precision__in=query.precisions)
    for extra in (_size_q(query.sizes, "model__"), _search_q(query.search, "model__")):
        if extra is not None:
            entries = entries.filter(extra)
    entries = entries.select_related("model", "model__owner", "model__group")
    # JSON values as numbers, so a score column sorts like one.
    entries = entries.annotate(**{score_field(c.key): Cast(KT(f"scores__{c.key}"), FloatField()) for c in columns})
    return entries.annotate(rank=Window(Rank(), order_by=F("average").desc(nulls_last=True)))


def leaderboard_page(
    *,
    user,
    query: LeaderboardQuery,
    columns: list[ScoreColumn],
    table_columns: list[TableColumn],
    paginate: bool = True,
) -> LeaderboardPage:
    """One page of the table (or every row, for exports), in the query's sort order."""
    entries = leaderboard_queryset(user=user, query=query, columns=columns)
    sort_fields = {c.key: c.sort_field for c in table_columns if c.sort_field}
    sort_field = sort_fields.get(query.sort_key, "average")
    if sort_field in _MODEL_SORT_FIELDS:
        sort_field = f"model__{sort_field}"
    order = F(sort_field).desc(nulls_last=True) if query.sort_descending else F(sort_field).asc(nulls_last=True)
    entries = entries.order_by(order, "model__display_name", "pk")

    total = entries.count() if paginate else None
    page, num_pages, offset = 1, 1, 0
    if paginate:
        num_pages = max(1, -(-total // query.page_size))
        page = min(query.page, num_pages)
        offset = (page - 1) * query.page_size
        entries = entries[offset : offset + query.page_size]
    entries = list(entries)
    if not paginate:
        total = len(entries)
    rows = [
        LeaderboardRow(
            model=e.model,
            rank=e.rank if e.average is not None else None,
            run_id=e.run_id,
            evaluated_at=e.evaluated_at,
            average=e.average,
            average_stderr=e.average_stderr,
            values={c.key: e.scores.get(c.key) for c in columns},
            stderrs={c.key: e.stderrs.get(c.key) for c in columns},
        )
        for e in entries
    ]
    return LeaderboardPage(rows=rows, total=total, page=page, num_pages=num_pages, first_rank_offset=offset)


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
