from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from audit.models import AuditAction
from audit.services import audit_record
from config.htmx import render_page_or_fragment, wants_fragment
from leaderboard.exports import export_fieldnames, export_record
from leaderboard.forms import SubmitForm
from leaderboard.harness.suites import DEFAULT_SUITE
from leaderboard.mirror_reports import Served, SuiteNotServed, mirror_checks_elsewhere, suites_availability
from leaderboard.model_browser import model_folder_list
from leaderboard.model_inspection import BaseModelFolderError, ModelFolderError, model_folder_inspect
from leaderboard.models import LeaderboardPreference, ModelType, Precision, WeightType
from leaderboard.selectors import leaderboard_page, reference_rows, visible_columns_get
from leaderboard.services import benchmark_submit, model_get_or_register
from leaderboard.table import (
    PAGE_SIZES,
    SEARCH_PREFIXES,
    SIZE_BUCKETS,
    TOGGLES,
    LeaderboardQuery,
    search_unknown_prefixes,
    table_columns,
    type_symbol_legend,
)
from leaderboard.tasks import refresh_mirror_reports as refresh_mirror_reports_task
from runs.csv_export import csv_response
from runs.idempotency import SubmissionKeyReused
from runs.selectors import BROKER_DOWN_MESSAGE, run_awaits_broker


def _leaderboard_context(request):
    from leaderboard.harness.suites import SuiteError, suite_get

    try:
        suite = suite_get(request.GET.get("suite", DEFAULT_SUITE))
    except SuiteError:
        raise Http404(_("No such suite.")) from None
    columns = list(suite.columns)
    all_columns = table_columns(suite)
    query = LeaderboardQuery.from_querydict(
        request.GET, suite=suite.name, sortable={c.key for c in all_columns if c.sort_field}
    )
    return suite, columns, all_columns, query


@require_GET
def leaderboard_index(request):
    """The "LLM Benchmark" tab. An htmx request (filters, search, sort, paging) gets only the table."""
    suite, columns, all_columns, query = _leaderboard_context(request)
    page = leaderboard_page(user=request.user, query=query, columns=columns, table_columns=all_columns)
    shown = visible_columns_get(user=request.user, query=query, table_columns=all_columns)
    context = {
        "suite": suite,
        "query": query,
        "page": page,
        "shown_columns": shown,
        "all_columns": all_columns,
        "shown_keys": {c.key for c in shown},
        "score_keys": {c.key for c in columns},
        "reference_rows": reference_rows(suite_name=suite.name) if query.page == 1 else [],
        "model_types": ModelType.choices,
        "precisions": Precision.choices,
        "size_buckets": SIZE_BUCKETS,
        "toggles": TOGGLES,
        "page_sizes": PAGE_SIZES,
        "type_legend": type_symbol_legend(),
        "search_problem": _search_problem(query.search),
    }
    context["partial"] = wants_fragment(request)  # the fragment then re-sends the exports and column picker
    return render_page_or_fragment(
        request, page="leaderboard/index.html", fragment="leaderboard/_table.html", context=context
    )


def _search_problem(search: str) -> str:
    """A message naming the search's unknown @prefixes (left out of the search) and the known ones."""
    unknown = search_unknown_prefixes(search)
    if not unknown:
        return ""
    return _("Unknown search prefix %(unknown)s — left out of the search. Known prefixes: %(known)s.") % {
        "unknown": ", ".join(f"@{name}:" for name in unknown),
        "known": ", ".join(f"@{name}:" for name in SEARCH_PREFIXES),
    }


@require_GET
def leaderboard_export(request, fmt: str):
    """The current view (filters, search, sort; every page) as CSV or JSON."""
    suite, columns, all_columns, query = _leaderboard_context(request)
    page = leaderboard_page(user=request.user, query=query, columns=columns, table_columns=all_columns, paginate=False)
    records = [export_record(row, columns) for row in page.rows]
    filename = f"leaderboard-{suite.name}"
    if fmt == "json":
        response = JsonResponse(
            {"suite": suite.name, "suite_version": suite.version, "query": query.urlencode(), "rows": records},
            json_dumps_params={"ensure_ascii": False, "indent": 1},
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
        return response
    return csv_response(f"{filename}.csv", list(records[0]) if records else export_fieldnames(columns), records)


@require_POST
def leaderboard_columns_save(request):
    """The column picker: remember the user's columns, then show the table with them."""
    suite, _columns, all_columns, _query = _leaderboard_context(request)
    known = {c.key for c in all_columns}
    chosen = [key for key in request.POST.getlist("cols") if key in known]
    LeaderboardPreference.objects.update_or_create(user=request.user, defaults={"columns": chosen})
    return redirect(f"{reverse('leaderboard:index')}?{request.GET.urlencode()}")


def about(request):
    from leaderboard.harness.suites import suite_get

    if request.method == "POST" and request.user.is_staff:
        from runs.broker import broker_errors
        from runs.services import PUBLISH_RETRY_POLICY

        try:
            refresh_mirror_reports_task.apply_async(
                kwargs={"force": True}, queue="cpu", retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except broker_errors():
            messages.error(
                request,
                _(
                    "The broker did not answer, so no worker could be asked to check the mirror; "
                    "run manage.py mirror_verify instead."
                ),
            )
        else:
            messages.info(request, _("The mirror is being checked on a worker; reload this page in a minute."))
        return redirect("leaderboard:about")
    return render(
        request,
        "leaderboard/about.html",
        {
            "suite": suite_get(DEFAULT_SUITE),
            "mirror": settings.DATASET_MIRROR,
            "availability": suites_availability(),
            "elsewhere": mirror_checks_elsewhere(),
            "lm_eval_version": _installed_version("lm_eval"),
        },
    )


def _installed_version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


@login_not_required
@require_GET
def healthz(request):
    """For load balancers and systemd: the web process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
def favicon(request):
    """Browsers and tools ask for /favicon.ico whatever the page links: send them to the static one."""
    return redirect(static("img/favicon.ico"))


@require_GET
def submit_browse(request):
    """htmx partial: the folders of the model storage, for the submit form's path field."""
    try:
        listing = model_folder_list(raw_path=request.GET.get("path", ""))
        error = ""
    except ModelFolderError as exc:
        listing, error = model_folder_list(), str(exc)
    return render(request, "leaderboard/_model_browser.html", {"listing": listing, "error": error})


@require_GET
def submit_inspect(request):
    """htmx partial: what the files of a folder say (architecture, size, adapter...) before anything is queued."""
    weight_type = request.GET.get("weight_type", "")
    try:
        info = model_folder_inspect(
            request.GET.get("storage_path", ""),
            base_model_path=request.GET.get("base_model_path", ""),
            weight_type=weight_type if weight_type in WeightType.values else "",
        )
        error = ""
    except ModelFolderError as exc:
        info, error = None, str(exc)
    return render(request, "leaderboard/_model_inspection.html", {"info": info, "error": error})


def _initial_suite(availability: list) -> str:
    """The default suite when the mirror serves it fully (or it is not checked yet), else the first suite it serves."""
    by_name = {a.suite.name: a for a in availability}
    default = by_name.get(DEFAULT_SUITE)
    if default is None or default.state in (Served.FULLY, Served.UNCHECKED):
        return DEFAULT_SUITE
    return next((a.suite.name for a in availability if a.state == Served.FULLY), DEFAULT_SUITE)


def submit(request):
    from leaderboard.harness.suites import suite_list

    suites = suite_list()
    availability = suites_availability()
    form = SubmitForm(
        request.POST or None,
        user=request.user,
        suites=suites,
        availability={a.suite.name: a for a in availability},
        initial={"suite": _initial_suite(availability)},
    )
    if request.method == "POST" and form.is_valid():
        submission = _submit_form(request, form)
        if submission is not None:
            return redirect("runs:detail", run_id=submission.run.pk)
    return render(
        request,
        "leaderboard/submit.html",
        {
            "form": form,
            "model_roots": settings.MODEL_ROOTS,
            "availability": availability,
            "mirror": settings.DATASET_MIRROR,
        },
    )


def _submission_mirror_messages(request, form, run) -> None:
    """Say what a partial run leaves out, or that the suite was queued before any check of the mirror."""
    availability = form.availability.get(form.cleaned_data["suite"])
    if (run.spec or {}).get("missing_columns") and availability is not None:
        messages.warning(
            request,
            _(
                "Partial run: %(missing)s will not be run (the dataset mirror lacks their data); "
                "this run is never ranked."
            )
            % {"missing": availability.missing_text()},
        )
    elif availability is not None and availability.state == Served.UNCHECKED:
        messages.warning(
            request,
            _(
                "The dataset mirror has not been checked for this suite yet (a check has been "
                "started): if it lacks a dataset, the run fails with a message naming it."
            ),
        )


def _submit_form(request, form):
    """Register the folder and queue the run in one transaction (a refusal leaves nothing stored); None
    when the form got an error instead."""
    data = form.cleaned_data
    try:
        with transaction.atomic():
            model, model_created = model_get_or_register(
                storage_path=data["storage_path"],
                display_name=data["display_name"],
                owner=request.user,
                group=data["group"] or (request.user.groups.first() if data["private"] else None),
                precision=data["precision"],
                model_type=data["model_type"],
                weight_type=data["weight_type"],
                base_model_path=data["base_model_path"],
                use_chat_template=data["use_chat_template"],
                private=data["private"],
                revision_note=data["revision_note"],
            )
            submission = benchmark_submit(
                model=model,
                suite_name=data["suite"],
                submitted_by=request.user,
                limit=data["limit"],
                force=data["force"],
                submission_key=form.submission_key,
                batch_size=data["batch_size"],
                partial=data["partial"],
            )
    except BaseModelFolderError as exc:
        form.add_error("base_model_path", str(exc))
        return None
    except ModelFolderError as exc:
        form.add_error("storage_path", str(exc))
        return None
    except SuiteNotServed as exc:  # the mirror changed since the form was checked
        form.add_error("suite", str(exc))
        return None
    except SubmissionKeyReused as exc:
        form.token_renew()
        form.add_error(
            None,
            _("This form was already used to queue run #%(id)s. It is ready again: send it to queue another run.")
            % {"id": exc.run.pk},
        )
        return None
    asked = (request.user.pk, data["display_name"] or model.display_name, data["private"])
    if not model_created and asked != (model.owner_id, model.display_name, model.private):
        messages.info(
            request,
            _(
                "This folder revision is registered as “%(model)s”; the run uses that entry, whose "
                "name, owner and visibility stay as they are."
            )
            % {"model": model.display_name},
        )
    audit_record(
        request=request,
        action=AuditAction.MODEL_SUBMITTED,
        target=model,
        detail={"run": submission.run.pk, "suite": data["suite"], "new_run": submission.created},
    )
    _submission_mirror_messages(request, form, submission.run)
    if submission.created:
        messages.success(
            request, _("Queued run #%(id)s for %(model)s.") % {"id": submission.run.pk, "model": model.display_name}
        )
    else:
        messages.info(
            request,
            _(
                "An identical run (#%(id)s, %(status)s) already exists for this revision, suite and settings; "
                "tick “Run again” to force a new one."
            )
            % {"id": submission.run.pk, "status": submission.run.get_status_display()},
        )
    if run_awaits_broker(run=submission.run):
        messages.warning(request, BROKER_DOWN_MESSAGE)
    return submission
