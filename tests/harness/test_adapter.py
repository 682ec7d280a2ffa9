"""The adapter's checks and hooks: task expansion, override YAML, failures before the model loads,
remote code, cancellation, out-of-memory, PEFT adapters and lm-eval groups."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from leaderboard.harness import adapter
from leaderboard.harness.adapter import (
    build_task_plan,
    evaluate_suite,
    reproduce_command,
    resolve_batch_size,
    resolve_seeds,
    write_task_overrides,
)
from leaderboard.harness.suites import TaskRequest, suite_from_dict, suite_get
from runs.executors import EvaluationFailed, RunCancelled

from .conftest import HARNESS_TASKS, SUITES_DIR


@pytest.fixture
def no_model_load(monkeypatch):
    """Fails the test if the adapter gets as far as building the model."""

    def refuse():
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(adapter, "_leaderboard_hflm", refuse)


def _evaluate(model, mirror, tmp_path, tasks, **kwargs):
    kwargs = {"dtype": "float32", "device": "cpu", "batch_size": 4, "limit": 4, **kwargs}
    return evaluate_suite(
        model_path=model,
        tasks=tasks,
        mirror_dir=mirror,
        tasks_dir=tmp_path / "tasks",
        include_path=HARNESS_TASKS,
        **kwargs,
    )


def test_mmlu_group_expands_to_its_57_subjects():
    plan = build_task_plan([("mmlu", 5)], include_path=HARNESS_TASKS)
    leaves = plan.leaf_tasks["mmlu"]
    assert len(leaves) == len(set(leaves)) == 57
    assert all(leaf.startswith("mmlu_") for leaf in leaves)
    assert plan.sources["mmlu_high_school_us_history"] == adapter.DatasetRef("cais/mmlu", "high_school_us_history")
    openllm = suite_get("openllm_v1", suites_dir=SUITES_DIR)
    suite_plan = build_task_plan(openllm.task_requests(), include_path=HARNESS_TASKS)
    assert len(suite_plan.settings) == 62
    columns = adapter.column_leaf_tasks(openllm, include_path=HARNESS_TASKS)
    assert columns["mmlu"] == leaves and columns["truthfulqa"] == ["truthfulqa_mc2"]
    assert suite_plan.settings["mmlu_anatomy"] == TaskRequest("mmlu", 5, {})
    assert build_task_plan([("truthfulqa", 0)], include_path=HARNESS_TASKS).leaf_tasks["truthfulqa"] == [
        "truthfulqa_gen",
        "truthfulqa_mc1",
        "truthfulqa_mc2",
    ]  # a tag
    with pytest.raises(EvaluationFailed, match="no task, group or tag named 'no_such_task'"):
        build_task_plan([("no_such_task", 0)], include_path=HARNESS_TASKS)
    with pytest.raises(ValueError, match="requested twice"):
        build_task_plan([("mmlu", 5), ("mmlu_anatomy", 5)], include_path=HARNESS_TASKS)


def test_override_yaml_includes_lm_evals_task_and_points_at_the_mirror(tmp_path, real_mirror):
    import lm_eval

    plan = build_task_plan(
        [TaskRequest("arc_challenge", 25, {"fewshot_split": "train"}), ("mmlu", 5)], include_path=HARNESS_TASKS
    )
    written = write_task_overrides(plan, mirror_dir=real_mirror, tasks_dir=tmp_path)
    assert len(written) == 58
    text = (tmp_path / "arc_challenge.yaml").read_text()
    assert text.startswith(adapter._GENERATED_MARKER)
    assert yaml.safe_load(text) == {
        "include": str(Path(lm_eval.__file__).parent / "tasks" / "arc" / "arc_challenge.yaml"),
        "task": "arc_challenge",
        "tag": [],
        "dataset_path": str(real_mirror / "allenai" / "ai2_arc"),
        "dataset_kwargs": {"cache_dir": str(adapter.datasets_cache_dir(real_mirror / "allenai" / "ai2_arc"))},
        "num_fewshot": 25,
        "fewshot_split": "train",
    }
    assert yaml.safe_load((tmp_path / "mmlu_anatomy.yaml").read_text())["dataset_path"] == str(
        real_mirror / "cais/mmlu"
    )
    # Rewriting replaces our files and leaves others alone.
    (tmp_path / "mine.yaml").write_text("task: mine\n")
    write_task_overrides(
        build_task_plan([("gsm8k", 5)], include_path=HARNESS_TASKS), mirror_dir=real_mirror, tasks_dir=tmp_path
    )
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["gsm8k.yaml", "mine.yaml"]


def test_custom_task_and_group_from_the_include_path(tmp_path, real_mirror):
    """A task YAML in harness_tasks/ (here a tmp include path) is redirected like lm-eval's own; its
    group is re-included in the run's folder, so that folder alone serves the lm-eval CLI."""
    import lm_eval

    custom = tmp_path / "custom"
    custom.mkdir()
    arc = Path(lm_eval.__file__).parent / "tasks" / "arc" / "arc_easy.yaml"
    (custom / "arc_base.yaml").write_text(f"include: {arc}\ntask: arc_base\n")
    (custom / "arc_mini.yaml").write_text("include: arc_base.yaml\ntask: arc_mini\n")
    (custom / "my_group.yaml").write_text("group: my_group\ntask: [arc_mini]\n")
    plan = build_task_plan([("my_group", 3)], include_path=custom)
    assert plan.leaf_tasks == {"my_group": ["arc_mini"]}
    assert plan.yaml_paths["arc_mini"] == (custom / "arc_mini.yaml").resolve()
    assert plan.custom_groups == {"my_group": (custom / "my_group.yaml").resolve()}
    write_task_overrides(plan, mirror_dir=real_mirror, tasks_dir=tmp_path / "run")
    assert yaml.safe_load((tmp_path / "run" / "group__my_group.yaml").read_text()) == {
        "include": str((custom / "my_group.yaml").resolve()),
        "group": "my_group",
    }
    override = yaml.safe_load((tmp_path / "run" / "arc_mini.yaml").read_text())
    assert override["dataset_path"] == str(real_mirror / "allenai" / "ai2_arc") and override["num_fewshot"] == 3


def test_missing_dataset_fails_before_the_model_loads(tiny_model_template, real_mirror, tmp_path, no_model_load):
    with pytest.raises(EvaluationFailed) as error:
        _evaluate(tiny_model_template, real_mirror, tmp_path, [("arc_challenge", 25), ("hellaswag", 10)])
    message = str(error.value)
    assert "Rowan/hellaswag" in message and str(real_mirror / "Rowan" / "hellaswag") in message
    assert "arc_challenge" not in message


def _copy_model(template: Path, tmp_path: Path, **config_changes) -> Path:
    model = shutil.copytree(template, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config.update(config_changes)
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"auto_map": {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}}, "needs its own Python code"),
        ({"model_type": "my_custom_arch"}, "model_type 'my_custom_arch'"),
    ],
)
def test_model_needing_remote_code_fails(tiny_model_template, real_mirror, tmp_path, no_model_load, changes, message):
    model = _copy_model(tiny_model_template, tmp_path, **changes)
    with pytest.raises(EvaluationFailed, match=message):
        _evaluate(model, real_mirror, tmp_path, [("arc_challenge", 0)])


def test_bad_model_folders_fail(tmp_path, real_mirror, no_model_load):
    with pytest.raises(EvaluationFailed, match="does not exist"):
        _evaluate(tmp_path / "nope", real_mirror, tmp_path, [("arc_challenge", 0)])
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/hub-id"}))
    with pytest.raises(EvaluationFailed, match="PEFT adapter; its base model folder org/hub-id does not exist"):
        _evaluate(tmp_path / "adapter", real_mirror, tmp_path, [("arc_challenge", 0)])


def test_cancel_before_the_model_loads(tiny_model_template, real_mirror, tmp_path, no_model_load):
    with pytest.raises(RunCancelled):
        _evaluate(tiny_model_template, real_mirror, tmp_path, [("arc_challenge", 0)], should_stop=lambda: True)


@pytest.mark.slow
def test_cancel_between_batches(tiny_model_template, real_mirror, tmp_path):
    progress = []
    evaluating = lambda: any("requests" in str(note) for _, _, note in progress)  # noqa: E731
    with pytest.raises(RunCancelled):
        _evaluate(
            tiny_model_template,
            real_mirror,
            tmp_path,
            [("winogrande", 0)],
            batch_size=1,
            on_progress=lambda *args: progress.append(args),
            should_stop=evaluating,
        )
    # It stopped inside the model loop: the phase began and did not finish.
    assert progress[-1][:2] == (0, 8) and str(progress[-1][2]) == "winogrande (1/1): loglikelihood requests"


def test_out_of_memory_fails_the_run(tiny_model_template, real_mirror, tmp_path, monkeypatch):
    import torch

    def model_too_big(**kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity...")

    monkeypatch.setattr(adapter, "_leaderboard_hflm", lambda: model_too_big)
    with pytest.raises(EvaluationFailed, match="ran out of cpu memory: it needed another 2.50 GiB") as error:
        _evaluate(tiny_model_template, real_mirror, tmp_path, [("arc_challenge", 0)])
    assert error.value.__context__ is None  # the traceback (and the model it holds) is not kept
    assert adapter._out_of_memory(ValueError("something else"), "cpu") is None


def test_device_batch_and_seed_resolution():
    assert resolve_batch_size("auto", "cpu") == adapter.CPU_BATCH_SIZE
    assert resolve_batch_size("auto", "cuda") == "auto" and resolve_batch_size("8", "cuda") == 8
    assert resolve_seeds(None) == (0, 1234, 1234, 1234) and resolve_seeds(7) == (7, 7, 7, 7)
    with pytest.raises(ValueError):
        resolve_seeds([1, 2])
    assert adapter.resolve_device("auto") in {"cpu", "cuda"}


def test_reproduce_command_parses_with_lm_evals_cli(tmp_path):
    from lm_eval._cli.harness import HarnessCLI

    command = reproduce_command(
        model_args={"pretrained": "/models/my model", "dtype": "bfloat16", "peft": "/models/lora"},
        tasks=["mmlu"],
        tasks_dir=tmp_path / "run tasks",
        device="cuda",
        batch_size="auto",
        limit=10,
        seed=None,
        apply_chat_template=True,
    )
    words = shlex.split(command)
    assert words[:4] == ["HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "HF_EVALUATE_OFFLINE=1"]
    assert words[4] == "lm_eval"
    args = HarnessCLI()._parser.parse_args(["run", *words[5:]])
    assert args.model_args == {"pretrained": "/models/my model", "dtype": "bfloat16", "peft": "/models/lora"}
    assert (args.tasks, args.include_path, args.device, args.batch_size) == (
        ["mmlu"],
        str(tmp_path / "run tasks"),
        "cuda",
        "auto",
    )
    assert (args.limit, args.seed, args.apply_chat_template) == (10.0, [0, 1234, 1234, 1234], True)
    with pytest.raises(ValueError, match="cannot carry"):
        reproduce_command(
            model_args={"pretrained": "/a,b"}, tasks=["x"], tasks_dir=tmp_path, device="cpu", batch_size=1
        )


@pytest.mark.slow
def test_peft_lora_adapter_evaluates(tiny_model_template, real_mirror, tmp_path, reference):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_template)
    # init_lora_weights=False: random B matrices, so the adapter really changes the model's outputs.
    lora = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "lora")
    result = _evaluate(
        tmp_path / "lora", real_mirror, tmp_path, [("winogrande", 0)], base_model_path=tiny_model_template
    )
    assert result.details["model_args"] == {
        "pretrained": str(tiny_model_template),
        "peft": str(tmp_path / "lora"),
        "dtype": "float32",
    }
    expected = reference(
        model_args=result.details["model_args"],
        task="winogrande",
        num_fewshot=0,
        overrides={},
        mirror=real_mirror,
        limit=4,
        batch_size=4,
    )
    assert result.score("winogrande", "acc") == expected["results"]["winogrande"]["acc,none"]
    base_run = reference(
        model_args={"pretrained": str(tiny_model_template), "dtype": "float32"},
        task="winogrande",
        num_fewshot=0,
        overrides={},
        mirror=real_mirror,
        limit=4,
        batch_size=4,
    )
    lora_resps = [s["resps"] for s in expected["samples"]["winogrande"]]
    assert lora_resps != [s["resps"] for s in base_run["samples"]["winogrande"]]


@pytest.mark.slow
def test_lm_eval_group_rows_and_plain_mean(tiny_model_template, real_mirror, tmp_path):
    """A group_of column runs lm-eval's group: its size-weighted rows are stored beside the plain mean."""
    suite = suite_from_dict(
        {
            "name": "mmlu_only",
            "version": 1,
            "title": "MMLU",
            "columns": [{"key": "mmlu", "label": "MMLU", "group_of": "mmlu", "num_fewshot": 5, "metric": "acc"}],
        }
    )
    result = _evaluate(tiny_model_template, real_mirror, tmp_path, suite.task_requests(), suite=suite, limit=1)
    subjects = result.details["leaf_tasks"]["mmlu"]
    assert len(subjects) == 57
    values = [result.score(s, "acc") for s in subjects]
    assert result.column_values == {"mmlu": sum(values) / 57} == {"mmlu": result.score("mmlu_plain_mean", "acc")}
    groups = {
        row.task: row
        for row in result.scores
        if row.task in ("mmlu", "mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities")
    }
    assert set(groups) == {"mmlu", "mmlu_stem", "mmlu_other", "mmlu_social_sciences", "mmlu_humanities"}
    assert groups["mmlu"].value == result.lm_eval_results["groups"]["mmlu"]["acc,none"]
    assert groups["mmlu"].sample_count == 57 and groups["mmlu"].n_shot == 5
    assert result.average == result.column_values["mmlu"]
