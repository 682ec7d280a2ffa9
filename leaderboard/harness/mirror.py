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

Which folder stands in for a dataset, and the cheap per-dataset check, are in ``mirror_layout``; which
dataset a task reads comes from lm-eval's task index through ``task_plan.task_data_sources`` (lm_eval is
imported there, only when called) unless the caller passes ``sources``. The imports go one way
(mirror -> task_plan -> mirror_layout), so this module and the adapter's never import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leaderboard.harness.mirror_layout import DatasetRef, is_hub_dataset, mirror_folder, mirror_problem
from leaderboard.harness.task_plan import task_data_sources

if TYPE_CHECKING:
    from leaderboard.harness.suites import Suite

__all__ = ["DatasetRef", "MirrorEntry", "MirrorReport", "PrepareAction", "is_hub_dataset", "mirror_folder",
           "mirror_prepare", "mirror_problem", "mirror_verify"]


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
        return {"task": self.task, "dataset_path": self.dataset_path, "dataset_name": self.dataset_name,
                "folder": str(self.folder) if self.folder else None, "found": self.found,
                "problem": self.problem, "rows": dict(self.rows)}


@dataclass
class MirrorReport:
    mirror_dir: Path
    suite: str
    entries: list[MirrorEntry]

    @property
    def ok(self) -> bool:
        return all(entry.found for entry in self.entries)

    @property
    def missing(self) -> list[MirrorEntry]:
        return [entry for entry in self.entries if not entry.found]

    def entry(self, task: str) -> MirrorEntry:
        return next(e for e in self.entries if e.task == task)

    def to_dict(self) -> dict[str, Any]:
        return {"mirror_dir": str(self.mirror_dir), "suite": self.suite, "ok": self.ok,
                "entries": [entry.to_dict() for entry in self.entries]}

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


def mirror_verify(
    mirror_dir: Path | str,
    suite: Suite,
    *,
    include_path: Path | str | None = None,
    sources: Mapping[str, DatasetRef] | None = None,
    count_rows: bool = True,
) -> MirrorReport:
    """Check that the mirror holds every dataset a suite's tasks read, with row counts per split.

    Args:
        mirror_dir: the mirror folder (``settings.DATASET_MIRROR``).
        suite: the suite whose leaf tasks are checked.
        include_path: custom task YAML folder (``settings.HARNESS_TASKS_DIR``) for task lookup.
        sources: ``{leaf task: DatasetRef}``; by default read from lm-eval's task index.
        count_rows: also count rows per split (reads parquet metadata only).
    """
    mirror_dir = Path(mirror_dir)
    sources = sources if sources is not None else _suite_sources(suite, include_path)
    entries = []
    for task, ref in sources.items():
        if not is_hub_dataset(ref.dataset_path):
            entries.append(MirrorEntry(task, ref.dataset_path, ref.dataset_name, None, True,
                                       "reads local files, not a hub dataset"))
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
    return MirrorReport(mirror_dir=mirror_dir, suite=suite.name, entries=entries)


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
            raise RuntimeError("HF_HUB_OFFLINE is set (the site settings set it by default): "
                               "run mirror_prepare with HF_HUB_OFFLINE=0 on a machine with network access")
        downloader = snapshot_download
    repo_ids: Sequence[str] = list(dict.fromkeys(
        ref.dataset_path for ref in sources.values() if is_hub_dataset(ref.dataset_path)
    ))
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
