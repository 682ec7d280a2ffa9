"""What a leaderboard view asks for: columns, search, filters, toggles and sort, read from and written to the URL.

Everything that shapes the table lives in the query string, so a view can be shared by copying the URL.
The one exception is the column picker, remembered per user (``LeaderboardPreference``); a ``cols``
parameter in the URL still wins, so a shared link shows what its author saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from leaderboard.models import ModelType, Precision

PAGE_SIZES = (50, 100, 250, 1000)
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True)
class TableColumn:
    key: str
    label: str
    # Sortable columns name the annotation or field they sort by.
    sort_field: str | None = None
    numeric: bool = False
    default_visible: bool = True


# Columns every suite has, around the suite's own score columns (inserted after "average").
LEADING_COLUMNS = (
    TableColumn("rank", _("Rank"), None, numeric=True),
    # The Open LLM Leaderboard's "T": the model type as a symbol (TYPE_SYMBOLS), sorted by type.
    TableColumn("type_symbol", "T", "model_type"),
    TableColumn("model", _("Model"), "display_name"),
    TableColumn("average", _("Average"), "average", numeric=True),
)
TRAILING_COLUMNS = (
    TableColumn("type", _("Type"), "model_type"),
    TableColumn("architecture", _("Architecture"), "architecture"),
    TableColumn("precision", _("Precision"), "precision"),
    TableColumn("weight_type", _("Weight type"), "weight_type", default_visible=False),
    TableColumn("merged", _("Merged"), "merged", default_visible=False),
    TableColumn("moe", _("MoE"), "moe", default_visible=False),
    TableColumn("license", _("License"), "license"),
    TableColumn("params", _("#Params (B)"), "num_params", numeric=True),
    TableColumn("revision", _("Model sha"), "revision"),
    TableColumn("owner", _("Owner / group"), "owner__username", default_visible=False),
    TableColumn("submitted", _("Submitted"), "submitted_at", default_visible=False),
    TableColumn("evaluated", _("Evaluated"), "evaluated_at", default_visible=False),
)


def score_field(key: str) -> str:
    """The annotation holding a suite column's value (``score_arc``)."""
    return f"score_{key}"


def table_columns(suite) -> list[TableColumn]:
    scores = [TableColumn(c.key, c.label, score_field(c.key), numeric=True) for c in suite.columns]
    return [*LEADING_COLUMNS, *scores, *TRAILING_COLUMNS]


# Size buckets of the Open LLM Leaderboard, in billions of parameters: (key, label, low, high).
SIZE_BUCKETS = (
    ("unknown", "?", None, None),
    ("1.5", "~1.5", 0, 2),
    ("3", "~3", 2, 4),
    ("7", "~7", 4, 9),
    ("13", "~13", 9, 20),
    ("35", "~35", 20, 45),
    ("60", "~60", 45, 70),
    ("70plus", "70+", 70, None),
)
SIZE_KEYS = {bucket[0] for bucket in SIZE_BUCKETS}

# The Open LLM Leaderboard v1's type symbols (its "T" column). A merged model shows the merge symbol
# whatever its type, as OLL listed merges as a type of their own.
TYPE_SYMBOLS = {
    ModelType.PRETRAINED: "🟢",
    ModelType.CONTINUOUSLY_PRETRAINED: "🟩",
    ModelType.FINE_TUNED: "🔶",
    ModelType.CHAT: "💬",
    ModelType.RL_TUNED: "🟦",
}
MERGE_SYMBOL = "🤝"


def type_symbol_legend() -> list[tuple[str, str]]:
    """(symbol, meaning) for the legend under the table, in the order of the type filter."""
    return [(TYPE_SYMBOLS[value], label) for value, label in ModelType.choices] + [(MERGE_SYMBOL, _("merge"))]


# @prefix: searches in a field of the model, as on the Open LLM Leaderboard.
SEARCH_PREFIXES = ("architecture", "license", "precision", "type")
_PREFIX_RE = re.compile(r"@(" + "|".join(SEARCH_PREFIXES) + r"):(\"[^\"]*\"|\S+)", re.IGNORECASE)
# Any @word: at the start of a token, to tell the user about a prefix we do not know (it is left out).
_ANY_PREFIX_RE = re.compile(r"(?:^|(?<=\s))@(\w+):(\"[^\"]*\"|\S*)")

# Toggles: (key, label, shown by default). Private, deleted and merged models are hidden unless asked for.
TOGGLES = (
    ("private", _("Private"), False),
    ("deleted", _("Deleted"), False),
    ("merged", _("Merged"), False),
    ("moe", _("MoE"), True),
    ("flagged", _("Flagged"), True),
)


@dataclass(frozen=True)
class SearchTerm:
    """One ``;``-separated query: free words (all must match the name or path) and @field:value pairs."""

    words: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()


def search_unknown_prefixes(text: str) -> list[str]:
    """The ``@name:`` prefixes of a search that are not in SEARCH_PREFIXES (lower-cased, in order, once each)."""
    unknown = [
        m.group(1).lower()
        for part in text.split(";")
        for m in _ANY_PREFIX_RE.finditer(part)
        if m.group(1).lower() not in SEARCH_PREFIXES
    ]
    return list(dict.fromkeys(unknown))


def search_parse(text: str) -> list[SearchTerm]:
    """``;``-separated terms; an unknown ``@name:value`` is dropped (the page names it, search_unknown_prefixes)
    rather than matched as a word that no model name has."""
    terms = []
    for part in text.split(";"):
        fields = tuple((m.group(1).lower(), m.group(2).strip('"')) for m in _PREFIX_RE.finditer(part))
        rest = _PREFIX_RE.sub(" ", part)
        words = tuple(_ANY_PREFIX_RE.sub(" ", rest).split())
        if words or fields:
            terms.append(SearchTerm(words=words, fields=fields))
    return terms


@dataclass(frozen=True)
class LeaderboardQuery:
    suite: str
    search: str = ""
    types: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    # Toggle key -> shown. Missing keys take the toggle's default.
    show: dict = field(default_factory=dict)
    sort: str = "-average"
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    show_stderr: bool = False
    columns: tuple[str, ...] | None = None

    def shows(self, toggle: str) -> bool:
        default = next(d for key, _label, d in TOGGLES if key == toggle)
        return self.show.get(toggle, default)

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def sort_descending(self) -> bool:
        return self.sort.startswith("-")

    @classmethod
    def from_querydict(cls, params: QueryDict, *, suite: str, sortable: set[str]) -> LeaderboardQuery:
        def ints(name: str, default: int, allowed=None) -> int:
            try:
                value = int(params.get(name, default))
            except (TypeError, ValueError):
                return default
            return value if (allowed is None or value in allowed) and value > 0 else default

        sort = params.get("sort", "-average")
        if sort.lstrip("-") not in sortable:
            sort = "-average"
        # A toggle is sent as "1"/"0" only when it differs from its default (short, shareable URLs).
        show = {key: params.get(f"show_{key}") == "1" for key, _label, _d in TOGGLES if f"show_{key}" in params}
        cols = params.getlist("cols")
        return cls(
            suite=suite,
            search=params.get("q", "").strip()[:500],
            types=tuple(t for t in params.getlist("type") if t in ModelType.values),
            precisions=tuple(p for p in params.getlist("precision") if p in Precision.values),
            sizes=tuple(s for s in params.getlist("size") if s in SIZE_KEYS),
            show=show,
            sort=sort,
            page=ints("page", 1),
            page_size=ints("per_page", DEFAULT_PAGE_SIZE, PAGE_SIZES),
            show_stderr=params.get("stderr") == "1",
            columns=tuple(cols) if cols else None,
        )

    def to_params(self, **changes) -> list[tuple[str, str]]:
        """The query as URL parameters, defaults left out; ``changes`` replace fields first."""
        query = replace(self, **changes) if changes else self
        params: list[tuple[str, str]] = [("suite", query.suite)]
        if query.search:
            params.append(("q", query.search))
        params += [("type", t) for t in query.types]
        params += [("precision", p) for p in query.precisions]
        params += [("size", s) for s in query.sizes]
        for key, _label, default in TOGGLES:
            if key in query.show and query.show[key] != default:
                params.append((f"show_{key}", "1" if query.show[key] else "0"))
        if query.sort != "-average":
            params.append(("sort", query.sort))
        if query.page_size != DEFAULT_PAGE_SIZE:
            params.append(("per_page", str(query.page_size)))
        if query.show_stderr:
            params.append(("stderr", "1"))
        if query.columns is not None:
            params += [("cols", c) for c in query.columns]
        if query.page != 1:
            params.append(("page", str(query.page)))
        return params

    def urlencode(self, **changes) -> str:
        return urlencode(self.to_params(**changes))

    def sort_toggled(self, key: str) -> str:
        """The sort after clicking a column header: descending first for numbers, then flip."""
        if self.sort_key == key:
            return key if self.sort_descending else f"-{key}"
        return f"-{key}"
