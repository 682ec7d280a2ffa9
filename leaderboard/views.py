from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leaderboard.selectors import leaderboard_rows

DEFAULT_SUITE = "openllm_v1"


@require_GET
def leaderboard_index(request):
    from leaderboard.harness.suites import suite_get

    suite = suite_get(request.GET.get("suite", DEFAULT_SUITE))
    columns = suite.score_columns()
    rows = leaderboard_rows(user=request.user, suite_name=suite.name, columns=columns)
    return render(request, "leaderboard/index.html", {"suite": suite, "columns": columns, "rows": rows})


@require_GET
def about(request):
    from leaderboard.harness.suites import suite_get

    return render(request, "leaderboard/about.html", {"suite": suite_get(DEFAULT_SUITE), "mirror": settings.DATASET_MIRROR})


@login_not_required
@require_GET
def healthz(request):
    """For load balancers and systemd: the web process is up and the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
