"""Editing and deleting golden datasets and LLM endpoints (endpoint editing itself is views.endpoint_edit).

The same rules as the rest of the evaluator: another group's private row is a 404, a visible row the user
may not change is a 403; a refused delete (runs refer to the row) says why, on the confirmation page, 409.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from audit.models import AuditAction
from audit.services import audit_record
from evaluator.forms import DatasetEditForm
from evaluator.manage_services import (
    InUse,
    dataset_delete,
    dataset_runs,
    dataset_update,
    endpoint_delete,
    endpoint_runs,
)
from evaluator.models import GoldenDataset, LLMEndpoint
from evaluator.selectors import dataset_can_delete, dataset_can_edit, endpoint_can_edit


def _dataset_for(request, dataset_id: int, *, allowed) -> GoldenDataset:
    dataset = get_object_or_404(GoldenDataset.objects.visible_to(request.user), pk=dataset_id)
    if not allowed(dataset=dataset, user=request.user):
        raise PermissionDenied
    return dataset


@require_http_methods(["GET", "POST"])
def dataset_edit(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id, allowed=dataset_can_edit)
    form = DatasetEditForm(
        request.POST or None,
        initial={"name": dataset.name, "description": dataset.description, "private": dataset.private},
    )
    if request.method == "POST" and form.is_valid():
        changed = dataset_update(dataset=dataset, user=request.user, **form.cleaned_data)
        audit_record(request=request, action=AuditAction.DATASET_CHANGED, target=dataset, detail={"changed": changed})
        messages.success(request, _("Saved %(name)s.") % {"name": dataset.name})
        return redirect("evaluator:dataset", dataset_id=dataset.pk)
    return render(
        request,
        "evaluator/dataset_edit.html",
        {"form": form, "dataset": dataset, "can_delete": dataset_can_delete(dataset=dataset, user=request.user)},
    )


def _delete_page(request, *, target, kind: str, runs: list[int], refusal: str = "", status: int = 200):
    return render(
        request,
        "evaluator/confirm_delete.html",
        {"target": target, "kind": kind, "runs": runs, "refusal": refusal},
        status=status,
    )


def _delete(request, *, target, kind: str, action: str, delete, runs) -> object:
    """The confirmation page (GET), or the delete with its audit row in one transaction (POST): a refused
    delete leaves no audit row and answers 409 with the reason."""
    if request.method != "POST":
        return _delete_page(request, target=target, kind=kind, runs=runs())
    name = str(target)
    try:
        with transaction.atomic():
            audit_record(request=request, action=action, target=target)  # before the row (and its pk) goes
            delete()
    except InUse as exc:
        return _delete_page(request, target=target, kind=kind, runs=runs(), refusal=str(exc), status=409)
    messages.success(request, _("Deleted %(name)s.") % {"name": name})
    return redirect("evaluator:index")


@require_http_methods(["GET", "POST"])
def dataset_delete_view(request, dataset_id: int):
    dataset = _dataset_for(request, dataset_id, allowed=dataset_can_delete)
    return _delete(
        request,
        target=dataset,
        kind="dataset",
        action=AuditAction.DATASET_DELETED,
        delete=lambda: dataset_delete(dataset=dataset),
        runs=lambda: dataset_runs(dataset=dataset),
    )


@require_http_methods(["GET", "POST"])
def endpoint_delete_view(request, endpoint_id: int):
    endpoint = get_object_or_404(LLMEndpoint.objects.visible_to(request.user), pk=endpoint_id)
    if not endpoint_can_edit(endpoint=endpoint, user=request.user):
        raise PermissionDenied
    return _delete(
        request,
        target=endpoint,
        kind="endpoint",
        action=AuditAction.ENDPOINT_DELETED,
        delete=lambda: endpoint_delete(endpoint=endpoint),
        runs=lambda: endpoint_runs(endpoint=endpoint),
    )
