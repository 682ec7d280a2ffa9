"""The offline dataset mirror: a folder laid out like Hugging Face dataset repos (``<org>/<name>/...``).

lm-eval tasks name their data by hub id (``dataset_path: allenai/ai2_arc``, ``dataset_name: ARC-Challenge``).
The adapter reads ``<mirror>/<dataset_path>`` instead; ``datasets.load_dataset`` gives the same rows from
that folder as from the hub when the folder is a copy of the repo (configs declared in its README.md).

- ``mirror_verify`` says, per task of a suite, which folder and config it reads and how many rows each
  split has there (or what is missing).
- ``mirror_prepare`` fills the mirror on a machine WITH network access, with
  ``huggingface_hub.snapshot_download(repo_type="dataset", local_dir=<mirror>/<org>/<name>)``. The
  settings force ``HF_HUB_OFFLINE=1`` by default, so run it with ``HF_HUB_OFFLINE=0`` set. A repo that
  only holds a loading script needs ``revision="refs/convert/parquet"`` (the hub's parquet export).

- ``mirror_fingerprint`` digests what the mirror holds for a suite's datasets (names, sizes, times; no
  data read): a saved report whose fingerprint differs no longer describes the mirror, and
  ``mirror_recheck`` re-checks its entries cheaply until a full check replaces it
  (``leaderboard.mirror_reports``).

Which folder stands in for a dataset, and the cheap per-dataset check, are in ``mirror_layout``; which
dataset a task reads comes from lm-eval's task index through ``task_plan.task_data_sources`` (lm_eval is
imported there, only when called) unless the caller passes ``sources``. The imports go one way
(mirror -> task_plan -> mirror_layout), so this module and the adapter's never import each other.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leaderboard.harness.mirror_layout import DatasetRef, is_hub_dataset, mirror_folder, mirror_problem
from leaderboard.harness.task_plan import task_data_sources

if TYPE_CHECKING:
    from leaderboard.harness.suites import Suite

__all__ = [
    "DatasetRef",
    "MirrorEntry",
    "MirrorReport",
    "PrepareAction",
    "is_hub_dataset",
    "mirror_folder",
    "mirror_prepare",
    "mirror_problem",
    "mirror_verify",
]

# Folder levels a fingerprint descends (<repo>/<config>/<split files> needs 2).
_FINGERPRINT_MAX_DEPTH = 8


@dataclass
class MirrorEntry:
    task: str
    dataset_path: str
    dataset_name: str | None
    folder: Path | None  # None: the task reads local files or a packaged builder, not a hub repo
    found: bool
    problem: str = ""
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "dataset_path": self.dataset_path,
            "dataset_name": self.dataset_name,
            "folder": str(self.folder) if self.folder else None,
            "found": self.found,
            "problem": self.problem,
            "rows": dict(self.rows),
        }


@dataclass
class MirrorReport:
    mirror_dir: Path
    suite: str
    entries: list[MirrorEntry]
    # {column key: the leaf tasks its value needs}: which columns a missing dataset takes out.
    columns: dict[str, list[str]] = field(default_factory=dict)
    # mirror_fingerprint of the datasets read, taken before they were checked (see mirror_verify).
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return all(entry.found for entry in self.entries)

    @property
    def missing(self) -> list[MirrorEntry]:
        return [entry for entry in self.entries if not entry.found]

    def entry(self, task: str) -> MirrorEntry:
        return next(e for e in self.entries if e.task == task)

    def missing_columns(self) -> dict[str, list[dict[str, Any]]]:
        """``{column key: its leaf tasks the mirror cannot serve}`` for every column that lacks data."""
        return missing_columns(self.columns, [entry.to_dict() for entry in self.entries])

    def to_dict(self) -> dict[str, Any]:
        return {
            "mirror_dir": str(self.mirror_dir),
            "suite": self.suite,
            "ok": self.ok,
            "entries": [entry.to_dict() for entry in self.entries],
            "columns": {key: list(leaves) for key, leaves in self.columns.items()},
            "fingerprint": self.fingerprint,
        }

    def to_text(self) -> str:
        lines = [f"Mirror {self.mirror_dir} for suite {self.suite}: {'complete' if self.ok else 'INCOMPLETE'}"]
        for e in self.entries:
            config = f" [{e.dataset_name}]" if e.dataset_name else ""
            detail = ", ".join(f"{split} {n}" for split, n in e.rows.items()) if e.found else e.problem
            lines.append(f"  {'ok ' if e.found else 'MISSING'} {e.task}: {e.dataset_path}{config} -> {detail}")
        return "\n".join(lines)


def _count_rows(folder: Path, dataset_name: str | None) -> dict[str, int]:
    """Rows per split, from parquet metadata where possible (fast), else by loading the split."""
    import datasets
    import pyarrow.parquet as pq

    builder = datasets.load_dataset_builder(str(folder), dataset_name)
    rows: dict[str, int] = {}
    for split, files in (builder.config.data_files or {}).items():
        files = [str(f) for f in files]
        if files and all(f.endswith(".parquet") for f in files):
            rows[str(split)] = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        else:
            rows[str(split)] = len(datasets.load_dataset(str(folder), dataset_name, split=str(split)))
    return rows


def _suite_sources(suite: Suite, include_path: Path | str | None) -> dict[str, DatasetRef]:
    return task_data_sources(suite.task_requests(), include_path=include_path)


def _suite_column_leaves(suite: Suite, include_path: Path | str | None) -> dict[str, list[str]]:
    from leaderboard.harness.task_plan import column_leaf_tasks

    return column_leaf_tasks(suite, include_path=include_path)


def mirror_fingerprint(mirror_dir: Path | str, dataset_paths: Iterable[str]) -> str:
    """A digest of what the mirror holds for these hub datasets (hub ids only: see ``hub_dataset_paths``):
    each folder's file names, sizes and modification times (an absent folder counts too, so adding one
    changes the digest). Cheap (no file is read; ~6 ms for the seven repos of both suites): a web request
    can tell whether a saved check still describes the mirror."""
    mirror_dir = Path(mirror_dir)
    digest = hashlib.sha256()
    for dataset_path in sorted(set(dataset_paths)):
        folder = mirror_folder(mirror_dir, dataset_path)
        digest.update(f"\x01{dataset_path}\x00{folder.is_dir()}\n".encode())
        _digest_folder(str(folder), "", digest, depth=0)
    return digest.hexdigest()[:32]


def _digest_folder(folder: str, prefix: str, digest: Any, *, depth: int) -> None:
    # os.scandir, not Path.walk: a tenth of the time on mmlu's ~230 files. Links are followed (a mirror
    # may link its repos), with a depth bound against a link loop.
    if depth > _FINGERPRINT_MAX_DEPTH:
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        name = f"{prefix}{entry.name}"
        try:
            if entry.is_dir():
                _digest_folder(entry.path, f"{name}/", digest, depth=depth + 1)
                continue
            stat = entry.stat()
        except OSError:  # a dangling link, or a file removed while walking
            digest.update(f"{name}\x00?\n".encode())
            continue
        digest.update(f"{name}\x00{stat.st_size}\x00{stat.st_mtime_ns}\n".encode())


def hub_dataset_paths(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The hub datasets a saved report's entries read from the mirror (no ``datasets`` import: the web
    process reads reports)."""
    return [str(entry["dataset_path"]) for entry in entries if entry.get("folder") and entry.get("dataset_path")]


def mirror_recheck(mirror_dir: Path | str, entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A saved report's entries checked again against the mirror as it is now (folders and configs only,
    no rows counted): what a web request can afford when the mirror changed since the last full check."""
    checked = []
    for entry in entries:
        entry = dict(entry)
        if entry.get("folder"):  # read from the mirror (a task reading local files has none)
            problem = mirror_problem(mirror_dir, DatasetRef(str(entry["dataset_path"]), entry.get("dataset_name")))
            rows = entry.get("rows") if entry.get("found") and problem is None else {}
            entry.update(found=problem is None, problem=problem or "", rows=rows or {})
        checked.append(entry)
    return checked


def missing_columns(
    columns: Mapping[str, Sequence[str]], entries: Sequence[Mapping[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """``{column key: the report entries of its leaf tasks the mirror lacks}``, for the columns that lack any."""
    missing = {entry["task"]: dict(entry) for entry in entries if not entry.get("found")}
    gaps: dict[str, list[dict[str, Any]]] = {}
    for key, leaves in columns.items():
        lacking = [missing[leaf] for leaf in leaves if leaf in missing]
        if lacking:
            gaps[key] = lacking
    return gaps


def mirror_verify(
    mirror_dir: Path | str,
    suite: Suite,
    *,
    include_path: Path | str | None = None,
    sources: Mapping[str, DatasetRef] | None = None,
    column_leaves: Mapping[str, Sequence[str]] | None = None,
    count_rows: bool = True,
) -> MirrorReport:
    """Check that the mirror holds every dataset a suite's tasks read, with row counts per split.

    Args:
        mirror_dir: the mirror folder (``settings.DATASET_MIRROR``).
        suite: the suite whose leaf tasks are checked.
        include_path: custom task YAML folder (``settings.HARNESS_TASKS_DIR``) for task lookup.
        sources: ``{leaf task: DatasetRef}``; by default read from lm-eval's task index.
        column_leaves: ``{column key: its leaf tasks}``; by default read from lm-eval's task index too
            (with ``sources`` given and this not, each column's own task names are its leaves).
        count_rows: also count rows per split (reads parquet metadata only).
    """
    mirror_dir = Path(mirror_dir)
    if column_leaves is None:
        column_leaves = (
            _suite_column_leaves(suite, include_path)
            if sources is None
            else {c.key: list(c.lm_eval_names) for c in suite.columns}
        )
    sources = sources if sources is not None else _suite_sources(suite, include_path)
    # Taken first: a folder changed while it is checked makes the next reader see a changed mirror.
    fingerprint = mirror_fingerprint(
        mirror_dir, [ref.dataset_path for ref in sources.values() if is_hub_dataset(ref.dataset_path)]
    )
    entries = []
    for task, ref in sources.items():
        if not is_hub_dataset(ref.dataset_path):
            entries.append(
                MirrorEntry(
                    task, ref.dataset_path, ref.dataset_name, None, True, "reads local files, not a hub dataset"
                )
            )
            continue
        folder = mirror_folder(mirror_dir, ref.dataset_path)
        problem = mirror_problem(mirror_dir, ref)
        entry = MirrorEntry(task, ref.dataset_path, ref.dataset_name, folder, problem is None, problem or "")
        if entry.found and count_rows:
            try:
                entry.rows = _count_rows(folder, ref.dataset_name)
            except Exception as exc:  # a broken copy is a finding of the report, not a crash
                entry.found, entry.problem = False, f"cannot be read: {exc}"
        entries.append(entry)
    return MirrorReport(
        mirror_dir=mirror_dir,
        suite=suite.name,
        entries=entries,
        columns={key: list(leaves) for key, leaves in column_leaves.items()},
        fingerprint=fingerprint,
    )


@dataclass(frozen=True)
class PrepareAction:
    repo_id: str
    local_dir: Path
    downloaded: bool


def mirror_prepare(
    mirror_dir: Path | str,
    suite: Suite,
    *,
    include_path: Path | str | None = None,
    sources: Mapping[str, DatasetRef] | None = None,
    revision: str | None = None,
    skip_existing: bool = True,
    downloader: Callable[..., Any] | None = None,
) -> list[PrepareAction]:
    """Download the dataset repos a suite needs into the mirror (needs network; run where there is one).

    Args:
        mirror_dir: the mirror folder to fill.
        suite: the suite whose tasks' datasets are fetched.
        include_path: custom task YAML folder for task lookup.
        sources: ``{leaf task: DatasetRef}``; by default read from lm-eval's task index.
        revision: hub revision for every repo (``"refs/convert/parquet"`` for script-only repos).
        skip_existing: leave repos whose mirror folder already exists alone.
        downloader: stands in for ``huggingface_hub.snapshot_download`` (tests inject a fake).

    Returns:
        One action per distinct repo, in first-use order.
    """
    mirror_dir = Path(mirror_dir)
    sources = sources if sources is not None else _suite_sources(suite, include_path)
    if downloader is None:
        import huggingface_hub.constants
        from huggingface_hub import snapshot_download

        if huggingface_hub.constants.HF_HUB_OFFLINE:
            raise RuntimeError(
                "HF_HUB_OFFLINE is set (the site settings set it by default): "
                "run mirror_prepare with HF_HUB_OFFLINE=0 on a machine with network access"
            )
        downloader = snapshot_download
    repo_ids: Sequence[str] = list(
        dict.fromkeys(ref.dataset_path for ref in sources.values() if is_hub_dataset(ref.dataset_path))
    )
    actions = []
    for repo_id in repo_ids:
        local_dir = mirror_folder(mirror_dir, repo_id)
        if skip_existing and local_dir.is_dir() and any(local_dir.iterdir()):
            actions.append(PrepareAction(repo_id, local_dir, downloaded=False))
            continue
        local_dir.mkdir(parents=True, exist_ok=True)
        downloader(repo_id=repo_id, repo_type="dataset", local_dir=str(local_dir), revision=revision)
        actions.append(PrepareAction(repo_id, local_dir, downloaded=True))
    return actions
