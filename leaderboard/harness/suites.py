"""Benchmark suites: the leaderboard's columns, defined as data in ``harness_tasks/suites/*.yaml``.

A suite file names lm-eval tasks and how one leaderboard column is read from their results::

    name: openllm_v1            # [a-z0-9_.-], unique together with version
    version: 1                  # positive int; a changed suite gets a new version
    title: Open LLM Leaderboard v1
    description: ...            # optional
    reference: ...              # optional, free text (where the settings come from)
    columns:
      - key: arc                # [a-z][a-z0-9_]*, unique in the suite
        label: ARC
        task: arc_challenge     # exactly one of: task / tasks: [..] / group_of: <lm-eval group or tag>
        num_fewshot: 25
        metric: acc_norm
        filter: none            # lm-eval filter name; default none
        aggregate: mean         # plain mean over the column's (leaf) tasks; the only aggregate
        overrides:              # optional lm-eval task-config keys set on top of lm-eval's own task
          fewshot_split: train

The suite's score is the plain mean of its columns. ``group_of`` columns run the lm-eval group, so
lm-eval's own (size-weighted) group rows are stored too, while the column shows the plain mean over
the group's leaf tasks. Expanding a group into leaf tasks needs lm-eval's task index, so it is done in
the adapter (``task_plan.py``); this module never imports lm_eval (web processes read suites).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from django.utils.translation import gettext_noop

if TYPE_CHECKING:
    from runs.executors import ScoreRow

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SUITE_KEYS = {"name", "version", "title", "description", "reference", "columns"}
_COLUMN_KEYS = {
    "key",
    "label",
    "task",
    "tasks",
    "group_of",
    "num_fewshot",
    "metric",
    "filter",
    "aggregate",
    "overrides",
    "description",
}
# Keys a suite may not override: they name the task itself, or are set by the adapter
# (dataset_path points at the mirror, num_fewshot has its own column field).
_FORBIDDEN_OVERRIDES = {"task", "group", "tag", "include", "class", "dataset_path", "num_fewshot"}
AGGREGATES = ("mean",)
# Suffix of the score row that holds a multi-task column's plain mean (e.g. ``mmlu_plain_mean``).
PLAIN_MEAN_SUFFIX = "_plain_mean"
# The suite the site shows and offers first (the leaderboard, its charts, the submit form, the commands'
# --suite), defined here only: harness_tasks/suites/openllm_v1.yaml.
DEFAULT_SUITE = "openllm_v1"


class SuiteError(ValueError):
    """A suite file is missing, unreadable or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class TaskRequest:
    """One name handed to lm-eval (a task, group or tag) with the shots and config overrides to use."""

    task: str
    num_fewshot: int
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "num_fewshot": self.num_fewshot, "overrides": dict(self.overrides)}

    @classmethod
    def from_value(cls, value: TaskRequest | Mapping[str, Any] | Sequence[Any]) -> TaskRequest:
        """Accept a TaskRequest, a ``{"task", "num_fewshot", "overrides"}`` dict or a (task, shots) pair."""
        if isinstance(value, TaskRequest):
            return value
        if isinstance(value, Mapping):
            return cls(str(value["task"]), int(value["num_fewshot"]), dict(value.get("overrides") or {}))
        task, num_fewshot, *rest = value
        return cls(str(task), int(num_fewshot), dict(rest[0]) if rest else {})


@dataclass(frozen=True)
class SuiteColumn:
    key: str
    label: str
    metric: str
    num_fewshot: int = 0
    tasks: tuple[str, ...] = ()
    group_of: str | None = None
    filter: str = "none"
    aggregate: str = "mean"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def lm_eval_names(self) -> tuple[str, ...]:
        """The names handed to lm-eval for this column: its tasks, or its group."""
        return (self.group_of,) if self.group_of else self.tasks

    @property
    def score_task(self) -> str:
        """The score-row task that holds this column's value."""
        if len(self.tasks) == 1 and not self.group_of:
            return self.tasks[0]
        return f"{self.key}{PLAIN_MEAN_SUFFIX}"

    def task_requests(self) -> list[TaskRequest]:
        return [TaskRequest(name, self.num_fewshot, dict(self.overrides)) for name in self.lm_eval_names]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "label": self.label}
        if self.group_of:
            data["group_of"] = self.group_of
        elif len(self.tasks) == 1:
            data["task"] = self.tasks[0]
        else:
            data["tasks"] = list(self.tasks)
        data.update(num_fewshot=self.num_fewshot, metric=self.metric, filter=self.filter, aggregate=self.aggregate)
        if self.overrides:
            data["overrides"] = dict(self.overrides)
        if self.description:
            data["description"] = self.description
        return data


# The titles of harness_tasks/suites/*.yaml, marked here so that the Korean catalogue holds them.
SHIPPED_SUITE_TITLES = frozenset([gettext_noop("Open LLM Leaderboard v1"), gettext_noop("KoBEST (Korean)")])


@dataclass(frozen=True)
class Suite:
    name: str
    version: int
    title: str
    columns: tuple[SuiteColumn, ...]
    description: str = ""
    reference: str = ""
    source_path: Path | None = field(default=None, compare=False)

    @property
    def title_text(self) -> str:
        """The title in the reader's language when it is one of the shipped suites' (see SHIPPED_SUITE_TITLES)."""
        from django.utils.translation import gettext

        return gettext(self.title) if self.title in SHIPPED_SUITE_TITLES else self.title

    def column(self, key: str) -> SuiteColumn:
        for column in self.columns:
            if column.key == key:
                return column
        raise KeyError(key)

    def task_requests(self) -> list[TaskRequest]:
        """What lm-eval runs for this suite, in column order (a name shared by two columns runs once)."""
        requests: dict[str, TaskRequest] = {}
        for column in self.columns:
            for request in column.task_requests():
                previous = requests.setdefault(request.task, request)
                if previous != request:
                    raise SuiteError(
                        f"suite {self.name!r}: task {request.task!r} is used by two columns with different "
                        f"shots or overrides"
                    )
        return list(requests.values())

    def without_columns(self, keys: Iterable[str]) -> Suite:
        """This suite less some columns (what a partial run evaluates); an unknown key raises KeyError."""
        keys = set(keys)
        unknown = keys - {column.key for column in self.columns}
        if unknown:
            raise KeyError(", ".join(sorted(unknown)))
        return replace(self, columns=tuple(column for column in self.columns if column.key not in keys))

    @property
    def average_task(self) -> str:
        """The score-row task that holds the suite average."""
        return f"{self.name}_average"

    def to_dict(self) -> dict[str, Any]:
        """The suite as its YAML says it (a JSON-safe snapshot, e.g. frozen into a run spec)."""
        data: dict[str, Any] = {"name": self.name, "version": self.version, "title": self.title}
        if self.description:
            data["description"] = self.description
        if self.reference:
            data["reference"] = self.reference
        data["columns"] = [column.to_dict() for column in self.columns]
        return data


def _fail(source: str, where: str, message: str) -> SuiteError:
    return SuiteError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def _require_str(data: Mapping[str, Any], key: str, source: str, where: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise _fail(source, where, f"'{key}' is required")
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, where, f"'{key}' must be a non-empty string, not {value!r}")
    return value.strip()


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(
            source, where, f"unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}"
        )


def _column_from_dict(data: Any, index: int, source: str) -> SuiteColumn:
    where = f"column {index + 1}"
    if not isinstance(data, Mapping):
        raise _fail(source, where, f"must be a mapping, not {type(data).__name__}")
    if isinstance(data.get("key"), str):
        where = f"column {data['key']!r}"
    _unknown_keys(data, _COLUMN_KEYS, source, where)
    key = _require_str(data, "key", source, where)
    if not _KEY_RE.match(key):
        raise _fail(source, where, "'key' must match [a-z][a-z0-9_]*")

    sources = [name for name in ("task", "tasks", "group_of") if data.get(name) is not None]
    if len(sources) != 1:
        raise _fail(source, where, "give exactly one of 'task', 'tasks' or 'group_of'")
    tasks: tuple[str, ...] = ()
    group_of = None
    if "task" in sources:
        tasks = (_require_str(data, "task", source, where),)
    elif "tasks" in sources:
        raw = data["tasks"]
        if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t.strip() for t in raw):
            raise _fail(source, where, "'tasks' must be a non-empty list of task names")
        tasks = tuple(t.strip() for t in raw)
        if len(set(tasks)) != len(tasks):
            raise _fail(source, where, "'tasks' lists a task twice")
    else:
        group_of = _require_str(data, "group_of", source, where)

    num_fewshot = data.get("num_fewshot")
    if isinstance(num_fewshot, bool) or not isinstance(num_fewshot, int) or num_fewshot < 0:
        raise _fail(source, where, f"'num_fewshot' must be an integer >= 0, not {num_fewshot!r}")
    aggregate = _require_str(data, "aggregate", source, where, default="mean")
    if aggregate not in AGGREGATES:
        raise _fail(source, where, f"'aggregate' must be one of {', '.join(AGGREGATES)}, not {aggregate!r}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise _fail(source, where, "'overrides' must be a mapping of lm-eval task-config keys")
    forbidden = sorted(set(overrides) & _FORBIDDEN_OVERRIDES)
    if forbidden:
        raise _fail(source, where, f"'overrides' may not set {', '.join(forbidden)}")
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise _fail(source, where, "'description' must be a string")
    return SuiteColumn(
        key=key,
        label=_require_str(data, "label", source, where),
        metric=_require_str(data, "metric", source, where),
        num_fewshot=num_fewshot,
        tasks=tasks,
        group_of=group_of,
        filter=_require_str(data, "filter", source, where, default="none"),
        aggregate=aggregate,
        overrides=dict(overrides),
        description=description.strip(),
    )


def suite_from_dict(data: Any, *, source: str = "<suite>", source_path: Path | None = None) -> Suite:
    """Validate a parsed suite document and build the Suite.

    Raises:
        SuiteError: naming ``source`` and the offending field.
    """
    if not isinstance(data, Mapping):
        raise _fail(source, "", "a suite file must be a YAML mapping")
    _unknown_keys(data, _SUITE_KEYS, source, "")
    name = _require_str(data, "name", source, "")
    if not _NAME_RE.match(name):
        raise _fail(source, "", "'name' must match [a-z0-9][a-z0-9_.-]*")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(source, "", f"'version' must be a positive integer, not {version!r}")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise _fail(source, "", "'columns' must be a non-empty list")
    columns = tuple(_column_from_dict(column, i, source) for i, column in enumerate(raw_columns))
    keys = [column.key for column in columns]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _fail(source, "", f"column key(s) used twice: {', '.join(duplicates)}")
    suite = Suite(
        name=name,
        version=version,
        title=_require_str(data, "title", source, ""),
        columns=columns,
        description=str(data.get("description") or "").strip(),
        reference=str(data.get("reference") or "").strip(),
        source_path=source_path,
    )
    try:
        suite.task_requests()  # rejects a task shared by columns with different shots
    except SuiteError as exc:
        raise _fail(source, "", str(exc)) from None
    return suite


def suite_load(path: Path | str) -> Suite:
    """Read and validate one suite YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read suite file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
    return suite_from_dict(data, source=str(path), source_path=path)


def suites_dir_default() -> Path:
    from django.conf import settings

    return Path(settings.HARNESS_TASKS_DIR) / "suites"


def suite_list(*, suites_dir: Path | str | None = None) -> list[Suite]:
    """Every suite in the suites folder (all versions), sorted by name then version.

    Raises:
        SuiteError: a file is invalid, or two files declare the same name and version.
    """
    folder = Path(suites_dir) if suites_dir is not None else suites_dir_default()
    suites = [suite_load(path) for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))]
    seen: dict[tuple[str, int], Suite] = {}
    for suite in suites:
        other = seen.setdefault((suite.name, suite.version), suite)
        if other is not suite:
            raise SuiteError(
                f"{suite.source_path}: suite {suite.name!r} version {suite.version} is also "
                f"defined in {other.source_path}"
            )
    return sorted(suites, key=lambda s: (s.name, s.version))


def suite_get(name: str, *, version: int | None = None, suites_dir: Path | str | None = None) -> Suite:
    """The suite called ``name`` (its highest version unless ``version`` is given)."""
    candidates = [s for s in suite_list(suites_dir=suites_dir) if s.name == name]
    if version is not None:
        candidates = [s for s in candidates if s.version == version]
    if not candidates:
        wanted = f"{name!r}" + (f" version {version}" if version is not None else "")
        raise SuiteError(f"no suite {wanted} in {suites_dir or suites_dir_default()}")
    return candidates[-1]


def _plain_mean(values: Sequence[float]) -> float:
    # sum/len, as lm-eval's own `mean` aggregation computes it, so equal inputs give equal digits.
    return sum(values) / len(values)


def suite_column_values(
    suite: Suite,
    scores: Iterable[ScoreRow],
    leaf_tasks: Mapping[str, Sequence[str]],
) -> dict[str, float | None]:
    """Each column's leaderboard value: the plain mean of its metric over its leaf tasks.

    Args:
        suite: the suite whose columns are read.
        scores: score rows as lm-eval reported them (task, metric, filter, value).
        leaf_tasks: for each lm-eval name a column uses (task, group or tag), its leaf tasks.
            A plain task may be left out (it is its own leaf).

    Returns:
        ``{column key: value}``; None where a leaf task's value is missing.
    """
    by_key = {(row.task, row.metric, row.filter): row.value for row in scores}
    values: dict[str, float | None] = {}
    for column in suite.columns:
        leaves = [leaf for name in column.lm_eval_names for leaf in leaf_tasks.get(name, [name])]
        found = [by_key.get((leaf, column.metric, column.filter)) for leaf in leaves]
        values[column.key] = None if not found or any(v is None for v in found) else _plain_mean(found)
    return values


def mean_stderr(stderrs: Sequence[float | None]) -> float | None:
    """The standard error of a plain mean of k independent estimates: sqrt(sum se_i^2) / k.

    Var(mean) = sum Var(x_i) / k^2 when the x_i are independent (different test sets: MMLU's subjects,
    the suite's benchmarks). None when any stderr is missing: a partial sum would understate it.
    """
    if not stderrs or any(se is None for se in stderrs):
        return None
    return math.sqrt(sum(se * se for se in stderrs)) / len(stderrs)


def suite_column_stderrs(
    columns: Iterable[SuiteColumn],
    scores: Iterable[ScoreRow],
    leaf_tasks: Mapping[str, Sequence[str]],
) -> dict[str, float | None]:
    """Each column's stderr, as ``suite_column_values`` computes its value: a one-leaf column's own, else
    ``mean_stderr`` of its leaves' (the plain mean of MMLU's 57 subjects)."""
    by_key = {(row.task, row.metric, row.filter): row.stderr for row in scores}
    stderrs: dict[str, float | None] = {}
    for column in columns:
        leaves = [leaf for name in column.lm_eval_names for leaf in leaf_tasks.get(name, [name])]
        if len(leaves) == 1:  # the value is that task's own: so is its stderr
            stderrs[column.key] = by_key.get((leaves[0], column.metric, column.filter))
        else:
            stderrs[column.key] = mean_stderr([by_key.get((leaf, column.metric, column.filter)) for leaf in leaves])
    return stderrs


def suite_average(column_values: Mapping[str, float | None]) -> float | None:
    """The suite score: the plain mean of its column values; None if any column has none."""
    values = list(column_values.values())
    if not values or any(v is None for v in values):
        return None
    return _plain_mean(values)
