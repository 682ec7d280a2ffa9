"""Results (part of the lm-eval adapter): lm-eval's results dict as the leaderboard's score rows, the rows
lm-eval does not compute (a multi-task column's plain mean, the suite average), the per-sample log, and
results produced elsewhere (the lm-eval CLI's files) read the same way. lm_eval is imported inside
functions only.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaderboard.harness.suites import Suite, mean_stderr, suite_average, suite_column_stderrs, suite_column_values
from leaderboard.harness.task_plan import build_task_plan
from runs.executors import ScoreRow


@dataclass
class HarnessResult:
    """What one lm-eval evaluation gave, in the leaderboard's terms.

    Attributes:
        scores: one row per (task or group, metric, filter) lm-eval reported, plus the plain-mean row
            of each multi-task column and the suite average row when a suite was given.
        column_values: ``{column key: value}`` of the suite's columns (empty without a suite).
        average: the suite score (plain mean of the columns), None if a column has no value.
        details: JSON-safe: ``lm_eval`` (lm-eval's results JSON minus samples: configs, versions,
            n-shot, n-samples, seeds, environment), ``suite``, ``leaf_tasks``, ``datasets``,
            ``model_args``, ``timing`` and ``reproduce_commands`` (one lm-eval CLI line per request).
        library_versions: lm_eval, transformers, torch, datasets, peft, accelerate, python.
        samples_path: the per-sample log (jsonl.gz, a ``task`` field in each line), if written.
    """

    scores: list[ScoreRow]
    column_values: dict[str, float | None] = field(default_factory=dict)
    average: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    samples_path: Path | None = None

    @property
    def lm_eval_results(self) -> dict[str, Any]:
        """lm-eval's results dict (as its CLI writes results_*.json), without samples."""
        return self.details.get("lm_eval", {})

    def score(self, task: str, metric: str, filter: str = "none") -> float | None:
        for row in self.scores:
            if (row.task, row.metric, row.filter) == (task, metric, filter):
                return row.value
        raise KeyError((task, metric, filter))


def _number(value: Any) -> float | None:
    # lm-eval writes "N/A" for a stderr it did not compute.
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _sample_count(raw: Mapping[str, Any], name: str) -> int | None:
    n_samples = raw.get("n-samples", {})
    if name in n_samples:
        return int(n_samples[name]["effective"])
    children = raw.get("group_subtasks", {}).get(name)
    if children:  # a group: the samples of its members
        counts = [_sample_count(raw, child) for child in children]
        return sum(c for c in counts if c is not None)
    return None


def _n_shot(raw: Mapping[str, Any], name: str) -> int | None:
    if (n_shot := raw.get("n-shot", {}).get(name)) is not None:
        return int(n_shot)
    # lm-eval leaves some groups (e.g. mmlu) without n-shot: their members' count, when they agree.
    shots = {_n_shot(raw, child) for child in raw.get("group_subtasks", {}).get(name, [])}
    return shots.pop() if len(shots) == 1 else None


def score_rows_from_results(raw: Mapping[str, Any]) -> list[ScoreRow]:
    """Every metric of every task and group in an lm-eval results dict, as score rows."""
    rows: list[ScoreRow] = []
    seen: set[tuple[str, str, str]] = set()
    for section in ("results", "groups"):
        for name, metrics in raw.get(section, {}).items():
            for key, value in metrics.items():
                metric, sep, filter_key = key.partition(",")
                if not sep or metric.endswith("_stderr") or (name, metric, filter_key) in seen:
                    continue  # "alias", "sample_len"...; stderr goes with its metric
                seen.add((name, metric, filter_key))
                version = raw.get("versions", {}).get(name)
                rows.append(
                    ScoreRow(
                        task=name,
                        metric=metric,
                        value=_number(value),
                        filter=filter_key,
                        stderr=_number(metrics.get(f"{metric}_stderr,{filter_key}")),
                        n_shot=_n_shot(raw, name),
                        sample_count=_sample_count(raw, name),
                        task_version="" if version is None else str(version),
                        higher_is_better=bool(raw.get("higher_is_better", {}).get(name, {}).get(metric, True)),
                    )
                )
    return rows


def _leaves_from_group_subtasks(name: str, group_subtasks: Mapping[str, Sequence[str]]) -> list[str]:
    if name not in group_subtasks:
        return [name]
    return [leaf for child in group_subtasks[name] for leaf in _leaves_from_group_subtasks(child, group_subtasks)]


def _suite_rows(
    suite: Suite,
    rows: Sequence[ScoreRow],
    leaf_tasks: Mapping[str, Sequence[str]],
    column_values: Mapping[str, float | None],
    average: float | None,
) -> list[ScoreRow]:
    """The rows lm-eval does not compute: multi-task column plain means and the suite average."""
    by_key = {(r.task, r.metric, r.filter): r for r in rows}
    version = f"{suite.name}@{suite.version}"
    column_stderrs = suite_column_stderrs(suite.columns, rows, leaf_tasks)
    extra = []
    for column in suite.columns:
        if column.score_task in {r.task for r in rows}:
            continue  # a single-task column: lm-eval's own row is the value
        leaves = [leaf for name in column.lm_eval_names for leaf in leaf_tasks.get(name, [name])]
        leaf_rows = [by_key.get((leaf, column.metric, column.filter)) for leaf in leaves]
        extra.append(
            ScoreRow(
                task=column.score_task,
                metric=column.metric,
                value=column_values[column.key],
                filter=column.filter,
                stderr=column_stderrs[column.key],
                n_shot=column.num_fewshot,
                sample_count=sum(r.sample_count or 0 for r in leaf_rows if r) or None,
                task_version=version,
                higher_is_better=all(r.higher_is_better for r in leaf_rows if r),
            )
        )
    extra.append(
        ScoreRow(
            task=suite.average_task,
            metric="average",
            value=average,
            task_version=version,
            stderr=mean_stderr(list(column_stderrs.values())),
        )
    )
    return extra


def build_result(
    raw: dict[str, Any],
    *,
    suite: Suite | None,
    leaf_tasks: Mapping[str, Sequence[str]],
    details: dict[str, Any],
    samples_path: Path | None,
) -> HarnessResult:
    rows = score_rows_from_results(raw)
    column_values: dict[str, float | None] = {}
    average = None
    if suite is not None:
        column_values = suite_column_values(suite, rows, leaf_tasks)
        average = suite_average(column_values)
        rows += _suite_rows(suite, rows, leaf_tasks, column_values, average)
        details["suite"] = {
            **suite.to_dict(),
            "column_values": column_values,
            "average": average,
            "score_tasks": {c.key: c.score_task for c in suite.columns},
        }
    details["lm_eval"] = raw
    details["leaf_tasks"] = {name: list(leaves) for name, leaves in leaf_tasks.items()}
    return HarnessResult(
        scores=rows,
        column_values=column_values,
        average=average,
        details=details,
        library_versions=library_versions(),
        samples_path=samples_path,
    )


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": sys.version.split()[0]}
    for package in ("lm_eval", "transformers", "torch", "datasets", "peft", "accelerate", "huggingface_hub"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            pass
    return versions


def write_samples(samples: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> int:
    """One jsonl.gz line per sample, its task named in the line; returns the number of lines."""
    from lm_eval.utils import handle_non_serializable

    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for task, task_samples in samples.items():
            for sample in task_samples:
                out.write(
                    json.dumps({"task": task, **sample}, default=handle_non_serializable, ensure_ascii=False) + "\n"
                )
                count += 1
    return count


def merge_results(merged: dict[str, Any], results: Mapping[str, Any]) -> None:
    """Fold one simple_evaluate result into the run's: per-task sections merge, run-wide keys
    (model config, seeds, environment) are the same in every call and kept from the first."""
    for key, value in results.items():
        if key in (
            "results",
            "groups",
            "group_subtasks",
            "configs",
            "versions",
            "n-shot",
            "higher_is_better",
            "n-samples",
            "samples",
        ):
            merged.setdefault(key, {}).update(value)
        else:
            merged.setdefault(key, value)


# lm-eval's CLI names per-task sample files samples_<task>_<date>.jsonl.
_CLI_SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_\d{4}-\d{2}-\d{2}T[\d.\-]+\.jsonl(\.gz)?$")


def _read_samples(path: Path) -> Iterable[dict[str, Any]]:
    cli_name = _CLI_SAMPLES_RE.match(path.name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                sample = json.loads(line)
                if "task" not in sample:
                    if not cli_name:
                        raise ValueError(
                            f"{path}: a sample has no 'task' field and the file name does not "
                            f"follow lm-eval's samples_<task>_<date>.jsonl"
                        )
                    sample = {"task": cli_name["task"], **sample}
                yield sample


def load_results_file(
    results_json_path: Path | str,
    samples_paths: Sequence[Path | str] = (),
    *,
    suite: Suite | None = None,
    samples_out: Path | str | None = None,
    include_path: Path | str | None = None,
) -> HarnessResult:
    """Import an lm-eval results JSON (and its samples) produced elsewhere, e.g. by the lm-eval CLI.

    Args:
        results_json_path: lm-eval's ``results_<date>.json`` (or our ``details["lm_eval"]`` dumped).
        samples_paths: lm-eval's ``samples_<task>_<date>.jsonl`` files, or our jsonl.gz.
        suite: compute the suite's column values and average too.
        samples_out: write all samples into one jsonl.gz here (the result's ``samples_path``).
        include_path: custom task folder, only needed to expand a suite column given as a tag.
    """
    raw = json.loads(Path(results_json_path).read_text(encoding="utf-8"))
    raw.pop("samples", None)
    if "results" not in raw:
        raise ValueError(f"{results_json_path} is not an lm-eval results file (no 'results')")
    group_subtasks = raw.get("group_subtasks", {})
    names = [name for column in suite.columns for name in column.lm_eval_names] if suite else []
    reported = set(raw["results"]) | set(raw.get("groups", {}))
    # A tag leaves no trace in lm-eval's results (it only lists tasks): expand those via the index.
    tags = [name for name in names if name not in reported]
    leaf_tasks = {name: _leaves_from_group_subtasks(name, group_subtasks) for name in names if name in reported}
    if tags:
        leaf_tasks.update(build_task_plan([(tag, 0) for tag in tags], include_path=include_path).leaf_tasks)

    samples: dict[str, list[dict[str, Any]]] = {}
    for path in samples_paths:
        for sample in _read_samples(Path(path)):
            samples.setdefault(sample.pop("task"), []).append(sample)
    written = None
    if samples_out is not None and samples:
        written = Path(samples_out)
        write_samples(samples, written)
    details = {"imported_from": str(results_json_path), "samples_logged": sum(len(v) for v in samples.values())}
    return build_result(raw, suite=suite, leaf_tasks=leaf_tasks, details=details, samples_path=written)
