"""Delta weights through lm-eval's own ``delta=``: the site's executor on (base, delta) scores exactly what
lm_eval.simple_evaluate gives on the merged model (base + delta), on the cut-down mirror."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from leaderboard.harness.executor import benchmark_spec_build, execute_benchmark
from leaderboard.models import RegisteredModel
from leaderboard.tiny_model import build_tiny_model
from runs.executors import RunContext
from tests.delta_models import delta_folder_make, merged_folder_make

from .conftest import lm_eval_reference

LIMIT = 3
CPU_BATCH = 4  # what the executor uses on CPU ("auto" -> adapter.CPU_BATCH_SIZE)
COLUMNS = [
    {"key": "copa", "label": "KoBEST COPA", "task": "kobest_copa", "num_fewshot": 2, "metric": "acc"},
    {"key": "wino", "label": "Winogrande", "task": "winogrande", "num_fewshot": 0, "metric": "acc"},
]

pytestmark = pytest.mark.slow


@pytest.fixture
def folders(tiny_model, model_root):
    finetuned = build_tiny_model(model_root / "finetuned", seed=7)
    delta = delta_folder_make(base=tiny_model, finetuned=finetuned, out=model_root / "delta")
    merged = merged_folder_make(base=tiny_model, delta=delta, out=model_root / "merged")
    return tiny_model, delta, merged


def test_delta_scores_equal_lm_eval_on_the_merged_model(settings, tmp_path, folders, mini_mirror):
    base, delta, merged = folders
    settings.DATASET_MIRROR = mini_mirror
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "small.yaml").write_text(
        yaml.safe_dump({"name": "small", "version": 1, "title": "Small", "columns": COLUMNS})
    )
    model = RegisteredModel(
        storage_path=str(delta), base_model_path=str(base), weight_type="delta", precision="float32"
    )
    spec = json.loads(
        json.dumps(benchmark_spec_build(model=model, suite_name="small", suites_dir=suites, limit=LIMIT, device="cpu"))
    )
    assert (spec["weight_type"], spec["base_model_path"]) == ("delta", str(base))
    context = RunContext(
        run_id=9,
        artifacts_dir=Path(settings.ARTIFACTS_DIR) / "runs" / "9",
        cancel_event=threading.Event(),
        progress_callback=lambda *args: None,
        log_callback=lambda line: None,
    )

    outcome = execute_benchmark(SimpleNamespace(pk=9, spec=spec), context)

    assert outcome.details["model_args"] == {"pretrained": str(base), "delta": str(delta), "dtype": "float32"}
    assert all(
        f"delta={delta}" in command and f"pretrained={base}" in command
        for command in outcome.details["reproduce_commands"].values()
    )
    stored = {(row.task, row.metric, row.filter): (row.value, row.stderr) for row in outcome.scores}
    samples: dict[str, list] = {}
    with gzip.open(Path(settings.ARTIFACTS_DIR) / outcome.samples_path, "rt") as lines:
        for line in lines:
            sample = json.loads(line)
            samples.setdefault(sample["task"], []).append(sample)
    compared = 0
    for column in COLUMNS:
        reference = lm_eval_reference(
            model_args={"pretrained": str(merged), "dtype": "float32"},
            task=column["task"],
            num_fewshot=column["num_fewshot"],
            overrides={},
            mirror=mini_mirror,
            limit=LIMIT,
            batch_size=CPU_BATCH,
            log_samples=True,
        )
        # Per sample, the model's answers (loglikelihoods) are the merged model's to the last bit: the delta
        # was added, not ignored (the fine-tuned weights differ from the base's).
        assert [s["resps"] for s in samples[column["task"]]] == json.loads(
            json.dumps([s["resps"] for s in reference["samples"][column["task"]]], default=str)
        )
        for key, value in reference["results"][column["task"]].items():
            metric, sep, filter_key = key.partition(",")
            if not sep or metric.endswith("_stderr"):
                continue
            stderr = reference["results"][column["task"]].get(f"{metric}_stderr,{filter_key}")
            assert stored[(column["task"], metric, filter_key)] == (value, stderr if stderr != "N/A" else None), key
            compared += 1
    assert compared >= 3
