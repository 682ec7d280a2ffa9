"""Test data in the exact schema of benchmarks the shared mirror lacks. SYNTHETIC: never report it as the real thing."""

from __future__ import annotations

import random
from pathlib import Path

_HELLASWAG_WORDS = "the man woman dog ball runs jumps throws kitchen park water bike slowly quickly then".split()


def write_synthetic_hellaswag(repo: Path) -> None:
    """A few rows in the exact Rowan/hellaswag schema. SYNTHETIC: never report them as HellaSwag."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("ind", pa.int32()), ("activity_label", pa.string()), ("ctx_a", pa.string()), ("ctx_b", pa.string()),
        ("ctx", pa.string()), ("endings", pa.list_(pa.string())), ("source_id", pa.string()),
        ("split", pa.string()), ("split_type", pa.string()), ("label", pa.string()),
    ])
    rng = random.Random(0)

    def words(n: int) -> str:
        return " ".join(rng.choice(_HELLASWAG_WORDS) for _ in range(n))

    (repo / "data").mkdir(parents=True)
    for split, count in (("train", 30), ("validation", 12), ("test", 6)):
        rows = []
        for i in range(count):
            ctx_a, ctx_b = words(8), words(4)
            rows.append({
                "ind": i, "activity_label": f"Synthetic activity {i % 3} [title]", "ctx_a": ctx_a, "ctx_b": ctx_b,
                "ctx": f"{ctx_a} {ctx_b}", "endings": [words(5) for _ in range(4)],
                "source_id": f"SYNTHETIC~{split}~{i}", "split": "val" if split == "validation" else split,
                "split_type": "indomain", "label": "" if split == "test" else str(rng.randrange(4)),
            })
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), repo / "data" / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n"
        "  - split: validation\n    path: data/validation-*\n  - split: test\n    path: data/test-*\n---\n"
        "SYNTHETIC test fixture in the Rowan/hellaswag schema (random words). NOT HellaSwag data.\n",
        encoding="utf-8",
    )
