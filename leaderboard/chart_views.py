from django.http import Http404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from config.htmx import render_page_or_fragment
from config.params import choice_param, int_list_param
from leaderboard.charts import history_figure
from leaderboard.harness.suites import DEFAULT_SUITE
from leaderboard.history import AVERAGE, score_history


@require_GET
def metrics_through_time(request):
    """The "Metrics through time" tab; an htmx request (a new metric or model pick) gets only the chart."""
    from leaderboard.harness.suites import SuiteError, suite_get

    try:
        suite = suite_get(request.GET.get("suite", DEFAULT_SUITE))
    except SuiteError:
        raise Http404(_("No such suite.")) from None
    metrics = [(AVERAGE, _("Average")), *((c.key, c.label) for c in suite.columns)]
    metric = choice_param(request.GET, "metric", dict(metrics), AVERAGE)
    # No ``models`` in the URL: the top families. The form always sends an empty ``models``, so unticking
    # every box draws none instead of falling back to the top ones.
    picked = int_list_param(request.GET, "models") if "models" in request.GET else None
    history = score_history(user=request.user, suite=suite, metric_key=metric, model_ids=picked)
    context = {
        "suite": suite,
        "metrics": metrics,
        "metric": metric,
        "history": history,
        "shown_keys": {family.key for family in history.shown},
        "figure_json": history_figure(history, metric_label=dict(metrics)[metric]),
    }
    return render_page_or_fragment(
        request,
        page="leaderboard/metrics_through_time.html",
        fragment="leaderboard/_metrics_chart.html",
        context=context,
    )
