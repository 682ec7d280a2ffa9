"""Suite YAML: the shipped suites load and match lm-eval's openllm group; bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leaderboard.harness.suites import (
    SuiteError,
    TaskRequest,
    suite_average,
    suite_column_values,
    suite_from_dict,
    suite_get,
    suite_list,
    suite_load,
)
from runs.executors import ScoreRow

from .conftest import SUITES_DIR

VALID = {
    "name": "demo",
    "version": 1,
    "title": "Demo",
    "columns": [
        {"key": "arc", "label": "ARC", "task": "arc_challenge", "num_fewshot": 25, "metric": "acc_norm"},
        {"key": "mix", "label": "Mix", "tasks": ["a", "b"], "num_fewshot": 0, "metric": "acc"},
    ],
}


def test_shipped_suites_load():
    suites = {s.name: s for s in suite_list(suites_dir=SUITES_DIR)}
    assert set(suites) >= {"openllm_v1", "kobest"}
    openllm = suites["openllm_v1"]
    assert [c.label for c in openllm.columns] == ["ARC", "HellaSwag", "MMLU", "TruthfulQA", "Winogrande", "GSM8K"]
    assert openllm.column("mmlu").group_of == "mmlu" and openllm.column("mmlu").score_task == "mmlu_plain_mean"
    assert (openllm.column("gsm8k").metric, openllm.column("gsm8k").filter) == ("exact_match", "strict-match")
    assert [r.task for r in suites["kobest"].task_requests()] == [
        "kobest_boolq",
        "kobest_copa",
        "kobest_hellaswag",
        "kobest_sentineg",
        "kobest_wic",
    ]
    assert suite_get("openllm_v1", suites_dir=SUITES_DIR) == openllm


def test_openllm_v1_mirrors_lm_evals_openllm_group():
    """Shots and few-shot splits are those of lm_eval/tasks/benchmarks/openllm.yaml."""
    import lm_eval

    group = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "benchmarks" / "openllm.yaml").read_text())
    expected = {item["task"]: item for item in group["task"]}
    expected["truthfulqa_mc2"] = expected.pop("truthfulqa")  # the group runs the tag; v1 showed mc2
    suite = suite_get("openllm_v1", suites_dir=SUITES_DIR)
    for request in suite.task_requests():
        item = expected.pop(request.task)
        assert request.num_fewshot == item["num_fewshot"], request.task
        assert request.overrides.get("fewshot_split") == item.get("fewshot_split"), request.task
    assert not expected


def test_round_trip_and_task_requests():
    suite = suite_from_dict(VALID)
    assert suite_from_dict(suite.to_dict()) == suite
    assert suite.column("mix").score_task == "mix_plain_mean"
    assert suite.task_requests() == [TaskRequest("arc_challenge", 25), TaskRequest("a", 0), TaskRequest("b", 0)]
    assert TaskRequest.from_value(("x", 3)) == TaskRequest("x", 3)
    assert TaskRequest.from_value(
        {"task": "x", "num_fewshot": 3, "overrides": {"fewshot_split": "train"}}
    ) == TaskRequest("x", 3, {"fewshot_split": "train"})


def _column(**changes):
    column = {"key": "c", "label": "C", "task": "t", "num_fewshot": 0, "metric": "acc"}
    column.update(changes)
    return {k: v for k, v in column.items() if v is not None}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**VALID, "name": None}, "'name' is required"),
        ({**VALID, "name": "Bad Name"}, "'name' must match"),
        ({**VALID, "version": "1.0"}, "'version' must be a positive integer"),
        ({**VALID, "colums": []}, "unknown key(s) 'colums'"),
        ({**VALID, "columns": []}, "'columns' must be a non-empty list"),
        ({**VALID, "columns": [_column(tasks=["a"])]}, "column 'c': give exactly one of 'task', 'tasks' or 'group_of'"),
        ({**VALID, "columns": [_column(task=None)]}, "give exactly one of"),
        ({**VALID, "columns": [_column(num_fewshot=-1)]}, "'num_fewshot' must be an integer >= 0"),
        ({**VALID, "columns": [_column(metric=None)]}, "column 'c': 'metric' is required"),
        ({**VALID, "columns": [_column(shots=5)]}, "unknown key(s) 'shots'"),
        ({**VALID, "columns": [_column(aggregate="median")]}, "'aggregate' must be one of mean"),
        ({**VALID, "columns": [_column(overrides={"dataset_path": "x"})]}, "'overrides' may not set dataset_path"),
        ({**VALID, "columns": [_column(), _column()]}, "column key(s) used twice: c"),
        (
            {**VALID, "columns": [_column(key="a", num_fewshot=0), _column(key="b", num_fewshot=5)]},
            "task 't' is used by two columns with different shots",
        ),
    ],
)
def test_bad_suite_gives_a_clear_error(tmp_path, document, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in document.items() if v is not None}), encoding="utf-8")
    with pytest.raises(SuiteError) as error:
        suite_load(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_unparsable_yaml_and_missing_suite(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SuiteError, match="not valid YAML"):
        suite_list(suites_dir=tmp_path)
    (tmp_path / "broken.yaml").unlink()
    with pytest.raises(SuiteError, match="no suite 'nope'"):
        suite_get("nope", suites_dir=tmp_path)


def test_versions_and_duplicates(tmp_path):
    for filename, version in (("demo_v1.yaml", 1), ("demo_v2.yaml", 2)):
        (tmp_path / filename).write_text(yaml.safe_dump({**VALID, "version": version}), encoding="utf-8")
    assert suite_get("demo", suites_dir=tmp_path).version == 2
    assert suite_get("demo", version=1, suites_dir=tmp_path).version == 1
    (tmp_path / "copy.yaml").write_text(yaml.safe_dump({**VALID, "version": 2}), encoding="utf-8")
    with pytest.raises(SuiteError, match="also defined in"):
        suite_list(suites_dir=tmp_path)


def test_column_values_are_plain_means():
    suite = suite_from_dict(VALID)
    rows = [
        ScoreRow("arc_challenge", "acc_norm", 0.5),
        ScoreRow("arc_challenge", "acc", 0.9),
        ScoreRow("a", "acc", 0.2),
        ScoreRow("b", "acc", 0.4),
        ScoreRow("a", "acc", 1.0, filter="other"),
    ]
    values = suite_column_values(suite, rows, {})
    assert values == {"arc": 0.5, "mix": (0.2 + 0.4) / 2}
    assert suite_average(values) == (0.5 + 0.3) / 2
    # A group column averages the group's leaves (not lm-eval's size-weighted group row).
    grouped = suite_from_dict(
        {**VALID, "columns": [{"key": "g", "label": "G", "group_of": "grp", "num_fewshot": 5, "metric": "acc"}]}
    )
    rows += [ScoreRow("grp", "acc", 0.99)]
    assert suite_column_values(grouped, rows, {"grp": ["a", "b"]}) == {"g": 0.30000000000000004}
    assert suite_column_values(grouped, rows, {"grp": ["a", "missing"]}) == {"g": None}
    assert suite_average({"x": 1.0, "y": None}) is None
