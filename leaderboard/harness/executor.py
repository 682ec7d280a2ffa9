"""Benchmark runs: ``execute_benchmark(run, context) -> RunOutcome`` (``settings.RUN_EXECUTORS["benchmark"]``).

``run.spec`` of a benchmark run, frozen at submission by ``benchmark_spec_build`` (JSON):

- ``suite``, ``suite_version``, ``suite_title``: which suite the run scores.
- ``columns``: the suite's columns as its YAML said at submission (a snapshot: a later edit of the
  suite file does not change how this run is read).
- ``tasks``: what lm-eval runs: ``[{"task", "num_fewshot", "overrides"}]`` (a task may be a group,
  e.g. ``mmlu``; ``overrides`` are lm-eval task-config keys such as ``fewshot_split``).
- ``model_path``: the model folder (or PEFT adapter folder); ``base_model_path``: an adapter's base, or None.
- ``dtype``: "auto", "float32", "float16" or "bfloat16".
- ``device``: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:N".
- ``batch_size``: "auto" (lm-eval's detection on GPU, a small fixed batch on CPU) or an int.
- ``apply_chat_template``: bool.
- ``limit``: samples per task (a smoke run) or None.
- ``seed``: lm-eval's four seeds ``[random, numpy, torch, fewshot]`` (default ``[0, 1234, 1234, 1234]``).

Files in ``context.artifacts_dir``: ``lm_eval_tasks/`` (the run's task YAML: lm-eval's tasks pointed at
the mirror; ``details["reproduce_commands"]`` run the lm-eval CLI on it, one line per task) and
``samples.jsonl.gz``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from leaderboard.harness.adapter import evaluate_suite, resolve_seeds
from leaderboard.harness.suites import Suite, TaskRequest, suite_from_dict, suite_get
from runs.executors import EvaluationFailed, RunContext, RunOutcome

SAMPLES_FILENAME = "samples.jsonl.gz"
TASKS_DIRNAME = "lm_eval_tasks"
_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "GPTQ": "auto"}


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
) -> dict[str, Any]:
    """The spec of a benchmark run of ``model`` (a ``leaderboard.models.RegisteredModel``) on a suite.

    Args:
        model: the registered model; its storage path, base model, precision and chat-template flag are used.
        suite_name: a suite in ``harness_tasks/suites/``.
        suite_version: that suite's version; default its highest.
        limit: samples per task for a smoke run; None for a full run.
        device: "auto", "cpu", "cuda"...
        batch_size: "auto" or an int.
        dtype: default from the model's precision.
        apply_chat_template: default the model's ``use_chat_template``.
        seed: lm-eval's seeds (an int for all four); default lm-eval's.
        suites_dir: where suites are read (default ``HARNESS_TASKS_DIR/suites``).

    Raises:
        ValueError: a precision or weight type this executor cannot evaluate.
        SuiteError: no such suite, or an invalid one.
    """
    suite = suite_get(suite_name, version=suite_version, suites_dir=suites_dir)
    if dtype is None:
        if model.precision not in _DTYPES:
            raise ValueError(f"precision {model.precision!r} is not supported by the benchmark executor "
                             f"(supported: {', '.join(_DTYPES)})")
        dtype = _DTYPES[model.precision]
    if model.weight_type == "delta":
        raise ValueError("delta weights are not supported by the benchmark executor; submit merged weights")
    return {
        "suite": suite.name,
        "suite_version": suite.version,
        "suite_title": suite.title,
        "columns": [column.to_dict() for column in suite.columns],
        "tasks": [request.to_dict() for request in suite.task_requests()],
        "model_path": str(model.storage_path),
        "base_model_path": str(model.base_model_path) if model.weight_type == "adapter" and model.base_model_path else None,
        "dtype": dtype,
        "device": device,
        "batch_size": batch_size,
        "apply_chat_template": bool(model.use_chat_template if apply_chat_template is None else apply_chat_template),
        "limit": limit,
        "seed": list(resolve_seeds(seed)),
    }


def suite_from_spec(spec: dict[str, Any]) -> Suite:
    """The suite as it was frozen into a run spec."""
    return suite_from_dict(
        {"name": spec["suite"], "version": spec["suite_version"], "title": spec.get("suite_title") or spec["suite"],
         "columns": spec["columns"]},
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


def execute_benchmark(run: Any, context: RunContext) -> RunOutcome:
    """Run a benchmark suite on a model with lm-eval, from ``run.spec`` (see the module docstring)."""
    spec = run.spec
    try:
        suite = suite_from_spec(spec)
        tasks = [TaskRequest.from_value(task) for task in spec["tasks"]]
        model_path = spec["model_path"]
    except (KeyError, TypeError, ValueError) as exc:
        raise EvaluationFailed(f"The run's spec is not a valid benchmark spec: {exc!r}") from exc
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
    for task, command in result.details.get("reproduce_commands", {}).items():
        context.log(f"Reproduce {task}: {command}")
    return RunOutcome(
        scores=result.scores,
        details=result.details,
        library_versions=result.library_versions,
        samples_path=_relative_to_artifacts(result.samples_path) if result.samples_path else "",
    )
