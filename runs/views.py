from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditAction
from audit.services import audit_record
from config.htmx import render_page_or_fragment
from config.params import choice_param, int_param
from evaluator.selectors import evaluator_run_labels
from runs.choices import RunKind, RunStatus
from runs.selectors import run_can_cancel, runs_visible_to
from runs.services import run_cancel


@require_GET
def run_queue(request):
    runs = runs_visible_to(request.user)
    status = choice_param(request.GET, "status", RunStatus.values)
    if status:
        runs = runs.filter(status=status)
    page = Paginator(runs, 50).get_page(int_param(request.GET, "page", 1))
    cancellable = {run.pk for run in page if run_can_cancel(run=run, user=request.user)}
    # Evaluator runs name their dataset and what they evaluated (their "model" is often an endpoint).
    evaluator_labels = evaluator_run_labels(
        run_ids=[run.pk for run in page if run.kind == RunKind.EVALUATOR], user=request.user
    )
    # While a run on this page is queued or running, the table refreshes itself (htmx polling).
    context = {
        "page": page,
        "statuses": RunStatus.choices,
        "status": status,
        "cancellable": cancellable,
        "any_active": any(run.is_active for run in page),
        "evaluator_labels": evaluator_labels,
    }
    return render_page_or_fragment(request, page="runs/queue.html", fragment="runs/_queue_table.html", context=context)


@require_GET
def run_detail(request, run_id: int):
    run = get_object_or_404(runs_visible_to(request.user), pk=run_id)
    context = {
        "run": run,
        "can_cancel": run_can_cancel(run=run, user=request.user),
        "events": run.events.all(),
        "scores": run.scores.order_by("task", "metric", "filter"),
    }
    return render_page_or_fragment(request, page="runs/detail.html", fragment="runs/_status.html", context=context)


@require_POST
def run_cancel_view(request, run_id: int):
    run = get_object_or_404(runs_visible_to(request.user), pk=run_id)
    if not run_can_cancel(run=run, user=request.user):
        return HttpResponseForbidden(
            _("Only the submitter or staff can cancel this run, and only while it is queued or running.")
        )
    if run_cancel(run_id=run.pk, by=request.user.get_username()):
        audit_record(request=request, action=AuditAction.RUN_CANCELLED, target=run)
        messages.success(request, _("Run #%(id)s was cancelled.") % {"id": run.pk})
    else:
        messages.info(request, _("Run #%(id)s had already finished.") % {"id": run.pk})
    return redirect("runs:detail", run_id=run.pk)
