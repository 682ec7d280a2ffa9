"""Shared fixtures of the harness tests: a mirror with a SYNTHETIC HellaSwag, and lm-eval references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mirror_fixtures import write_synthetic_hellaswag

REPO_DIR = Path(__file__).resolve().parents[2]
HARNESS_TASKS = REPO_DIR / "harness_tasks"
SUITES_DIR = HARNESS_TASKS / "suites"


@pytest.fixture(scope="session")
def real_mirror() -> Path:
    from django.conf import settings

    mirror = Path(settings.DATASET_MIRROR)
    if not (mirror / "allenai" / "ai2_arc").is_dir():
        pytest.skip(f"the dataset mirror is not at {mirror}")
    return mirror


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
    write_synthetic_hellaswag(mirror / "Rowan" / "hellaswag")
    return mirror


def lm_eval_reference(
    *,
    model_args: dict[str, str],
    task: str,
    num_fewshot: int,
    overrides: dict[str, Any],
    mirror: Path,
    limit: int,
    batch_size: int,
    log_samples: bool = True,
) -> dict[str, Any]:
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
    config["dataset_kwargs"] = {
        **(config.get("dataset_kwargs") or {}),
        "cache_dir": str(datasets_cache_dir(Path(config["dataset_path"]))),
    }
    config.update(overrides)
    return lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        tasks=[config],
        num_fewshot=num_fewshot,
        device="cpu",
        batch_size=batch_size,
        limit=limit,
        task_manager=TaskManager(include_defaults=False),
        log_samples=log_samples,
    )


@pytest.fixture(scope="session")
def reference():
    """``reference(**kwargs)``: lm-eval's own result for a built-in task (see ``lm_eval_reference``)."""
    return lm_eval_reference
