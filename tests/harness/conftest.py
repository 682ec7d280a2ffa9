"""Shared fixtures of the harness tests: a mirror with a SYNTHETIC HellaSwag, and lm-eval references."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
HARNESS_TASKS = REPO_DIR / "harness_tasks"
SUITES_DIR = HARNESS_TASKS / "suites"
_HELLASWAG_WORDS = "the man woman dog ball runs jumps throws kitchen park water bike slowly quickly then".split()


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    from django.conf import settings

    mirror = Path(settings.DATASET_MIRROR)
    if not (mirror / "allenai" / "ai2_arc").is_dir():
        pytest.skip(f"the dataset mirror is not at {mirror}")
    return mirror


def _write_synthetic_hellaswag(repo: Path) -> None:
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


@pytest.fixture(scope="session")
def synthetic_mirror(tmp_path_factory, real_mirror) -> Path:
    """The real mirror's repos (symlinked) plus a SYNTHETIC Rowan/hellaswag."""
    mirror = tmp_path_factory.mktemp("mirror")
    for org in real_mirror.iterdir():
        if org.is_dir():
            for repo in org.iterdir():
                if repo.is_dir():
                    (mirror / org.name).mkdir(exist_ok=True)
                    (mirror / org.name / repo.name).symlink_to(repo)
    _write_synthetic_hellaswag(mirror / "Rowan" / "hellaswag")
    return mirror


def lm_eval_reference(*, model_args: dict[str, str], task: str, num_fewshot: int, overrides: dict[str, Any],
                      mirror: Path, limit: int, batch_size: int) -> dict[str, Any]:
    """lm_eval.simple_evaluate on lm-eval's built-in task, independently of our override YAML: the
    registered YAML is loaded as a config dict, only its dataset_path (and suite overrides) changed."""
    import lm_eval
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    from leaderboard.harness.adapter import datasets_cache_dir, task_manager

    config = load_yaml(task_manager(HARNESS_TASKS).task_index[task].yaml_path, resolve_func=True)
    config.pop("tag", None)
    config["dataset_path"] = str(mirror / config["dataset_path"])
    # The same per-folder Arrow cache as our runs: `datasets`' default cache is keyed by name only.
    config["dataset_kwargs"] = {**(config.get("dataset_kwargs") or {}),
                                "cache_dir": str(datasets_cache_dir(Path(config["dataset_path"])))}
    config.update(overrides)
    return lm_eval.simple_evaluate(
        model="hf", model_args=model_args, tasks=[config], num_fewshot=num_fewshot, device="cpu",
        batch_size=batch_size, limit=limit, task_manager=TaskManager(include_defaults=False),
    )


@pytest.fixture(scope="session")
def reference():
    """``reference(**kwargs)``: lm-eval's own result for a built-in task (see ``lm_eval_reference``)."""
    return lm_eval_reference
