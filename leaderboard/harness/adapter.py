"""lm-evaluation-harness adapter: ``evaluate_suite`` runs a model on lm-eval tasks read from the offline
dataset mirror, with lm-eval's own task definitions, through ``lm_eval.simple_evaluate`` itself.

The adapter is this module and its three parts, the only modules of the site's harness that import
lm_eval (always inside functions, so web processes that import the harness package never load torch or
lm-eval):

- ``task_plan``: requested tasks/groups/tags -> leaf tasks and their datasets, the override YAML that
  points lm-eval's registered tasks at the mirror, the mirror check, the reproduce commands.
- ``model_loading``: lm-eval's ``hf`` model arguments (PEFT adapters, delta weights, quantization; no
  remote code), device and batch size, the HFLM subclass (cancellation, progress), out of memory.
- ``results``: score rows, the suite's columns and average, the per-sample log, imported results.

The imports go one way (tests/harness/test_module_seams.py checks it): adapter imports the three parts;
results imports task_plan; task_plan imports mirror_layout (the mirror's folder checks); the mirror's
verify/prepare (``mirror``) imports task_plan, and nothing here imports ``mirror``. The names other
modules (and the tests) import from here are re-exported below.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaderboard.harness.mirror_layout import DatasetRef, is_hub_dataset, mirror_folder
from leaderboard.harness.model_loading import (
    CPU_BATCH_SIZE,
    QUANTIZATION_ARGS,
    ProgressCallback,
    leaderboard_hflm,
    model_arguments,
    out_of_memory_failure,
    release_memory,
    resolve_batch_size,
    resolve_device,
)
from leaderboard.harness.results import (
    HarnessResult,
    build_result,
    library_versions,
    load_results_file,
    merge_results,
    score_rows_from_results,
    write_samples,
)
from leaderboard.harness.suites import Suite, TaskRequest
from leaderboard.harness.task_plan import (
    DEFAULT_SEEDS,
    GENERATED_MARKER,
    OFFLINE_ENV,
    TaskPlan,
    build_task_plan,
    check_mirror,
    column_leaf_tasks,
    datasets_cache_dir,
    force_offline,
    reproduce_command,
    resolve_seeds,
    run_task_manager,
    task_data_sources,
    task_manager,
    write_task_overrides,
)
from runs.executors import EvaluationFailed, RunCancelled
from runs.messages import Message

__all__ = [
    "CPU_BATCH_SIZE",
    "DEFAULT_SEEDS",
    "OFFLINE_ENV",
    "QUANTIZATION_ARGS",
    "DatasetRef",
    "HarnessResult",
    "ProgressCallback",
    "TaskPlan",
    "build_task_plan",
    "check_mirror",
    "column_leaf_tasks",
    "datasets_cache_dir",
    "evaluate_suite",
    "force_offline",
    "library_versions",
    "load_results_file",
    "model_arguments",
    "reproduce_command",
    "resolve_batch_size",
    "resolve_device",
    "resolve_seeds",
    "run_task_manager",
    "score_rows_from_results",
    "task_data_sources",
    "task_manager",
    "write_task_overrides",
]

# Module-level names ``evaluate_suite`` looks up when it runs: the tests replace ``_leaderboard_hflm``
# here to prove that a failing check comes before any model load, or to simulate running out of memory.
_leaderboard_hflm = leaderboard_hflm
_out_of_memory = out_of_memory_failure
_GENERATED_MARKER = GENERATED_MARKER


@dataclass(frozen=True)
class _LmEvalOptions:
    """How this run calls ``simple_evaluate``, resolved once: the same for every request of the run."""

    device: str
    batch_size: int | str
    seeds: tuple[int | None, ...]
    limit: int | None
    bootstrap_iters: int
    log_samples: bool
    apply_chat_template: bool


def evaluate_suite(
    *,
    model_path: Path | str,
    tasks: Sequence[TaskRequest | Sequence[Any] | Mapping[str, Any]],
    mirror_dir: Path | str,
    tasks_dir: Path | str,
    include_path: Path | str | None = None,
    base_model_path: Path | str | None = None,
    weight_type: str = "",
    quantization: str | None = None,
    model_roots: Sequence[Path | str] | None = None,
    dtype: str = "auto",
    device: str = "auto",
    batch_size: int | str = "auto",
    apply_chat_template: bool = False,
    limit: int | None = None,
    seed: int | Sequence[int | None] | None = None,
    suite: Suite | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressCallback | None = None,
    log_samples: bool = True,
    samples_path: Path | str | None = None,
    bootstrap_iters: int = 100000,
) -> HarnessResult:
    """Evaluate a model on lm-eval tasks read from the offline mirror, with lm-eval's own definitions.

    Args:
        model_path: model folder, or PEFT adapter folder (then ``base_model_path`` is its base).
        tasks: ``(task, num_fewshot)`` pairs or ``TaskRequest``s; a name may be a group (``mmlu``).
        mirror_dir: the dataset mirror (``settings.DATASET_MIRROR``).
        tasks_dir: the run's folder for its override task YAML (kept: ``reproduce_command`` uses it).
        include_path: custom task YAML folder (``settings.HARNESS_TASKS_DIR``).
        base_model_path: base model folder of a PEFT adapter or of delta weights.
        weight_type: "delta" when ``model_path`` holds delta weights (added to the base's by lm-eval).
        quantization: "8bit", "4bit" (bitsandbytes) or "gptq" (GPTQModel); needs a GPU and the library.
        model_roots: the allowed model roots; given, the model and base folders must lie inside them.
        dtype: "auto", "float32", "float16" or "bfloat16".
        device: "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1"...
        batch_size: an int, or "auto" (lm-eval's detection on GPU, ``CPU_BATCH_SIZE`` on CPU).
        apply_chat_template: render prompts with the tokenizer's chat template (few-shot as multi-turn,
            as the lm-eval CLI does).
        limit: samples per task (a smoke run); None for all.
        seed: lm-eval's seeds: None for its defaults (0,1234,1234,1234), an int for all four, or 4 values.
        suite: when given, the column values, plain means and the average are computed too.
        should_stop: polled before each model batch; True stops the run with RunCancelled.
        on_progress: ``callback(done, total, note)``; ``total`` counts the current phase's requests.
        log_samples: keep per-sample logs (written to ``samples_path`` when given).
        samples_path: where to write the per-sample log (jsonl.gz).
        bootstrap_iters: lm-eval's bootstrap iterations for stderr (its default 100000).

    Raises:
        EvaluationFailed: missing data in the mirror, a model needing remote code, out of memory...
            (checked before the model loads where possible).
        RunCancelled: ``should_stop()`` turned true.
    """
    started, clock = time.time(), time.monotonic()
    stop_requested = should_stop or (lambda: False)
    report = on_progress or (lambda done, total, note: None)

    force_offline()
    model_args = model_arguments(
        model_path=model_path,
        base_model_path=base_model_path,
        dtype=dtype,
        weight_type=weight_type,
        quantization=quantization,
        roots=model_roots,
    )
    report(0, 0, Message("progress.task_index"))
    plan = build_task_plan(tasks, include_path=include_path)
    check_mirror(plan, mirror_dir)
    write_task_overrides(plan, mirror_dir=mirror_dir, tasks_dir=tasks_dir)
    device = resolve_device(device)
    options = _LmEvalOptions(
        device=device,
        batch_size=resolve_batch_size(batch_size, device),
        seeds=resolve_seeds(seed),
        limit=limit,
        bootstrap_iters=bootstrap_iters,
        log_samples=log_samples,
        apply_chat_template=apply_chat_template,
    )
    _stop_if_asked(stop_requested)

    report(0, 0, Message("progress.task_data"))
    run_tasks, task_objects = _load_tasks(plan, include_path=include_path, tasks_dir=tasks_dir, model_args=model_args)
    timing = {"started_at": started, "start": clock, "planned": time.monotonic()}
    _stop_if_asked(stop_requested)

    report(0, 0, Message("progress.model_load"))
    merged = _evaluate_requests(
        task_objects,
        run_tasks,
        model_args=model_args,
        options=options,
        should_stop=stop_requested,
        on_progress=on_progress,
        timing=timing,
    )
    timing["finished"] = time.monotonic()

    return _harness_result(
        merged,
        plan=plan,
        model_args=model_args,
        options=options,
        suite=suite,
        timing=timing,
        mirror_dir=mirror_dir,
        tasks_dir=tasks_dir,
        samples_path=samples_path,
    )


def _harness_result(
    merged: dict[str, Any],
    *,
    plan: TaskPlan,
    model_args: dict[str, Any],
    options: _LmEvalOptions,
    suite: Suite | None,
    timing: dict[str, float],
    mirror_dir: Path | str,
    tasks_dir: Path | str,
    samples_path: Path | str | None,
) -> HarnessResult:
    """lm-eval's merged results as the run stores them, its samples written to ``samples_path``."""
    # As the lm-eval CLI records it (we passed a model object, which lm-eval records as its path).
    merged.setdefault("config", {}).update(model="hf", model_args=model_args)
    samples = merged.pop("samples", None)
    written = None
    if samples is not None and samples_path is not None:
        written = Path(samples_path)
        write_samples(samples, written)
    from lm_eval.utils import handle_non_serializable

    raw = json.loads(json.dumps(merged, default=handle_non_serializable))
    details = _run_details(
        plan,
        model_args=model_args,
        options=options,
        mirror_dir=mirror_dir,
        tasks_dir=tasks_dir,
        samples=samples,
        timing=timing,
    )
    return build_result(raw, suite=suite, leaf_tasks=plan.leaf_tasks, details=details, samples_path=written)


def _stop_if_asked(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise RunCancelled("cancelled before the evaluation finished")


def _load_tasks(
    plan: TaskPlan, *, include_path: Path | str | None, tasks_dir: Path | str, model_args: Mapping[str, Any]
) -> tuple[Any, dict[str, list[Any]]]:
    """This run's TaskManager and, per request, the lm-eval task objects ``simple_evaluate`` gets.

    The TaskManager indexes lm-eval's tasks, harness_tasks/, then the override folder (last wins), with
    metadata = model_args as the lm-eval CLI passes it. The tasks are built (datasets read) here, before
    the model loads, so a data problem costs no model load.
    """
    run_tasks = run_task_manager(include_path=include_path, tasks_dir=tasks_dir, metadata=dict(model_args))
    try:
        loaded = run_tasks.load([request.task for request in plan.requests])
    except Exception as exc:
        raise EvaluationFailed(Message("harness.tasks_unbuildable", error=str(exc))) from exc
    # One simple_evaluate call per request (a task, or a whole group such as mmlu): lm-eval batches
    # all requests of a call together, and padding to a different batch shape changes loglikelihoods
    # in the last float digits. Per request, every score equals a single-task lm-eval run of it
    # (reproduce_commands) to the last digit, whatever the batch size.
    task_objects: dict[str, list[Any]] = {}
    for request in plan.requests:
        if request.task in loaded["groups"]:
            task_objects[request.task] = [loaded["groups"][request.task]]
        else:  # a task, or a tag: lm-eval flattens tags into their tasks
            task_objects[request.task] = [loaded["tasks"][leaf] for leaf in plan.leaf_tasks[request.task]]
    return run_tasks, task_objects


def _evaluate_requests(
    task_objects: Mapping[str, list[Any]],
    run_tasks: Any,
    *,
    model_args: Mapping[str, Any],
    options: _LmEvalOptions,
    should_stop: Callable[[], bool],
    on_progress: ProgressCallback | None,
    timing: dict[str, float],
) -> dict[str, Any]:
    """Load the model once and run ``simple_evaluate`` per request; lm-eval's results merged into one.

    Sets ``timing["loaded"]`` when the model has loaded. Running out of memory fails the run with the
    sizes involved; the model (and its GPU memory) is dropped whatever happens, as the worker process
    outlives the run.
    """
    merged: dict[str, Any] = {}
    lm = out_of_memory = None
    try:
        lm = _leaderboard_hflm()(
            **model_args,
            device=options.device,
            batch_size=options.batch_size,
            should_stop=should_stop,
            on_progress=on_progress,
        )
        timing["loaded"] = time.monotonic()
        for number, (name, objects) in enumerate(task_objects.items(), start=1):
            _stop_if_asked(should_stop)
            lm.progress_task = (name, number, len(task_objects))
            merge_results(merged, _simple_evaluate(lm, objects, run_tasks, options))
    except (RunCancelled, EvaluationFailed):
        raise
    except Exception as exc:
        if not (out_of_memory := _out_of_memory(exc, options.device)):
            raise
    finally:
        lm = None
        release_memory(options.device)
    if out_of_memory:
        # Raised outside the handler: the OOM traceback's frames would keep the model alive.
        raise out_of_memory
    return merged


def _simple_evaluate(lm: Any, objects: list[Any], run_tasks: Any, options: _LmEvalOptions) -> dict[str, Any]:
    import lm_eval

    seeds = options.seeds
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=objects,
        num_fewshot=None,  # each task's shots are in its override YAML
        batch_size=options.batch_size,
        device=options.device,
        limit=options.limit,
        bootstrap_iters=options.bootstrap_iters,
        log_samples=options.log_samples,
        apply_chat_template=options.apply_chat_template,
        fewshot_as_multiturn=bool(options.apply_chat_template),
        task_manager=run_tasks,
        random_seed=seeds[0],
        numpy_random_seed=seeds[1],
        torch_random_seed=seeds[2],
        fewshot_random_seed=seeds[3],
    )


def _run_details(
    plan: TaskPlan,
    *,
    model_args: Mapping[str, Any],
    options: _LmEvalOptions,
    mirror_dir: Path | str,
    tasks_dir: Path | str,
    samples: Mapping[str, Sequence[Any]] | None,
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """What the run stores beside lm-eval's results: its settings, datasets, timing, reproduce commands."""
    start, planned, loaded, finished = (timing[key] for key in ("start", "planned", "loaded", "finished"))
    details: dict[str, Any] = {
        "model_args": model_args,
        "tasks": [request.to_dict() for request in plan.requests],
        "datasets": {
            leaf: {
                "dataset_path": ref.dataset_path,
                "dataset_name": ref.dataset_name,
                "read_from": str(mirror_folder(mirror_dir, ref.dataset_path).absolute())
                if is_hub_dataset(ref.dataset_path)
                else ref.dataset_path,
            }
            for leaf, ref in plan.sources.items()
        },
        "mirror_dir": str(mirror_dir),
        "tasks_dir": str(tasks_dir),
        "device": options.device,
        "batch_size": options.batch_size,
        "limit": options.limit,
        "seeds": dict(zip(("random", "numpy", "torch", "fewshot"), options.seeds, strict=True)),
        "apply_chat_template": options.apply_chat_template,
        "samples_logged": sum(len(v) for v in samples.values()) if samples else 0,
        "timing": {
            "started_at": timing["started_at"],
            "prepare_s": round(planned - start, 3),
            "model_load_s": round(loaded - planned, 3),
            "evaluate_s": round(finished - loaded, 3),
            "total_s": round(finished - start, 3),
        },
    }
    try:
        details["reproduce_commands"] = {
            request.task: reproduce_command(
                model_args=model_args,
                tasks=[request.task],
                tasks_dir=tasks_dir,
                device=options.device,
                batch_size=options.batch_size,
                limit=options.limit,
                seed=options.seeds,
                apply_chat_template=options.apply_chat_template,
            )
            for request in plan.requests
        }
    except ValueError as exc:  # a path the CLI syntax cannot carry: the scores are still good
        details["reproduce_commands"] = {}
        details["reproduce_problem"] = str(exc)
    if model_args.get("load_in_8bit") or model_args.get("load_in_4bit"):
        details["reproduce_note"] = (
            "lm-eval 0.4.13 hands load_in_8bit/load_in_4bit to transformers' from_pretrained, "
            "which transformers 5 only takes as a BitsAndBytesConfig; the site's HFLM "
            "makes that config from them."
        )
    return details
