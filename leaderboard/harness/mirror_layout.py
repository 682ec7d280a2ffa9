"""How the offline dataset mirror is laid out: which folder stands in for a hub dataset, and whether it
serves the config a task asks for. Cheap checks only (no data is read, no lm_eval import), shared by the
task planning (``task_plan``) and the mirror's verify/prepare commands (``mirror``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

# datasets' packaged builders: a task naming one of these reads local files, never the hub.
_PACKAGED_BUILDERS_FALLBACK = frozenset(
    {
        "json",
        "csv",
        "parquet",
        "text",
        "arrow",
        "pandas",
        "imagefolder",
        "audiofolder",
        "videofolder",
        "webdataset",
        "xml",
        "sql",
        "generator",
        "cache",
        "spark",
    }
)


@dataclass(frozen=True)
class DatasetRef:
    """Where an lm-eval task reads its data from, as its task YAML says it."""

    dataset_path: str
    dataset_name: str | None = None


def _packaged_builders() -> frozenset[str]:
    try:
        from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES
    except ImportError:  # pragma: no cover - datasets moved it
        return _PACKAGED_BUILDERS_FALLBACK
    return frozenset(_PACKAGED_DATASETS_MODULES)


def is_hub_dataset(dataset_path: str | None) -> bool:
    """True when ``dataset_path`` is a hub repo id (so it is read from the mirror)."""
    if not dataset_path or Path(dataset_path).is_absolute() or dataset_path.startswith("."):
        return False
    return dataset_path not in _packaged_builders()


def mirror_folder(mirror_dir: Path | str, dataset_path: str) -> Path:
    """The mirror folder that stands in for hub repo ``dataset_path``."""
    return Path(mirror_dir) / dataset_path


def _declared_configs(folder: Path) -> list[str] | None:
    """The config names a repo's README.md header declares, or None if it declares none."""
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    stat = readme.stat()
    configs = _readme_configs(str(readme), stat.st_mtime_ns, stat.st_size)
    return list(configs) if configs is not None else None


@functools.lru_cache(maxsize=64)
def _readme_configs(readme_path: str, _mtime_ns: int, _size: int) -> tuple[str, ...] | None:
    # Cached per file version: a run's check asks once per leaf task, and cais/mmlu's header
    # (57 configs with their features) takes ~30 ms to parse each time.
    text = Path(readme_path).read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    header = text[3:].split("\n---", 1)[0]
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError:
        return None
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not isinstance(configs, list):
        return None
    return tuple(str(c.get("config_name", "default")) for c in configs if isinstance(c, dict))


def mirror_problem(mirror_dir: Path | str, ref: DatasetRef) -> str | None:
    """Why the mirror cannot serve ``ref`` (a sentence naming the dataset and folder), or None.

    Cheap (no data is read): the adapter calls it before loading a model.
    """
    folder = mirror_folder(mirror_dir, ref.dataset_path)
    if not folder.is_dir():
        return f"dataset {ref.dataset_path!r} is not in the dataset mirror (looked for the folder {folder})"
    if not any(folder.iterdir()):
        return f"dataset {ref.dataset_path!r}: its mirror folder {folder} is empty"
    if ref.dataset_name:
        configs = _declared_configs(folder)
        known = configs if configs is not None else [p.name for p in folder.iterdir() if p.is_dir()]
        if ref.dataset_name not in known:
            return (
                f"dataset {ref.dataset_path!r} has no config {ref.dataset_name!r} in the mirror folder {folder} "
                f"(found: {', '.join(sorted(known)) or 'none'})"
            )
    return None
