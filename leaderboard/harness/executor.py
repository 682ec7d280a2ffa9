"""Benchmark runs: ``execute_benchmark(run, context) -> RunOutcome`` (``settings.RUN_EXECUTORS["benchmark"]``).

``run.spec`` of a benchmark run, frozen at submission by ``benchmark_spec_build`` (JSON):

- ``suite``, ``suite_version``, ``suite_title``: which suite the run scores.
- ``columns``: the suite's columns as its YAML said at submission (a snapshot: a later edit of the
  suite file does not change how this run is read).
- ``tasks``: what lm-eval runs: ``[{"task", "num_fewshot", "overrides"}]`` (a task may be a group,
  e.g. ``mmlu``; ``overrides`` are lm-eval task-config keys such as ``fewshot_split``).
- ``model_path``: the model folder (or PEFT adapter folder, or delta weights); ``base_model_path``: the base of
  an adapter or delta weights, or None.
- ``weight_type``: only for delta weights: "delta" (lm-eval's ``delta=``: the folder's tensors are added to the
  base's). Absent otherwise, so the specs (and spec hashes) of other runs are as before.
- ``dtype``: "auto", "float32", "float16" or "bfloat16".
- ``quantization``: only for quantized precisions: "8bit" or "4bit" (bitsandbytes), "gptq" (GPTQModel); these
  run on a GPU worker that has the library (``PRECISION_WORKER_NEEDS``).
- ``device``: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:N".
- ``batch_size``: "auto" (lm-eval's detection on GPU, a small fixed batch on CPU) or an int from 1 to
  ``BATCH_SIZE_MAX`` (the submitter's choice; the reproduce commands carry it).
- ``missing_columns``: only for a partial run: the keys of the suite columns left out because the dataset
  mirror lacked their data at submission (``tasks`` then holds only the other columns' tasks; ``columns``
  still lists them all, so the run's page shows them as missing). Such a run is ``is_partial``: never ranked.
- ``apply_chat_template``: bool.
- ``limit``: samples per task (a smoke run) or None.
- ``seed``: lm-eval's four seeds ``[random, numpy, torch, fewshot]`` (default ``[0, 1234, 1234, 1234]``).

Files in ``context.artifacts_dir``: ``lm_eval_tasks/`` (the run's task YAML: lm-eval's tasks pointed at
the mirror; ``details["reproduce_commands"]`` run the lm-eval CLI on it, one line per task) and
``samples.jsonl.gz``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

from leaderboard.harness.adapter import evaluate_suite
from leaderboard.harness.suites import Suite, TaskRequest, suite_from_dict, suite_get
from leaderboard.harness.task_plan import resolve_seeds
from runs.executors import EvaluationFailed, RunContext, RunOutcome
from runs.messages import Message, message_of

SAMPLES_FILENAME = "samples.jsonl.gz"
TASKS_DIRNAME = "lm_eval_tasks"
_DTYPES = {
    "float32": "float32",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "8bit": "float16",
    "4bit": "float16",
    "GPTQ": "auto",
}
_QUANTIZATIONS = {"8bit": "8bit", "4bit": "4bit", "GPTQ": "gptq"}
# What a worker must advertise (runs.models.WorkerNode.capabilities) to run a precision; the submit form
# refuses a precision no live worker of the gpu queue can run.
PRECISION_WORKER_NEEDS = {"8bit": ("cuda", "bitsandbytes"), "4bit": ("cuda", "bitsandbytes"), "GPTQ": ("cuda", "gptq")}
# The largest batch a submitter may ask for (lm-eval's "auto" finds the largest that fits on a GPU).
BATCH_SIZE_MAX = 512


def batch_size_parse(value: int | str | None) -> int | str:
    """``"auto"`` (also for empty) or an integer 1..BATCH_SIZE_MAX, from a form field or an API value.

    Raises:
        ValueError: anything else.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return "auto"
    if isinstance(value, bool):
        raise ValueError(value)
    number = (
        int(value.strip()) if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() else value
    )
    if not isinstance(number, int) or not 1 <= number <= BATCH_SIZE_MAX:
        raise ValueError(value)
    return number


def benchmark_spec_build(
    *,
    model: Any,
    suite_name: str,
    suite_version: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    batch_size: int | str = "auto",
    dtype: str | None = None,
    apply_chat_template: bool | None = None,
    seed: int | list[int | None] | None = None,
    suites_dir: Path | str | None = None,
    missing_columns: Iterable[str] = (),
) -> dict[str, Any]:
    """The spec of a benchmark run of ``model`` (a ``leaderboard.models.RegisteredModel``) on a suite.

    Args:
        model: the registered model; its storage path, base model, precision and chat-template flag are used.
        suite_name: a suite in ``harness_tasks/suites/``.
        suite_version: that suite's version; default its highest.
        limit: samples per task for a smoke run; None for a full run.
        device: "auto", "cpu", "cuda"...
        batch_size: "auto" or an int (``batch_size_parse``).
        dtype: default from the model's precision.
        apply_chat_template: default the model's ``use_chat_template``.
        seed: lm-eval's seeds (an int for all four); default lm-eval's.
        suites_dir: where suites are read (default ``HARNESS_TASKS_DIR/suites``).
        missing_columns: column keys left out (a partial run; see the module docstring).

    Raises:
        ValueError: a precision this executor cannot evaluate, delta weights without a base, a bad batch
            size, an unknown column in ``missing_columns`` or every column in it.
        SuiteError: no such suite, or an invalid one.
    """
    suite = suite_get(suite_name, version=suite_version, suites_dir=suites_dir)
    wanted_out = set(missing_columns)
    missing = [column.key for column in suite.columns if column.key in wanted_out]
    try:
        served = suite.without_columns(wanted_out)
    except KeyError as exc:
        raise ValueError(f"suite {suite.name!r} has no column {exc}") from None
    if not served.columns:
        raise ValueError(f"a run of suite {suite.name!r} needs at least one column")
    batch_size = batch_size_parse(batch_size)
    if dtype is None:
        if model.precision not in _DTYPES:
            raise ValueError(
                f"precision {model.precision!r} is not supported by the benchmark executor "
                f"(supported: {', '.join(_DTYPES)})"
            )
        dtype = _DTYPES[model.precision]
    spec = {
        "suite": suite.name,
        "suite_version": suite.version,
        "suite_title": suite.title,
        "columns": [column.to_dict() for column in suite.columns],
        "tasks": [request.to_dict() for request in served.task_requests()],
        "model_path": str(model.storage_path),
        "base_model_path": (
            str(model.base_model_path) if model.weight_type in ("adapter", "delta") and model.base_model_path else None
        ),
        "dtype": dtype,
        "device": device,
        "batch_size": batch_size,
        "apply_chat_template": bool(model.use_chat_template if apply_chat_template is None else apply_chat_template),
        "limit": limit,
        "seed": list(resolve_seeds(seed)),
    }
    if missing:
        spec["missing_columns"] = missing
    if model.weight_type == "delta":
        if not model.base_model_path:
            raise ValueError("delta weights need the folder of their base model")
        spec["weight_type"] = "delta"
    if model.precision in _QUANTIZATIONS:
        spec["quantization"] = _QUANTIZATIONS[model.precision]
    return spec


def suite_from_spec(spec: dict[str, Any]) -> Suite:
    """The suite as it was frozen into a run spec."""
    return suite_from_dict(
        {
            "name": spec["suite"],
            "version": spec["suite_version"],
            "title": spec.get("suite_title") or spec["suite"],
            "columns": spec["columns"],
        },
        source=f"run spec of suite {spec['suite']!r}",
    )


class _ContextLogHandler(logging.Handler):
    """Forwards lm-eval's log lines into the run's log."""

    def __init__(self, context: RunContext) -> None:
        super().__init__(level=logging.INFO)
        self.context = context
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.context.log(self.format(record))
        except Exception:  # a log line must never fail the run
            self.handleError(record)


def _relative_to_artifacts(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path(settings.ARTIFACTS_DIR).resolve()))
    except ValueError:
        return str(path)


def _folders_check(*paths: str | None) -> None:
    """On the worker too: the model and base folders, and every file in them, lie inside MODEL_ROOTS
    (the folders may have changed since the submission was checked)."""
    from leaderboard.model_inspection import ModelFolderError, allowed_path_resolve, folder_files_check

    for path in paths:
        if path:
            try:
                folder_files_check(allowed_path_resolve(str(path)))
            except ModelFolderError as exc:
                raise EvaluationFailed(message_of(exc)) from None


def _without_missing_columns(scores: list[Any], suite: Suite, missing: list[str], context: RunContext) -> list[Any]:
    """A partial run stores no row for the columns it left out (the suite's summing-up gives them None):
    its page shows them as missing, and its average stays None (never ranked)."""
    if not missing:
        return scores
    left_out = {suite.column(key).score_task for key in missing if key in {c.key for c in suite.columns}}
    context.log(f"Partial run: {', '.join(missing)} not run (the dataset mirror lacked their data); never ranked.")
    return [row for row in scores if not (row.task in left_out and row.value is None)]


def execute_benchmark(run: Any, context: RunContext) -> RunOutcome:
    """Run a benchmark suite on a model with lm-eval, from ``run.spec`` (see the module docstring)."""
    spec = run.spec
    try:
        suite = suite_from_spec(spec)
        tasks = [TaskRequest.from_value(task) for task in spec["tasks"]]
        model_path = spec["model_path"]
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationFailed(Message("benchmark.spec_invalid", error=repr(exc))) from exc
    _folders_check(model_path, spec.get("base_model_path"))
    artifacts = Path(context.artifacts_dir)
    artifacts.mkdir(parents=True, exist_ok=True)
    samples_path = artifacts / SAMPLES_FILENAME

    context.log(f"Suite {suite.name} v{suite.version}: {', '.join(f'{t.task} ({t.num_fewshot}-shot)' for t in tasks)}")
    handler = _ContextLogHandler(context)
    lm_eval_logger = logging.getLogger("lm_eval")
    previous_level = lm_eval_logger.level
    lm_eval_logger.addHandler(handler)
    if lm_eval_logger.getEffectiveLevel() > logging.INFO:
        lm_eval_logger.setLevel(logging.INFO)
    try:
        result = evaluate_suite(
            model_path=model_path,
            base_model_path=spec.get("base_model_path"),
            weight_type=spec.get("weight_type", ""),
            quantization=spec.get("quantization"),
            model_roots=settings.MODEL_ROOTS,
            tasks=tasks,
            mirror_dir=settings.DATASET_MIRROR,
            tasks_dir=artifacts / TASKS_DIRNAME,
            include_path=settings.HARNESS_TASKS_DIR,
            dtype=spec.get("dtype", "auto"),
            device=spec.get("device", "auto"),
            batch_size=spec.get("batch_size", "auto"),
            apply_chat_template=bool(spec.get("apply_chat_template", False)),
            limit=spec.get("limit"),
            seed=spec.get("seed"),
            suite=suite,
            should_stop=context.is_cancelled,
            on_progress=context.progress,
            samples_path=samples_path,
        )
    finally:
        lm_eval_logger.removeHandler(handler)
        lm_eval_logger.setLevel(previous_level)

    summary = ", ".join(f"{c.label} {result.column_values.get(c.key)}" for c in suite.columns)
    context.log(f"Average {result.average}; {summary}")
    scores = _without_missing_columns(result.scores, suite, spec.get("missing_columns") or [], context)
    for task, command in result.details.get("reproduce_commands", {}).items():
        context.log(f"Reproduce {task}: {command}")
    return RunOutcome(
        scores=scores,
        details=result.details,
        library_versions=result.library_versions,
        samples_path=_relative_to_artifacts(result.samples_path) if result.samples_path else "",
    )
