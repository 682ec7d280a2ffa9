"""Two real benchmark runs (the real executor, lm-eval, two tiny models, the cut-down mirror), made once per
test process, and a helper that stores one as a succeeded EvaluationRun of a test.

The runs cover the sample shapes the browser shows: multiple choice (ARC, 2-shot, acc/acc_norm),
TruthfulQA MC2 (a probability-mass metric), partial-context scoring (Winogrande) and generation with
two filters (GSM8K, strict-match and flexible-extract). Run "a" is the session's tiny model; run "b"
a second tiny model with other random weights, so some samples flip between them.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from django.test import override_settings
from django.utils import timezone

from runs.choices import RunKind, RunStatus
from runs.executors import RunContext
from runs.models import EvaluationRun
from runs.services import scores_store

SUITE = {
    "name": "pagecheck",
    "version": 2,
    "title": "Page check",
    "columns": [
        {
            "key": "arc",
            "label": "ARC",
            "task": "arc_challenge",
            "num_fewshot": 2,
            "metric": "acc_norm",
            "overrides": {"fewshot_split": "train"},
        },
        {"key": "truthfulqa", "label": "TruthfulQA", "task": "truthfulqa_mc2", "num_fewshot": 0, "metric": "acc"},
        {"key": "winogrande", "label": "Winogrande", "task": "winogrande", "num_fewshot": 0, "metric": "acc"},
        # Short generations keep the run fast; the prompt and filters are lm-eval's.
        {
            "key": "gsm8k",
            "label": "GSM8K",
            "task": "gsm8k",
            "num_fewshot": 1,
            "metric": "exact_match",
            "filter": "strict-match",
            "overrides": {
                "generation_kwargs": {
                    "until": ["Question:", "</s>"],
                    "do_sample": False,
                    "temperature": 0.0,
                    "max_gen_toks": 24,
                }
            },
        },
    ],
}
LIMIT = 6
TASKS = ("arc_challenge", "truthfulqa_mc2", "winogrande", "gsm8k")

_made: dict[str, dict] = {}


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory, mini_mirror, tiny_model_template):
    """``{"a": {...}, "b": {...}}``: each the spec, the executor's outcome and its samples file."""
    if _made:  # imported into several test modules: run lm-eval once per process
        return _made
    from leaderboard.harness.executor import benchmark_spec_build, execute_benchmark
    from leaderboard.models import RegisteredModel
    from leaderboard.tiny_model import build_tiny_model

    base = tmp_path_factory.mktemp("real_runs")
    suites = base / "suites"
    suites.mkdir()
    (suites / "pagecheck.yaml").write_text(yaml.safe_dump(SUITE), encoding="utf-8")
    other_model = build_tiny_model(base / "tiny-llama-other", seed=1)
    # The executor checks that every model file lies inside the model roots, as on a worker.
    roots = [Path(tiny_model_template).parent.resolve(), base.resolve()]
    with override_settings(DATASET_MIRROR=mini_mirror, ARTIFACTS_DIR=base / "artifacts", MODEL_ROOTS=roots):
        for number, (name, model_path) in enumerate((("a", tiny_model_template), ("b", other_model)), start=1):
            model = RegisteredModel(storage_path=str(model_path), precision="float32")
            spec = json.loads(
                json.dumps(
                    benchmark_spec_build(
                        model=model, suite_name="pagecheck", suites_dir=suites, limit=LIMIT, device="cpu", batch_size=4
                    )
                )
            )
            context = RunContext(
                run_id=number, artifacts_dir=base / "artifacts" / "runs" / str(number), cancel_event=threading.Event()
            )
            outcome = execute_benchmark(SimpleNamespace(pk=number, spec=spec), context)
            _made[name] = {"spec": spec, "outcome": outcome, "samples": base / "artifacts" / outcome.samples_path}
    return _made


def store_run(made: dict, *, model, artifacts_dir: Path | str, **fields) -> EvaluationRun:
    """A succeeded run row of ``model`` holding a real run's spec, details, scores and samples file
    (copied under this test's ARTIFACTS_DIR, as the worker would have written it)."""
    now = timezone.now()
    run = EvaluationRun.objects.create(
        kind=RunKind.BENCHMARK,
        model=model,
        spec=made["spec"],
        status=RunStatus.SUCCEEDED,
        is_partial=True,
        queued_at=fields.pop("queued_at", now),
        started_at=fields.pop("started_at", now),
        finished_at=fields.pop("finished_at", now),
        details=made["outcome"].details,
        library_versions=made["outcome"].library_versions,
        **fields,
    )
    relative = Path("runs") / str(run.pk) / "samples.jsonl.gz"
    (Path(artifacts_dir) / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made["samples"], Path(artifacts_dir) / relative)
    run.samples_path = str(relative)
    run.save(update_fields=["samples_path"])
    scores_store(run_id=run.pk, outcome=made["outcome"])
    return run


def raw_samples(path: Path | str, task: str | None = None) -> list[dict]:
    """Every line of a samples file, parsed independently of leaderboard.samples."""
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as lines:
        samples = [json.loads(line) for line in lines]
    return [s for s in samples if task is None or s["task"] == task]
