"""Write side of the leaderboard: registering model folders and submitting benchmark runs."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from leaderboard.model_inspection import ModelFolderError, model_folder_inspect
from leaderboard.models import RegisteredModel, WeightType
from runs.choices import RunKind
from runs.idempotency import submission_key_check
from runs.models import EvaluationRun
from runs.services import run_create_or_existing, spec_hash_compute


class ModelFolderRefused(ModelFolderError):
    """The folder is registered privately by an owner or group the submitter does not belong to."""


@dataclass
class Submission:
    run: EvaluationRun
    # False when an identical run already exists (finished, or still queued/running).
    created: bool


def model_folder_hidden_from(*, storage_path: str, user) -> bool:
    """Whether a live row of this folder (any revision or precision) is private to others than ``user``."""
    private = RegisteredModel.objects.filter(storage_path=storage_path, deleted=False, private=True)
    return private.exclude(pk__in=RegisteredModel.objects.visible_to(user).values("pk")).exists()


def model_folder_refusal(storage_path: str) -> ModelFolderRefused:
    """The refusal of a folder registered privately by another team (also the submit form's message)."""
    return ModelFolderRefused(
        _(
            "%(path)s is registered as a private model of another team, so it cannot be submitted "
            "here; ask its owners to share it or to run it."
        )
        % {"path": storage_path}
    )


def model_get_or_register(
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
) -> tuple[RegisteredModel, bool]:
    """Validate the folder and return its row for this revision and way of running it: (row, created).

    An existing row is returned as it is: registering never changes who owns a model, its visibility
    or its name (the owner, group, private flag and names given here only apply to a new row). With an
    ``owner`` (a person submitting), a folder that has a row private to an owner or group they are not
    is refused (ModelFolderRefused), whatever its revision. Concurrent registrations of a new folder
    meet at the database's unique constraint and all get the one row.
    """
    info = model_folder_inspect(storage_path, base_model_path=base_model_path, weight_type=weight_type)
    if weight_type == WeightType.ORIGINAL and info.is_adapter:
        weight_type = WeightType.ADAPTER
    if weight_type == WeightType.ADAPTER and not info.is_adapter:
        raise ModelFolderError(
            _("%(path)s has no adapter_config.json, so it is not a PEFT adapter.") % {"path": info.path}
        )
    if owner is not None and model_folder_hidden_from(storage_path=str(info.path), user=owner):
        raise model_folder_refusal(str(info.path))

    key = {
        "storage_path": str(info.path),
        "revision": info.revision,
        "precision": precision,
        "weight_type": weight_type,
        "base_model_path": str(info.base_model_path or ""),
        "deleted": False,
    }
    facts = {
        "display_name": (display_name or info.path.name)[:200],
        "architecture": info.architecture,
        "num_params": info.num_params,
        "license": (license or info.license)[:100],
        "moe": info.moe,
        "merged": info.merged,
        "model_type": model_type,
        "use_chat_template": use_chat_template,
        "private": private,
        "owner": owner,
        "group": group,
        "revision_note": revision_note[:200],
    }
    existing = RegisteredModel.objects.filter(**key).first()
    created = existing is None
    if created:
        try:
            # A savepoint: the loser of a concurrent insert gets an IntegrityError (PostgreSQL makes it
            # wait for the winner's transaction), and the caller's transaction stays usable.
            with transaction.atomic():
                existing = RegisteredModel.objects.create(**key, **facts)
        except IntegrityError:
            existing = RegisteredModel.objects.filter(**key).first()
            created = False
            if existing is None:
                raise
    if owner is not None and not created and not existing.is_visible_to(owner):
        raise model_folder_refusal(str(info.path))  # registered privately by a concurrent submission
    return existing, created


def model_register(**kwargs) -> RegisteredModel:
    """``model_get_or_register`` without the flag: the row of the folder's revision."""
    return model_get_or_register(**kwargs)[0]


def benchmark_submit(
    *,
    model: RegisteredModel,
    suite_name: str,
    submitted_by=None,
    limit: int | None = None,
    force: bool = False,
    device: str = "auto",
    batch_size: int | str = "auto",
    partial: bool = False,
    enqueue: bool = True,
    submission_key: str | None = None,
) -> Submission:
    """Queue a suite run for a model, unless the same revision, suite version and settings already has one.

    Before anything is stored, the suite is checked against the dataset mirror's last check
    (``leaderboard.mirror_reports.suite_serve_check``): a suite the mirror cannot serve fully raises
    ``SuiteNotServed`` naming what is missing, unless ``partial`` (then the missing columns are left out
    and the run is partial: never ranked). ``submission_key`` (``runs.idempotency``) makes a form posted twice
    one run, forced re-runs included; a key already used for another submission raises ``SubmissionKeyReused``.

    Raises:
        SuiteNotServed, SuiteError, ValueError (a bad batch size or precision), SubmissionKeyReused.
    """
    from leaderboard.harness.executor import benchmark_spec_build
    from leaderboard.harness.suites import suite_get
    from leaderboard.mirror_reports import suite_availability, suite_serve_check

    missing_columns = suite_serve_check(availability=suite_availability(suite=suite_get(suite_name)), partial=partial)
    spec = benchmark_spec_build(
        model=model,
        suite_name=suite_name,
        limit=limit,
        device=device,
        batch_size=batch_size,
        missing_columns=missing_columns,
    )
    spec_hash = spec_hash_compute(spec=spec)
    earlier = submission_key_check(submission_key=submission_key, spec_hash=spec_hash, model_id=model.pk)
    if earlier is not None:
        return Submission(run=earlier, created=False)
    # Forced re-runs are new runs by design, but still one per submission (submission_key).
    run, created = run_create_or_existing(
        kind=RunKind.BENCHMARK,
        spec=spec,
        spec_hash=spec_hash,
        model=model,
        submitted_by=submitted_by,
        is_partial=limit is not None or bool(spec.get("missing_columns")),
        enqueue=enqueue,
        dedupe_by_spec=not force,
        submission_key=submission_key,
    )
    return Submission(run=run, created=created)
