"""Evaluator runs that ended "succeeded" with every score unscored become "failed", as new ones do.

Since this change the executor fails such a run (a run with no number is no success, as with a judge that
answers nothing); runs stored before it are brought in line so that the run page, the runs list and the
queue tell one story. Their per-sample rows (and reasons) stay; their empty Score rows go, as a failed run
has none; a RunEvent records the change.
"""

from django.db import migrations
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

MESSAGE = "No score at all: every sample score of this run is unscored, so it has no result (marked failed by migration)."


def unscored_runs_fail(apps, schema_editor):
    EvaluationRun = apps.get_model("runs", "EvaluationRun")
    RunEvent = apps.get_model("runs", "RunEvent")
    Score = apps.get_model("runs", "Score")
    MetricScore = apps.get_model("evaluator", "MetricScore")
    scores = MetricScore.objects.filter(sample__run=OuterRef("pk"))
    scored = scores.filter(value__isnull=False, unscored_reason="")
    runs = EvaluationRun.objects.filter(kind="evaluator", status="succeeded").filter(
        Exists(scores), ~Exists(scored))
    now = timezone.now()
    for run in runs:
        EvaluationRun.objects.filter(pk=run.pk).update(status="failed", error_message=MESSAGE)
        Score.objects.filter(Q(run=run) & Q(task="evaluator")).delete()
        RunEvent.objects.create(run=run, from_status="succeeded", to_status="failed", at=now, message=MESSAGE)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluator", "0005_remove_llmendpoint_api_key_secret"),
        ("runs", "0002_run_dedupe_sent_at_worker_nodes"),
    ]

    operations = [migrations.RunPython(unscored_runs_fail, migrations.RunPython.noop)]
