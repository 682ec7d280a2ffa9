"""A run's TaskManager reuses the cached lm-eval index, and holds exactly the index a full build would."""

from __future__ import annotations

import pytest

from leaderboard.harness.adapter import build_task_plan, run_task_manager, write_task_overrides
from leaderboard.harness.suites import suite_get

from .conftest import HARNESS_TASKS, SUITES_DIR

pytestmark = pytest.mark.slow


def test_run_index_equals_a_full_build(tmp_path, synthetic_mirror):
    from lm_eval.tasks import TaskManager

    requests = suite_get("openllm_v1", suites_dir=SUITES_DIR).task_requests()
    plan = build_task_plan(requests, include_path=HARNESS_TASKS)
    write_task_overrides(plan, mirror_dir=synthetic_mirror, tasks_dir=tmp_path / "tasks")

    fast = run_task_manager(include_path=HARNESS_TASKS, tasks_dir=tmp_path / "tasks", metadata={"dtype": "float32"})
    full = TaskManager(
        include_path=[str(HARNESS_TASKS.resolve()), str(tmp_path / "tasks")], metadata={"dtype": "float32"}
    )

    def summary(manager):
        return {
            name: (entry.kind, str(entry.yaml_path), sorted(entry.tags), entry.cfg)
            for name, entry in manager.task_index.items()
        }

    assert summary(fast) == summary(full)
    for listing in ("all_tasks", "all_subtasks", "all_groups", "all_tags"):
        assert getattr(fast, listing) == getattr(full, listing), listing
    # The run's overrides win, and lm-eval's groups still reach them by name.
    arc = fast.task_index["arc_challenge"]
    assert arc.yaml_path.parent == tmp_path / "tasks"
    assert arc.cfg["dataset_path"] == str(synthetic_mirror / "allenai" / "ai2_arc")
    loaded = fast.load(["arc_challenge", "mmlu"])
    assert loaded["tasks"]["arc_challenge"].config.num_fewshot == 25
    assert len([t for t in loaded["tasks"] if t.startswith("mmlu_")]) == 57
    assert loaded["tasks"]["mmlu_anatomy"].config.dataset_path == str(synthetic_mirror / "cais" / "mmlu")
