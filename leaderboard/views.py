from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from leaderboard.forms import SubmitForm
from leaderboard.mirror_reports import mirror_report_get
from leaderboard.model_inspection import ModelFolderError
from leaderboard.selectors import leaderboard_rows
from leaderboard.services import benchmark_submit, model_register
from leaderboard.tasks import refresh_mirror_reports as refresh_mirror_reports_task

DEFAULT_SUITE = "openllm_v1"


@require_GET
def leaderboard_index(request):
    from leaderboard.harness.suites import suite_get

    suite = suite_get(request.GET.get("suite", DEFAULT_SUITE))
    columns = list(suite.columns)
    rows = leaderboard_rows(user=request.user, suite_name=suite.name, columns=columns)
    return render(request, "leaderboard/index.html", {"suite": suite, "columns": columns, "rows": rows})


def about(request):
    from leaderboard.harness.suites import suite_get, suite_list

    if request.method == "POST" and request.user.is_staff:
        refresh_mirror_reports_task.apply_async(queue="cpu")
        messages.info(request, _("The mirror is being checked on a worker; reload this page in a minute."))
        return redirect("leaderboard:about")
    reports = [(suite, mirror_report_get(suite_name=suite.name)) for suite in suite_list()]
    return render(request, "leaderboard/about.html", {
        "suite": suite_get(DEFAULT_SUITE), "mirror": settings.DATASET_MIRROR, "reports": reports,
        "lm_eval_version": _installed_version("lm_eval"),
    })


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


def submit(request):
    from leaderboard.harness.suites import suite_list

    suites = suite_list()
    form = SubmitForm(request.POST or None, user=request.user, suites=suites, initial={"suite": DEFAULT_SUITE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            model = model_register(
                storage_path=data["storage_path"], display_name=data["display_name"], owner=request.user,
                group=data["group"] or (request.user.groups.first() if data["private"] else None),
                precision=data["precision"], model_type=data["model_type"], weight_type=data["weight_type"],
                base_model_path=data["base_model_path"], use_chat_template=data["use_chat_template"],
                private=data["private"], revision_note=data["revision_note"],
            )
        except ModelFolderError as exc:
            form.add_error("storage_path", str(exc))
        else:
            submission = benchmark_submit(model=model, suite_name=data["suite"], submitted_by=request.user,
                                          limit=data["limit"], force=data["force"])
            if submission.created:
                messages.success(request, _("Queued run #%(id)s for %(model)s.") % {"id": submission.run.pk, "model": model.display_name})
            else:
                messages.info(request, _("An identical run (#%(id)s, %(status)s) already exists for this revision, suite and settings; "
                                         "tick “Run again” to force a new one.") % {"id": submission.run.pk, "status": submission.run.get_status_display()})
            return redirect("runs:detail", run_id=submission.run.pk)
    return render(request, "leaderboard/submit.html", {"form": form, "model_roots": settings.MODEL_ROOTS})
