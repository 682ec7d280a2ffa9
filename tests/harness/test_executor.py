"""The benchmark executor: spec building from a RegisteredModel, and a run end to end."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from leaderboard.harness.executor import benchmark_spec_build, execute_benchmark, suite_from_spec
from leaderboard.harness.suites import suite_get
from leaderboard.models import RegisteredModel
from runs.executors import EvaluationFailed, RunCancelled, RunContext, get_executor

from .conftest import SUITES_DIR

SPEC_KEYS = {
    "suite",
    "suite_version",
    "suite_title",
    "columns",
    "tasks",
    "model_path",
    "base_model_path",
    "dtype",
    "device",
    "batch_size",
    "apply_chat_template",
    "limit",
    "seed",
}


def test_spec_from_a_registered_model():
    model = RegisteredModel(display_name="m", storage_path="/models/m", precision="bfloat16", use_chat_template=True)
    spec = benchmark_spec_build(model=model, suite_name="openllm_v1", suites_dir=SUITES_DIR)
    assert set(spec) == SPEC_KEYS
    assert (spec["suite"], spec["suite_version"], spec["dtype"], spec["device"], spec["batch_size"]) == (
        "openllm_v1",
        1,
        "bfloat16",
        "auto",
        "auto",
    )
    assert spec["apply_chat_template"] is True and spec["limit"] is None and spec["base_model_path"] is None
    assert spec["seed"] == [0, 1234, 1234, 1234]
    assert {"task": "mmlu", "num_fewshot": 5, "overrides": {}} in spec["tasks"]
    assert (
        suite_from_spec(json.loads(json.dumps(spec))).columns == suite_get("openllm_v1", suites_dir=SUITES_DIR).columns
    )

    adapter = RegisteredModel(
        storage_path="/models/lora", base_model_path="/models/base", weight_type="adapter", precision="float16"
    )
    spec = benchmark_spec_build(
        model=adapter,
        suite_name="kobest",
        suites_dir=SUITES_DIR,
        limit=5,
        device="cpu",
        batch_size=2,
        seed=3,
        apply_chat_template=False,
    )
    assert (spec["model_path"], spec["base_model_path"], spec["dtype"]) == ("/models/lora", "/models/base", "float16")
    assert (spec["limit"], spec["device"], spec["batch_size"], spec["seed"]) == (5, "cpu", 2, [3, 3, 3, 3])
    with pytest.raises(ValueError, match="precision 'int3'"):
        benchmark_spec_build(
            model=RegisteredModel(storage_path="/m", precision="int3"), suite_name="kobest", suites_dir=SUITES_DIR
        )


def test_registered_as_the_benchmark_executor():
    assert get_executor("benchmark") is execute_benchmark


def _context(artifacts: Path, *, cancelled: bool = False):
    progress, log = [], []
    event = threading.Event()
    if cancelled:
        event.set()
    context = RunContext(
        run_id=7,
        artifacts_dir=artifacts,
        cancel_event=event,
        progress_callback=lambda *args: progress.append(args),
        log_callback=log.append,
    )
    return context, progress, log


def test_invalid_spec_fails_cleanly(settings):
    context, _, _ = _context(Path(settings.ARTIFACTS_DIR) / "runs" / "7")
    with pytest.raises(EvaluationFailed, match="not a valid benchmark spec"):
        execute_benchmark(SimpleNamespace(pk=7, spec={"suite": "x"}), context)


def test_cancel_fails_cleanly(settings, tiny_model, real_mirror):
    # The mirror is checked before the cancel flag: without one the run would fail for that reason first.
    model = RegisteredModel(storage_path=str(tiny_model), precision="float32")
    spec = benchmark_spec_build(model=model, suite_name="kobest", suites_dir=SUITES_DIR, device="cpu")
    context, _, _ = _context(Path(settings.ARTIFACTS_DIR) / "runs" / "7", cancelled=True)
    with pytest.raises(RunCancelled):
        execute_benchmark(SimpleNamespace(pk=7, spec=spec), context)


@pytest.mark.slow
def test_benchmark_run_end_to_end(settings, tmp_path, tiny_model, real_mirror):
    settings.DATASET_MIRROR = real_mirror
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "small.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "small",
                "version": 3,
                "title": "Small",
                "columns": [
                    {"key": "copa", "label": "KoBEST COPA", "task": "kobest_copa", "num_fewshot": 2, "metric": "acc"},
                    {"key": "wino", "label": "Winogrande", "task": "winogrande", "num_fewshot": 0, "metric": "acc"},
                ],
            }
        )
    )
    model = RegisteredModel(storage_path=str(tiny_model), precision="float32")
    spec = benchmark_spec_build(model=model, suite_name="small", suites_dir=suites, limit=3, device="cpu")
    artifacts = Path(settings.ARTIFACTS_DIR) / "runs" / "7"
    context, progress, log = _context(artifacts)

    outcome = execute_benchmark(SimpleNamespace(pk=7, spec=json.loads(json.dumps(spec))), context)

    rows = {(r.task, r.metric, r.filter): r for r in outcome.scores}
    copa, wino = rows[("kobest_copa", "acc", "none")], rows[("winogrande", "acc", "none")]
    assert (copa.n_shot, copa.sample_count, wino.n_shot) == (2, 3, 0)
    assert ("kobest_copa", "f1", "none") in rows
    assert rows[("small_average", "average", "none")].value == (copa.value + wino.value) / 2
    assert outcome.details["suite"]["column_values"] == {"copa": copa.value, "wino": wino.value}
    json.dumps(outcome.details)  # stored in a JSONField
    assert outcome.library_versions["lm_eval"] == "0.4.13"
    assert outcome.samples_path == "runs/7/samples.jsonl.gz"
    with gzip.open(Path(settings.ARTIFACTS_DIR) / outcome.samples_path, "rt") as lines:
        assert {json.loads(line)["task"] for line in lines} == {"kobest_copa", "winogrande"}
    assert (artifacts / "lm_eval_tasks" / "kobest_copa.yaml").is_file()
    assert any(str(note).endswith("loglikelihood requests") for _, _, note in progress)
    assert any(line.startswith("Reproduce winogrande: HF_HUB_OFFLINE=1") for line in log)
    assert any("lm_eval" in line for line in log)  # lm-eval's own log lines reach the run log
