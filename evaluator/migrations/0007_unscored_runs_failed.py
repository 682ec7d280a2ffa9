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
# The same as runs.messages codes it, so that each reader sees it in their language.
CODED = {"code": "evaluator.all_unscored_migrated", "params": {}}


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
        EvaluationRun.objects.filter(pk=run.pk).update(status="failed", error_message=MESSAGE,
                                                          error_message_i18n=CODED)
        Score.objects.filter(Q(run=run) & Q(task="evaluator")).delete()
        RunEvent.objects.create(run=run, from_status="succeeded", to_status="failed", at=now, message=MESSAGE,
                                message_i18n=CODED)


class Migration(migrations.Migration):
    dependencies = [
        ("evaluator", "0006_stored_messages_i18n"),
        ("runs", "0003_stored_messages_i18n"),
    ]

    operations = [migrations.RunPython(unscored_runs_fail, migrations.RunPython.noop)]
