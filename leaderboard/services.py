"""Write side of the leaderboard: registering model folders and submitting benchmark runs."""

from __future__ import annotations

from dataclasses import dataclass

from leaderboard.model_inspection import ModelFolderError, model_folder_inspect
from leaderboard.models import RegisteredModel, WeightType
from runs.choices import RunKind
from runs.models import EvaluationRun
from runs.services import run_create_or_existing


@dataclass
class Submission:
    run: EvaluationRun
    # False when an identical run already exists (finished, or still queued/running).
    created: bool


def model_register(
    *,
    storage_path: str,
    display_name: str = "",
    owner=None,
    group=None,
    precision: str = "bfloat16",
    model_type: str = "pretrained",
    weight_type: str = WeightType.ORIGINAL,
    base_model_path: str = "",
    use_chat_template: bool = False,
    private: bool = False,
    revision_note: str = "",
    license: str = "",
) -> RegisteredModel:
    """Validate the folder, read its facts, and save it (reusing the row of the same folder revision)."""
    info = model_folder_inspect(storage_path, base_model_path=base_model_path)
    if weight_type == WeightType.ORIGINAL and info.is_adapter:
        weight_type = WeightType.ADAPTER
    if weight_type == WeightType.ADAPTER and not info.is_adapter:
        raise ModelFolderError(f"{info.path} has no adapter_config.json, so it is not a PEFT adapter.")
    if weight_type == WeightType.DELTA and not base_model_path:
        raise ModelFolderError("Delta weights need the folder of the base model they apply to.")

    facts = {
        "display_name": display_name or info.path.name,
        "architecture": info.architecture,
        "num_params": info.num_params,
        "license": license or info.license,
        "moe": info.moe,
        "merged": info.merged,
        "model_type": model_type,
        "use_chat_template": use_chat_template,
        "private": private,
        "owner": owner,
        "group": group,
        "revision_note": revision_note,
    }
    model, _ = RegisteredModel.objects.update_or_create(
        storage_path=str(info.path),
        revision=info.revision,
        precision=precision,
        weight_type=weight_type,
        base_model_path=str(info.base_model_path or base_model_path or ""),
        deleted=False,
        defaults=facts,
    )
    return model


def benchmark_submit(*, model: RegisteredModel, suite_name: str, submitted_by=None, limit: int | None = None,
                     force: bool = False, device: str = "auto", enqueue: bool = True,
                     submission_key: str | None = None) -> Submission:
    """Queue a suite run for a model, unless the same revision, suite version and settings already has one."""
    from leaderboard.harness.executor import benchmark_spec_build

    spec = benchmark_spec_build(model=model, suite_name=suite_name, limit=limit, device=device)
    # Forced re-runs are new runs by design, but still one per submission (submission_key).
    run, created = run_create_or_existing(
        kind=RunKind.BENCHMARK, spec=spec, model=model, submitted_by=submitted_by, is_partial=limit is not None,
        enqueue=enqueue, dedupe_by_spec=not force, submission_key=submission_key)
    return Submission(run=run, created=created)
