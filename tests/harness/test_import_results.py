"""`manage.py import_results`: a results JSON and samples written by the real lm-eval CLI (as a cluster
job would write them) become a benchmark run with the file's numbers, all or nothing."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from leaderboard.harness.adapter import build_task_plan, model_arguments, reproduce_command, write_task_overrides
from leaderboard.harness.suites import suite_get
from leaderboard.models import RegisteredModel
from leaderboard.services import model_register
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, RunEvent, Score
from tests.factories import user_create
from tests.lm_eval_cli import lm_eval_cli_run

from .conftest import HARNESS_TASKS, SUITES_DIR

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

LIMIT = 4
TASKS = ("arc_challenge", "winogrande")
REQUESTS = [r for r in suite_get("openllm_v1", suites_dir=SUITES_DIR).task_requests() if r.task in TASKS]


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory, tiny_model_template, mini_mirror) -> tuple[Path, list[Path]]:
    """lm-eval's CLI on the suite's task YAML (shots, few-shot split, mirror), as run on a cluster."""
    out = tmp_path_factory.mktemp("cluster")
    plan = build_task_plan(REQUESTS, include_path=HARNESS_TASKS)
    write_task_overrides(plan, mirror_dir=mini_mirror, tasks_dir=out / "tasks")
    command = reproduce_command(
        model_args=model_arguments(model_path=tiny_model_template, dtype="float32"),
        tasks=list(TASKS),
        tasks_dir=out / "tasks",
        device="cpu",
        batch_size=4,
        limit=LIMIT,
    )
    results_json, samples = lm_eval_cli_run(command, out / "lm_eval", cwd=out)
    assert [p.name.split("_2")[0] for p in samples] == [f"samples_{task}" for task in TASKS]
    return results_json, samples


def _import(results_json: Path, samples: list[Path], model_path: Path, **options) -> None:
    call_command("import_results", str(results_json), *map(str, samples), model_path=str(model_path), **options)


def _nothing_written(artifacts: Path) -> None:
    assert (
        RegisteredModel.objects.count(),
        EvaluationRun.objects.count(),
        RunEvent.objects.count(),
        Score.objects.count(),
    ) == (0, 0, 0, 0)
    files = [p for p in artifacts.rglob("*") if p.is_file()] if artifacts.exists() else []
    assert files == []


def test_import_stores_the_files_numbers(cli_output, tiny_model, settings):
    results_json, samples = cli_output
    owner = user_create(username="cluster-admin")
    _import(results_json, samples, tiny_model, owner="cluster-admin", display_name="acme/tiny-from-cluster")

    run = EvaluationRun.objects.get()
    assert (run.kind, run.status, run.submitted_by) == (RunKind.BENCHMARK, RunStatus.SUCCEEDED, owner)
    assert run.is_partial  # produced with --limit: never ranked
    assert run.spec["limit"] == LIMIT and run.spec["suite"] == "openllm_v1"
    assert [t["task"] for t in run.spec["tasks"]] == list(TASKS)
    assert (run.spec["dtype"], run.spec["device"], run.spec["batch_size"]) == ("float32", "cpu", 4)
    assert run.spec["seed"] == [0, 1234, 1234, 1234]
    assert [(e.from_status, e.to_status) for e in run.events.all()] == [
        ("", RunStatus.QUEUED),
        (RunStatus.QUEUED, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
    ]
    assert run.details["imported_from"] == str(results_json)
    assert run.library_versions["lm_eval"] == "0.4.13"
    assert (run.model.display_name, run.model.owner, run.model.precision) == (
        "acme/tiny-from-cluster",
        owner,
        "float32",
    )
    assert run.model.storage_path == str(tiny_model)

    raw = json.loads(results_json.read_text())
    stored = {(s.task, s.metric, s.filter): s for s in run.scores.all()}
    compared = 0
    for task in TASKS:
        for key, value in raw["results"][task].items():
            metric, sep, filter_key = key.partition(",")
            if not sep or metric.endswith("_stderr"):
                continue
            score = stored[(task, metric, filter_key)]
            assert score.value == value  # to the last digit
            assert score.stderr == raw["results"][task][f"{metric}_stderr,{filter_key}"]
            assert score.n_shot == raw["n-shot"][task] == next(r.num_fewshot for r in REQUESTS if r.task == task)
            assert score.sample_count == raw["n-samples"][task]["effective"]
            compared += 1
    assert compared == 3  # arc: acc, acc_norm; winogrande: acc
    assert stored[("openllm_v1_average", "average", "none")].value is None  # four columns are missing

    samples_file = Path(settings.ARTIFACTS_DIR) / run.samples_path
    assert samples_file.name.endswith(".jsonl.gz")
    with gzip.open(samples_file, "rt", encoding="utf-8") as lines:
        logged = [json.loads(line) for line in lines]
    cli_lines = [json.loads(line) for path in samples for line in path.read_text().splitlines() if line.strip()]
    assert len(logged) == len(cli_lines) == sum(raw["n-samples"][t]["effective"] for t in TASKS)
    assert {s["task"] for s in logged} == set(TASKS)
    assert [s["doc_hash"] for s in logged] == [s["doc_hash"] for s in cli_lines]


def test_an_existing_model_is_reused_as_registered(cli_output, tiny_model):
    model = model_register(
        storage_path=str(tiny_model), display_name="acme/registered", precision="float32", model_type="fine_tuned"
    )
    _import(*cli_output, tiny_model)
    assert RegisteredModel.objects.get() == model
    model.refresh_from_db()
    assert (model.display_name, model.model_type) == ("acme/registered", "fine_tuned")
    assert EvaluationRun.objects.get().model == model


def _truncated(raw: dict, text: str) -> str:
    return text[: len(text) // 2]


def _no_results(raw: dict, text: str) -> str:
    raw.pop("results")
    return json.dumps(raw)


def _wrong_shots(raw: dict, text: str) -> str:
    raw["n-shot"]["arc_challenge"] = 0
    return json.dumps(raw)


def _metric_not_a_mapping(raw: dict, text: str) -> str:
    raw["results"]["winogrande"] = ["acc,none", 0.5]
    return json.dumps(raw)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_truncated, "Cannot read the results file"),
        (_no_results, "not an lm-eval results file"),
        (_wrong_shots, "arc_challenge ran 0-shot in the results file, but suite 'openllm_v1' runs it 25-shot"),
        (_metric_not_a_mapping, "Cannot import"),
    ],
)
def test_a_broken_results_file_writes_nothing(cli_output, tiny_model, tmp_path, settings, breakage, message):
    results_json, samples = cli_output
    text = results_json.read_text()
    broken = tmp_path / "results_broken.json"
    broken.write_text(breakage(json.loads(text), text))
    with pytest.raises(CommandError, match=message):
        _import(broken, samples, tiny_model)
    _nothing_written(Path(settings.ARTIFACTS_DIR))


def test_a_broken_samples_file_writes_nothing(cli_output, tiny_model, tmp_path, settings):
    results_json, samples = cli_output
    broken = tmp_path / samples[1].name
    broken.write_text(samples[1].read_text() + '{"doc_id": 99, "cut off mid-li\n')
    with pytest.raises(CommandError, match=re.escape(f"Cannot import {results_json}: JSONDecodeError")):
        _import(results_json, [samples[0], broken], tiny_model)
    _nothing_written(Path(settings.ARTIFACTS_DIR))


def test_refuses_a_model_outside_the_roots_and_a_wrong_precision(cli_output, tiny_model, tiny_model_template, settings):
    with pytest.raises(CommandError, match="outside the allowed model roots"):
        _import(*cli_output, tiny_model_template)
    with pytest.raises(CommandError, match="evaluated in float32, but the model is registered as bfloat16"):
        _import(*cli_output, tiny_model, precision="bfloat16")
    _nothing_written(Path(settings.ARTIFACTS_DIR))
