"""Editing and deleting golden datasets and LLM endpoints from the site.

Deleting is refused while any evaluation run refers to the row: a run's results point at its dataset's
rows, and its record names the judge and the endpoint under test; removing them would leave runs that can
no longer say what they measured. (The database already protects them: ``on_delete=PROTECT``.) The message
says which runs and what to do instead.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from evaluator.models import EvaluatorRun, GoldenDataset, LLMEndpoint

RUNS_NAMED = 5


class InUse(ValueError):
    """The row is referred to by evaluation runs and stays; the message is for the page."""


def _runs_named(run_ids: list[int]) -> str:
    shown = ", ".join(f"#{pk}" for pk in run_ids[:RUNS_NAMED])
    return shown + (" …" if len(run_ids) > RUNS_NAMED else "")


def endpoint_runs(*, endpoint: LLMEndpoint) -> list[int]:
    """The evaluation runs that used ``endpoint`` as their judge or their model under test, newest first."""
    return list(
        EvaluatorRun.objects.filter(Q(judge=endpoint) | Q(target_endpoint=endpoint))
        .order_by("-run_id")
        .values_list("run_id", flat=True)
    )


def dataset_runs(*, dataset: GoldenDataset) -> list[int]:
    """The evaluation runs of any version of ``dataset``, newest first."""
    return list(
        EvaluatorRun.objects.filter(dataset_version__dataset=dataset)
        .order_by("-run_id")
        .values_list("run_id", flat=True)
    )


@transaction.atomic
def endpoint_delete(*, endpoint: LLMEndpoint) -> None:
    # Locked as evaluation_submit locks it: a submission meanwhile is either seen below or refused there.
    LLMEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
    runs = endpoint_runs(endpoint=endpoint)
    if runs:
        raise InUse(
            _(
                "%(name)s judged or answered in %(n)s evaluation runs (%(runs)s), so it stays: their records "
                "name it. Edit it instead, or untick “usable as judge”."
            )
            % {"name": endpoint.name, "n": len(runs), "runs": _runs_named(runs)}
        )
    endpoint.delete()


@transaction.atomic
def dataset_delete(*, dataset: GoldenDataset) -> None:
    GoldenDataset.objects.select_for_update().filter(pk=dataset.pk).first()
    runs = dataset_runs(dataset=dataset)
    if runs:
        raise InUse(
            _(
                "%(name)s was evaluated in %(n)s runs (%(runs)s), whose results point at its rows, so it "
                "stays. Make it private, or delete those runs first (an administrator can)."
            )
            % {"name": dataset.name, "n": len(runs), "runs": _runs_named(runs)}
        )
    dataset.delete()


def dataset_update(*, dataset: GoldenDataset, name: str, description: str, private: bool, user) -> list[str]:
    """Rename, describe, or make private/public; the names of the changed fields, for the audit log.
    Made private, a dataset without a group goes to the editor's first group (as when it is registered)."""
    changed = [
        field
        for field, value in (("name", name), ("description", description), ("private", private))
        if getattr(dataset, field) != value
    ]
    dataset.name, dataset.description, dataset.private = name, description, private
    if private and dataset.group_id is None and user.groups.exists():
        dataset.group = user.groups.first()
        changed.append("group")
    dataset.save(update_fields=["name", "description", "private", "group"])
    return changed
