"""PARITY: the adapter's stored values equal lm_eval.simple_evaluate's, to the last digit, for every
openllm_v1 task (MMLU: two subjects; HellaSwag: a SYNTHETIC fixture), plus the samples log, the
results-file import and the lm-eval CLI command the adapter emits."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from leaderboard.harness.adapter import evaluate_suite, load_results_file
from leaderboard.harness.suites import suite_from_dict, suite_get
from tests.lm_eval_cli import lm_eval_cli_run

from .conftest import HARNESS_TASKS, SUITES_DIR

LIMIT = 8
BATCH_SIZE = 4
MMLU_SUBJECTS = ["mmlu_abstract_algebra", "mmlu_anatomy"]

pytestmark = pytest.mark.slow


def _parity_suite():
    """openllm_v1 exactly, except that MMLU runs two subjects instead of the 57."""
    data = suite_get("openllm_v1", suites_dir=SUITES_DIR).to_dict()
    for column in data["columns"]:
        if column.get("group_of") == "mmlu":
            del column["group_of"]
            column["tasks"] = MMLU_SUBJECTS
    return suite_from_dict(data, source="parity suite")


SUITE = _parity_suite()
REQUESTS = SUITE.task_requests()
LEAF_TASKS = [r.task for r in REQUESTS]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_template, synthetic_mirror):
    out = tmp_path_factory.mktemp("parity")
    progress = []
    result = evaluate_suite(
        model_path=tiny_model_template,
        tasks=REQUESTS,
        suite=SUITE,
        mirror_dir=synthetic_mirror,
        tasks_dir=out / "tasks",
        include_path=HARNESS_TASKS,
        dtype="float32",
        device="cpu",
        batch_size=BATCH_SIZE,
        limit=LIMIT,
        samples_path=out / "samples.jsonl.gz",
        on_progress=lambda *args: progress.append(args),
    )
    return result, out, progress


@pytest.fixture(scope="module")
def references(tiny_model_template, synthetic_mirror, reference):
    return {
        r.task: reference(
            model_args={"pretrained": str(tiny_model_template), "dtype": "float32"},
            task=r.task,
            num_fewshot=r.num_fewshot,
            overrides=dict(r.overrides),
            mirror=synthetic_mirror,
            limit=LIMIT,
            batch_size=BATCH_SIZE,
        )
        for r in REQUESTS
    }


def _samples_by_task(path: Path) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            sample = json.loads(line)
            samples.setdefault(sample["task"], []).append(sample)
    return samples


@pytest.mark.parametrize("task", LEAF_TASKS)
def test_stored_values_equal_simple_evaluate(run, references, task):
    result, _, _ = run
    expected = references[task]
    compared = 0
    for key, value in expected["results"][task].items():
        metric, sep, filter_key = key.partition(",")
        if not sep or metric.endswith("_stderr"):
            continue
        row = next(r for r in result.scores if (r.task, r.metric, r.filter) == (task, metric, filter_key))
        assert row.value == value, (task, metric, filter_key)  # ==: to the last digit
        stderr = expected["results"][task][f"{metric}_stderr,{filter_key}"]
        assert row.stderr == (None if stderr == "N/A" else stderr)
        assert row.n_shot == expected["n-shot"][task]
        assert row.sample_count == expected["n-samples"][task]["effective"] == LIMIT
        assert row.task_version == str(expected["versions"][task])
        compared += 1
    assert compared >= 1
    # The same prompts, answers and per-sample metrics, not just the same averages.
    ours = {(s["doc_id"], s["filter"]): s for s in _samples_by_task(result.samples_path)[task]}
    for sample in json.loads(json.dumps(expected["samples"][task], default=str)):
        mine = ours[(sample["doc_id"], sample["filter"])]
        for field in ("doc", "target", "arguments", "resps", "filtered_resps", "doc_hash", "prompt_hash"):
            assert mine[field] == sample[field], (task, sample["doc_id"], field)
        for metric in sample["metrics"]:
            assert mine[metric] == sample[metric]


def test_run_used_the_suite_settings(run):
    result, _, _ = run
    configs = result.lm_eval_results["configs"]
    assert configs["arc_challenge"]["num_fewshot"] == 25
    assert configs["arc_challenge"]["fewshot_split"] == "train"
    assert configs["hellaswag"]["num_fewshot"] == 10
    assert configs["mmlu_anatomy"]["fewshot_split"] == "dev"  # lm-eval's own, untouched
    assert configs["truthfulqa_mc2"]["num_fewshot"] == 0
    assert configs["gsm8k"]["num_fewshot"] == 5
    for task, source in result.details["datasets"].items():
        assert configs[task]["dataset_path"] == source["read_from"]
    assert result.details["seeds"] == {"random": 0, "numpy": 1234, "torch": 1234, "fewshot": 1234}
    assert {"lm_eval", "transformers", "torch"} <= set(result.library_versions)


def test_column_values_and_average(run, references):
    result, _, _ = run

    def ref(task, metric, filter_key="none"):
        return references[task]["results"][task][f"{metric},{filter_key}"]

    expected = {
        "arc": ref("arc_challenge", "acc_norm"),
        "hellaswag": ref("hellaswag", "acc_norm"),
        "mmlu": sum(ref(t, "acc") for t in MMLU_SUBJECTS) / len(MMLU_SUBJECTS),
        "truthfulqa": ref("truthfulqa_mc2", "acc"),
        "winogrande": ref("winogrande", "acc"),
        "gsm8k": ref("gsm8k", "exact_match", "strict-match"),
    }
    assert result.column_values == expected
    assert result.average == sum(expected.values()) / 6
    assert result.score("mmlu_plain_mean", "acc") == expected["mmlu"]
    assert result.score("openllm_v1_average", "average") == result.average


def test_samples_log_and_progress(run):
    result, _, progress = run
    samples = _samples_by_task(result.samples_path)
    assert set(samples) == set(LEAF_TASKS)
    assert len(samples["gsm8k"]) == 2 * LIMIT  # one line per filter
    for line in samples["arc_challenge"]:
        assert {"doc", "target", "arguments", "resps", "filtered_resps", "acc", "acc_norm"} <= set(line)
    notes = {str(note) for _, _, note in progress}
    assert "arc_challenge (1/7): loglikelihood requests" in notes
    assert "gsm8k (7/7): generate_until requests" in notes
    done, total, _ = next(p for p in reversed(progress) if str(p[2]).startswith("arc_challenge"))
    assert done == total == 4 * LIMIT  # four choices per question


def test_load_results_file_round_trip(run, tmp_path):
    result, _, _ = run
    results_json = tmp_path / "results.json"
    results_json.write_text(json.dumps(result.lm_eval_results), encoding="utf-8")
    imported = load_results_file(results_json, [result.samples_path], suite=SUITE, samples_out=tmp_path / "s.jsonl.gz")
    assert imported.scores == result.scores
    assert imported.column_values == result.column_values
    assert imported.average == result.average
    assert _samples_by_task(imported.samples_path) == _samples_by_task(result.samples_path)


CLI_TASKS = ["truthfulqa_mc2", "gsm8k"]  # a continuous metric, and generation with two filters


def test_reproduce_commands_give_the_same_numbers(run, tmp_path):
    """Runs the emitted one-line lm-eval CLI commands (same mirror, same task folder) and imports their output."""
    result, out, _ = run
    commands = result.details["reproduce_commands"]
    assert set(commands) == set(LEAF_TASKS)
    for task in CLI_TASKS:
        command = commands[task]
        assert f"--include_path {out / 'tasks'}" in command and "--num_fewshot" not in command
        results_json, samples = lm_eval_cli_run(command, tmp_path / task, cwd=tmp_path)
        cli = load_results_file(results_json, samples)
        assert cli.scores == [row for row in result.scores if row.task == task]
        assert cli.details["samples_logged"] == len(_samples_by_task(result.samples_path)[task])
