"""Importing benchmark results produced elsewhere (e.g. the lm-eval CLI on a cluster) as benchmark runs.

An imported run lives in the same tables as a worker's run and goes through the same lifecycle
(QUEUED -> RUNNING -> SUCCEEDED, with its events), so the run pages, exports and the leaderboard read
it like any other. Its spec is built as a worker run's, with the settings the results file records
(limit, device, batch size, seeds, dtype): a file produced with a sample limit, or one that lacks a
column of the suite, is a partial run and is never ranked.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from leaderboard.harness.executor import SAMPLES_FILENAME, benchmark_spec_build
from leaderboard.harness.suites import DEFAULT_SUITE, Suite, SuiteError, suite_get
from leaderboard.model_inspection import model_folder_inspect
from leaderboard.models import RegisteredModel
from leaderboard.services import model_register
from runs.choices import RunKind, RunStatus
from runs.executors import EvaluationFailed, RunOutcome
from runs.models import EvaluationRun
from runs.services import run_claim, run_create, run_finish

PRECISIONS = ("float32", "float16", "bfloat16")


class ResultsImportError(ValueError):
    """The results file (or its samples) cannot be imported as given; the message says why."""


def _results_read(results_path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(results_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsImportError(f"Cannot read the results file {results_path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("results"), dict) or not raw["results"]:
        raise ResultsImportError(
            f"{results_path} is not an lm-eval results file: it has no 'results' section with tasks in it."
        )
    return raw


def _model_args(config: Mapping[str, Any]) -> dict[str, str]:
    # lm-eval records model_args as a dict, or as the CLI's "k=v,k=v" string in older files.
    args = config.get("model_args") or {}
    if isinstance(args, str):
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    return {str(k): str(v) for k, v in args.items()}


def _file_precision(raw: Mapping[str, Any]) -> str | None:
    """The dtype the model ran in, as the file records it ("torch.bfloat16", or model_args' dtype)."""
    config = raw.get("config") or {}
    for value in (str(config.get("model_dtype") or "").removeprefix("torch."), _model_args(config).get("dtype")):
        if value in PRECISIONS:
            return value
    return None


def results_precision(*, results_path: Path | str) -> str | None:
    """The precision a results file was evaluated in, or None when it does not say."""
    return _file_precision(_results_read(Path(results_path)))


def imported_model_get_or_register(
    *, storage_path: str, precision: str, display_name: str = "", owner=None
) -> RegisteredModel:
    """The registered model of this folder revision and precision, registered now if it is new.

    An existing row keeps what its submitter set (name, type, group...); only a given
    ``display_name`` or ``owner`` is written to it. Raises ModelFolderError outside MODEL_ROOTS.
    """
    info = model_folder_inspect(storage_path)
    existing = (
        RegisteredModel.objects.filter(
            storage_path=str(info.path), revision=info.revision, precision=precision, deleted=False
        )
        .order_by("-submitted_at", "-pk")
        .first()
    )
    if existing is None:
        return model_register(storage_path=str(info.path), display_name=display_name, owner=owner, precision=precision)
    changed = {name: value for name, value in (("display_name", display_name), ("owner", owner)) if value}
    if changed:
        for name, value in changed.items():
            setattr(existing, name, value)
        existing.save(update_fields=list(changed))
    return existing


def _limit(value: Any) -> int | float | None:
    if value is None:
        return None
    number = float(value)
    return int(number) if number.is_integer() else number  # lm-eval also accepts a fraction of the set


def _seeds(config: Mapping[str, Any]) -> list[int | None] | None:
    keys = ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")
    if not any(key in config for key in keys):
        return None  # not recorded: lm-eval's defaults
    return [config.get(key) for key in keys]


def _batch_size(value: Any) -> int | str:
    text = str(value if value is not None else "auto")
    return int(text) if text.isdigit() else text


def _library_versions(raw: Mapping[str, Any]) -> dict[str, str]:
    """The versions of the machine that produced the file, not this one's."""
    versions: dict[str, str] = {}
    for key, package in (("lm_eval_version", "lm_eval"), ("transformers_version", "transformers")):
        if raw.get(key):
            versions[package] = str(raw[key])
    env_info = str(raw.get("pretty_env_info") or "")
    for label, package in (("PyTorch version", "torch"), ("Python version", "python")):
        if found := re.search(rf"^{label}: (\S+)", env_info, re.MULTILINE):
            versions[package] = found.group(1)
    return versions


def _check_against_suite(suite: Suite, raw: Mapping[str, Any], leaf_tasks: Mapping[str, Sequence[str]]) -> list:
    """The suite's task requests the file holds; refuses shots or overrides other than the suite's."""
    reported = set(raw["results"]) | set(raw.get("groups") or {})
    present = [request for request in suite.task_requests() if request.task in reported]
    if not present:
        raise ResultsImportError(
            f"The results file holds none of the tasks of suite {suite.name!r} "
            f"({', '.join(r.task for r in suite.task_requests())}); it has {', '.join(sorted(reported))}."
        )
    n_shot, configs = raw.get("n-shot") or {}, raw.get("configs") or {}
    for request in present:
        for leaf in leaf_tasks.get(request.task, [request.task]):
            if leaf in n_shot and int(n_shot[leaf]) != request.num_fewshot:
                raise ResultsImportError(
                    f"{leaf} ran {n_shot[leaf]}-shot in the results file, but suite {suite.name!r} runs it "
                    f"{request.num_fewshot}-shot: these scores are not comparable."
                )
            for key, wanted in request.overrides.items():
                if leaf in configs and configs[leaf].get(key) != wanted:
                    raise ResultsImportError(
                        f"{leaf} ran with {key}={configs[leaf].get(key)!r} in the results file, but suite "
                        f"{suite.name!r} sets {key}={wanted!r}: these scores are not comparable."
                    )
    return present


def results_import(
    *,
    results_path: Path | str,
    samples_paths: Sequence[Path | str] = (),
    model: RegisteredModel,
    suite_name: str = DEFAULT_SUITE,
    imported_by=None,
) -> EvaluationRun:
    """Store an lm-eval results file (and its samples files) as a succeeded benchmark run of ``model``.

    All or nothing: a file that cannot be read, or does not fit the suite, raises ResultsImportError
    and leaves no row and no file behind.
    """
    results_path = Path(results_path).resolve()
    samples_paths = [Path(p).resolve() for p in samples_paths]
    try:
        suite = suite_get(suite_name)
    except SuiteError as exc:
        raise ResultsImportError(str(exc)) from exc
    raw = _results_read(results_path)
    config = raw.get("config") or {}
    precision = _file_precision(raw)
    if precision and precision != model.precision:
        raise ResultsImportError(
            f"The results file was evaluated in {precision}, but the model is registered as "
            f"{model.precision}; give the precision the file was produced with."
        )

    artifacts = Path(settings.ARTIFACTS_DIR)
    artifacts.mkdir(parents=True, exist_ok=True)
    # Staged beside the run folders (same file system: the move is a rename), removed on any failure.
    with tempfile.TemporaryDirectory(dir=artifacts, prefix="import-") as staging:
        from leaderboard.harness.results import load_results_file

        try:
            result = load_results_file(
                results_path,
                samples_paths,
                suite=suite,
                samples_out=Path(staging) / SAMPLES_FILENAME,
                include_path=settings.HARNESS_TASKS_DIR,
            )
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, EvaluationFailed) as exc:
            raise ResultsImportError(f"Cannot import {results_path}: {type(exc).__name__}: {exc}") from exc
        present = _check_against_suite(suite, raw, result.details.get("leaf_tasks", {}))
        try:
            limit = _limit(config.get("limit"))
            spec = benchmark_spec_build(
                model=model,
                suite_name=suite.name,
                suite_version=suite.version,
                limit=limit,
                device=str(config.get("device") or "auto"),
                batch_size=_batch_size(config.get("batch_size")),
                dtype=_model_args(config).get("dtype") or None,
                apply_chat_template=bool(raw.get("chat_template")),
                seed=_seeds(config),
            )
        except (TypeError, ValueError) as exc:
            raise ResultsImportError(f"The results file's settings cannot describe a run: {exc}") from exc
        # Only what the file holds: a run of two of six tasks must not claim the other four.
        spec["tasks"] = [request.to_dict() for request in present]
        cut = any(
            int(n["effective"]) < int(n["original"])
            for n in (raw.get("n-samples") or {}).values()
            if isinstance(n, Mapping) and "effective" in n and "original" in n
        )
        is_partial = limit is not None or cut or result.average is None

        details = {
            **result.details,
            "imported_from": str(results_path),
            "imported_samples_from": [str(p) for p in samples_paths],
            "imported_at": timezone.now().isoformat(),
            "imported_by": str(imported_by or ""),
        }
        moved: Path | None = None
        try:
            with transaction.atomic():
                run = run_create(
                    kind=RunKind.BENCHMARK,
                    spec=spec,
                    model=model,
                    submitted_by=imported_by,
                    is_partial=is_partial,
                    enqueue=False,
                )
                if result.samples_path is not None:
                    moved = artifacts / "runs" / str(run.pk) / SAMPLES_FILENAME
                    moved.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(result.samples_path, moved)
                run_claim(run_id=run.pk, worker_host=f"import on {socket.gethostname()}")
                outcome = RunOutcome(
                    scores=result.scores,
                    details=details,
                    library_versions=_library_versions(raw),
                    samples_path=str(moved.relative_to(artifacts)) if moved else "",
                )
                log = (
                    f"Imported from {results_path} with {details.get('samples_logged', 0)} samples from "
                    f"{len(samples_paths)} file(s); limit {limit}; {'partial' if is_partial else 'full'} run."
                )
                if not run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, outcome=outcome, log=log):
                    raise ResultsImportError(f"run #{run.pk} changed status while it was imported")
        except BaseException:
            if moved is not None:
                moved.unlink(missing_ok=True)
                try:
                    moved.parent.rmdir()
                except OSError:
                    pass
            raise
    run.refresh_from_db()
    return run
