"""Write side of the evaluator: golden datasets and their immutable versions."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify
from django.utils.translation import gettext as _

from evaluator.datasets import RowData
from evaluator.models import DatasetRow, DatasetVersion, EvaluatorRun, GoldenDataset


class DatasetVersionLocked(ValueError):
    """A run used this version: its rows are what the run's results refer to, so it stays as it is."""


def dataset_version_is_locked(*, version: DatasetVersion) -> bool:
    """Used by a run. No service updates a version's rows in place (editing makes a new version); the few
    that would remove or relabel one check this first."""
    return EvaluatorRun.objects.filter(dataset_version=version).exists()


def _version_assert_unlocked(version: DatasetVersion) -> None:
    if dataset_version_is_locked(version=version):
        raise DatasetVersionLocked(
            _(
                "Version %(n)s of %(name)s is used by an evaluation run and cannot be changed "
                "or deleted; edit it to make a new version."
            )
            % {"n": version.number, "name": version.dataset.name}
        )


@transaction.atomic
def dataset_version_note_set(*, version: DatasetVersion, note: str) -> None:
    _version_assert_unlocked(version)
    DatasetVersion.objects.filter(pk=version.pk).update(note=note[:300])


@transaction.atomic
def dataset_version_delete(*, version: DatasetVersion) -> None:
    """Delete an unused version (a mistaken upload). The dataset keeps its other versions and numbers."""
    _version_assert_unlocked(version)
    if version.dataset.versions.count() == 1:
        raise DatasetVersionLocked(_("A dataset keeps at least one version."))
    version.delete()


@transaction.atomic
def dataset_version_create(
    *, dataset: GoldenDataset, rows: Sequence[RowData], source: str = "", note: str = "", created_by=None
) -> DatasetVersion:
    """A new version holding ``rows``. Versions are never edited: editing a dataset makes a new one."""
    # Lock the dataset row so two uploads at once cannot take the same version number.
    GoldenDataset.objects.select_for_update().filter(pk=dataset.pk).first()
    number = (dataset.versions.aggregate(highest=Max("number"))["highest"] or 0) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset, number=number, source=source[:300], note=note[:300], created_by=created_by, row_count=len(rows)
    )
    DatasetRow.objects.bulk_create(
        [
            DatasetRow(
                version=version,
                position=position,
                question=row.question,
                reference=row.reference,
                contexts=list(row.contexts),
                response=row.response,
                tags=list(row.tags),
            )
            for position, row in enumerate(rows, start=1)
        ],
        batch_size=1000,
    )
    return version


@transaction.atomic
def dataset_create(
    *,
    name: str,
    rows: Sequence[RowData],
    owner=None,
    group=None,
    private: bool = False,
    description: str = "",
    source: str = "",
) -> GoldenDataset:
    dataset = GoldenDataset.objects.create(
        name=name, description=description, owner=owner, group=group, private=private
    )
    dataset_version_create(dataset=dataset, rows=rows, source=source, created_by=owner)
    return dataset


def dataset_version_rows(*, version: DatasetVersion) -> list[RowData]:
    return [
        RowData(
            question=r.question,
            reference=r.reference,
            contexts=tuple(r.contexts),
            response=r.response,
            tags=tuple(r.tags),
        )
        for r in version.rows.order_by("position")
    ]


def dataset_version_edit(
    *,
    version: DatasetVersion,
    edits: dict[int, RowData | None],
    additions: Sequence[RowData] = (),
    note: str = "",
    edited_by=None,
) -> DatasetVersion:
    """A new version: ``version``'s rows with ``edits`` applied (position -> new row, or None to delete) and
    ``additions`` appended. The old version is left exactly as it was."""
    rows = []
    for position, row in enumerate(dataset_version_rows(version=version), start=1):
        if position in edits:
            if edits[position] is not None:
                rows.append(edits[position])
        else:
            rows.append(row)
    rows.extend(additions)
    return dataset_version_create(
        dataset=version.dataset, rows=rows, source=f"edited from v{version.number}", note=note, created_by=edited_by
    )


class EvaluationSetupError(ValueError):
    """A run that cannot work as set up; ``problems`` are sentences for the form."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(" ".join(problems))


def _criteria_keyed(custom_criteria: Sequence[dict], *, metric_keys: Sequence[str], problems: list[str]) -> list[dict]:
    """The custom criteria, each with a key of its own (``custom:<slug>``); their problems go to ``problems``."""
    criteria = [dict(c) for c in custom_criteria]
    taken: set[str] = set(metric_keys)
    for index, criterion in enumerate(criteria, start=1):
        if not criterion.get("name") or not criterion.get("definition"):
            problems.append(_("A custom criterion needs a name and a definition."))
        if criterion.get("kind", "aspect") not in ("aspect", "rubric"):
            problems.append(_("A custom criterion is a yes/no aspect or a 1–5 rubric."))
        # Korean names keep their letters in the key; two criteria with one name still get two keys.
        key = criterion.get("key") or "custom:" + (
            slugify(criterion.get("name", ""), allow_unicode=True)[:60] or str(index)
        )
        while key in taken:
            key += f"-{index}"
        taken.add(key)
        criterion["key"] = key
    return criteria


def _evaluation_setup_problems(
    *,
    dataset_version: DatasetVersion,
    target_kind: str,
    keys: list[str],
    criteria: list[dict],
    target_model,
    target_endpoint,
    judge,
    template: str,
) -> list[str]:
    """Every reason the set-up cannot work, as sentences for the form (empty: it can)."""
    from evaluator.generation import prompt_template_check
    from evaluator.metrics import METRICS, metric_needs_judge
    from evaluator.models import TargetKind

    problems: list[str] = []
    needs_judge = [key for key in keys if key in METRICS and metric_needs_judge(key)] + [c["key"] for c in criteria]
    if needs_judge and judge is None:
        problems.append(_("These metrics need a judge LLM: %(keys)s.") % {"keys": ", ".join(needs_judge)})
    for endpoint in dict.fromkeys(
        e for e in (judge, target_endpoint if target_kind == TargetKind.ENDPOINT else None) if e
    ):
        if endpoint.api_key_needed:  # the run would fail at its start: say so now, before anything is queued
            problems.append(
                _(
                    "%(endpoint)s needs its API key set again (its old secret setting could not be "
                    "trusted and was removed): edit the endpoint."
                )
                % {"endpoint": endpoint.name}
            )
    rows = list(dataset_version.rows.values_list("reference", "contexts", "response"))
    for need, index, label in (("reference", 0, _("a reference answer")), ("contexts", 1, _("retrieved contexts"))):
        wanting = [key for key in keys if key in METRICS and need in METRICS[key].needs]
        missing = sum(1 for row in rows if not row[index])
        if wanting and missing == len(rows):
            problems.append(
                _("No row has %(what)s, which %(keys)s need.") % {"what": label, "keys": ", ".join(wanting)}
            )
    if target_kind == TargetKind.PRECOMPUTED and any(not row[2] for row in rows):
        problems.append(
            _("%(n)s rows have no response; pick a model under test, or upload responses.")
            % {"n": sum(1 for row in rows if not row[2])}
        )
    if target_kind == TargetKind.ENDPOINT and target_endpoint is None:
        problems.append(_("Pick the endpoint of the model under test."))
    if target_kind == TargetKind.REGISTERED_MODEL and target_model is None:
        problems.append(_("Pick the registered model under test."))
    try:
        prompt_template_check(template)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def _referenced_rows_lock(*, dataset_version, endpoints) -> None:
    """Lock the dataset and endpoints the run will point at, as ``evaluator.manage_services``' deletes do: a
    delete running meanwhile then either waits and sees this run, or has already removed the row, which
    is refused here (instead of a foreign-key error at commit)."""
    from evaluator.models import GoldenDataset, LLMEndpoint

    wanted = {endpoint.pk for endpoint in endpoints if endpoint is not None}
    dataset_there = GoldenDataset.objects.select_for_update().filter(pk=dataset_version.dataset_id).exists()
    found = set(LLMEndpoint.objects.select_for_update().filter(pk__in=wanted).values_list("pk", flat=True))
    if not dataset_there or found != wanted:
        raise EvaluationSetupError([_("The dataset or an endpoint of this evaluation was just deleted.")])


def _evaluation_target(*, target_kind: str, target_model, target_endpoint) -> dict:
    from evaluator.endpoints import endpoint_spec
    from evaluator.models import TargetKind

    if target_kind == TargetKind.ENDPOINT:
        return {"kind": "endpoint", "endpoint": endpoint_spec(target_endpoint)}
    if target_kind == TargetKind.REGISTERED_MODEL:
        return {
            "kind": "registered_model",
            "model_id": target_model.pk,
            "model_path": target_model.storage_path,
            "model_name": target_model.display_name,
        }
    return {"kind": "precomputed"}


def evaluation_submit(
    *,
    dataset_version: DatasetVersion,
    target_kind: str,
    metric_keys: Sequence[str],
    target_model=None,
    target_endpoint=None,
    judge=None,
    embedding=None,
    preset: str = "",
    custom_criteria: Sequence[dict] = (),
    prompt_template: str | None = None,
    submitted_by=None,
    submission_key: str | None = None,
):
    """Check the set-up against the dataset's rows, freeze it into a spec, and queue the run.

    ``submission_key`` (``runs.idempotency``): the same form posted again (at once, or later) gets the run
    it already made; a key used for a different set-up raises ``SubmissionKeyReused``.
    """
    from evaluator.endpoints import endpoint_spec
    from evaluator.generation import DEFAULT_PROMPT_TEMPLATE, default_embedding_path
    from evaluator.metrics import METRICS, metric_needs_embeddings
    from evaluator.models import EndpointKind, EvaluatorRun, TargetKind
    from runs.idempotency import submission_key_check
    from runs.services import run_create_or_existing, spec_hash_compute

    problems: list[str] = []
    keys = list(dict.fromkeys(metric_keys))
    unknown = [key for key in keys if key not in METRICS]
    if unknown:
        problems.append(_("Unknown metrics: %(keys)s.") % {"keys": ", ".join(unknown)})
    if not keys and not custom_criteria:
        problems.append(_("Pick at least one metric or write a criterion."))
    criteria = _criteria_keyed(custom_criteria, metric_keys=keys, problems=problems)
    template = prompt_template or DEFAULT_PROMPT_TEMPLATE
    problems += _evaluation_setup_problems(
        dataset_version=dataset_version,
        target_kind=target_kind,
        keys=keys,
        criteria=criteria,
        target_model=target_model,
        target_endpoint=target_endpoint,
        judge=judge,
        template=template,
    )
    if problems:
        raise EvaluationSetupError(problems)

    needs_embeddings = any(metric_needs_embeddings(key) for key in keys)
    spec = {
        "dataset_version_id": dataset_version.pk,
        "dataset": dataset_version.dataset.name,
        "dataset_version": dataset_version.number,
        "target": _evaluation_target(
            target_kind=target_kind, target_model=target_model, target_endpoint=target_endpoint
        ),
        "judge": endpoint_spec(judge) if judge is not None else None,
        "embedding_path": ((embedding.path if embedding else "") or default_embedding_path())
        if needs_embeddings
        else None,
        "metrics": keys,
        "custom_criteria": criteria,
        "preset": preset,
        "prompt_template": template,
    }
    loads_a_model = target_kind == TargetKind.REGISTERED_MODEL or any(
        endpoint is not None and endpoint.kind == EndpointKind.LOCAL for endpoint in (target_endpoint, judge)
    )
    queue = None if loads_a_model else settings.RUN_QUEUE_NO_LOCAL_MODEL
    spec_hash = spec_hash_compute(spec=spec)
    earlier = submission_key_check(
        submission_key=submission_key, spec_hash=spec_hash, model_id=target_model.pk if target_model else None
    )
    if earlier is not None:
        return earlier
    with transaction.atomic():
        _referenced_rows_lock(dataset_version=dataset_version, endpoints=(target_endpoint, judge))
        # Concurrent posts of one form meet at the unique submission key: one run, its EvaluatorRun
        # written in the same transaction, and the others get that run.
        run, created = run_create_or_existing(
            kind="evaluator",
            spec=spec,
            spec_hash=spec_hash,
            model=target_model,
            submitted_by=submitted_by,
            queue=queue,
            submission_key=submission_key,
        )
        if created:
            EvaluatorRun.objects.create(
                run=run,
                dataset_version=dataset_version,
                target_kind=target_kind,
                target_model=target_model,
                target_endpoint=target_endpoint,
                judge=judge,
                embedding=embedding,
                preset=preset,
                metrics=keys,
            )
    return run
