"""Test data in the exact schema of benchmarks the shared mirror lacks. SYNTHETIC: never report it as the real thing."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

_HELLASWAG_WORDS = "the man woman dog ball runs jumps throws kitchen park water bike slowly quickly then".split()


def write_synthetic_hellaswag(repo: Path) -> None:
    """A few rows in the exact Rowan/hellaswag schema. SYNTHETIC: never report them as HellaSwag."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("ind", pa.int32()),
            ("activity_label", pa.string()),
            ("ctx_a", pa.string()),
            ("ctx_b", pa.string()),
            ("ctx", pa.string()),
            ("endings", pa.list_(pa.string())),
            ("source_id", pa.string()),
            ("split", pa.string()),
            ("split_type", pa.string()),
            ("label", pa.string()),
        ]
    )
    rng = random.Random(0)

    def words(n: int) -> str:
        return " ".join(rng.choice(_HELLASWAG_WORDS) for _ in range(n))

    (repo / "data").mkdir(parents=True)
    for split, count in (("train", 30), ("validation", 12), ("test", 6)):
        rows = []
        for i in range(count):
            ctx_a, ctx_b = words(8), words(4)
            rows.append(
                {
                    "ind": i,
                    "activity_label": f"Synthetic activity {i % 3} [title]",
                    "ctx_a": ctx_a,
                    "ctx_b": ctx_b,
                    "ctx": f"{ctx_a} {ctx_b}",
                    "endings": [words(5) for _ in range(4)],
                    "source_id": f"SYNTHETIC~{split}~{i}",
                    "split": "val" if split == "validation" else split,
                    "split_type": "indomain",
                    "label": "" if split == "test" else str(rng.randrange(4)),
                }
            )
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), repo / "data" / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: validation\n    path: data/validation-*\n  - split: test\n    path: data/test-*\n---\n"
        "SYNTHETIC test fixture in the Rowan/hellaswag schema (random words). NOT HellaSwag data.\n",
        encoding="utf-8",
    )


def mirror_build(target: Path, *, source: Path, rows: Callable[[Path], int] | None = None) -> Path:
    """A dataset mirror at ``target``: every repo of the mirror ``source``, plus a SYNTHETIC Rowan/hellaswag
    when ``source`` has none.

    Args:
        target: the new mirror's folder.
        source: the real mirror (``settings.DATASET_MIRROR``).
        rows: ``rows(parquet file) -> row count``: each file is copied cut to that many rows. Without it,
            the repos are symlinked whole and keep their real row counts.
    """
    import pyarrow.parquet as pq

    for readme in source.glob("*/*/README.md"):
        repo = readme.parent
        out = target / repo.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if rows is None:
            out.symlink_to(repo.resolve(), target_is_directory=True)
            continue
        out.mkdir()
        shutil.copy(readme, out / "README.md")
        for parquet in repo.rglob("*.parquet"):
            cut = out / parquet.relative_to(repo)
            cut.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pq.read_table(parquet).slice(0, rows(parquet)), cut)
    if not (target / "Rowan" / "hellaswag").exists():
        write_synthetic_hellaswag(target / "Rowan" / "hellaswag")
    return target


def mirror_without(target: Path, *, source: Path, drop: tuple[str, ...] = ("Rowan/hellaswag",)) -> Path:
    """A mirror at ``target`` holding every repo of ``source`` (symlinked) except the ``drop``ped ones: a
    mirror that lacks some of a suite's datasets, as the shared one lacks HellaSwag."""
    for readme in sorted(source.glob("*/*/README.md")):
        repo = readme.parent
        name = str(repo.relative_to(source))
        if name in drop:
            continue
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.symlink_to(repo.resolve(), target_is_directory=True)
    target.mkdir(parents=True, exist_ok=True)
    return target
