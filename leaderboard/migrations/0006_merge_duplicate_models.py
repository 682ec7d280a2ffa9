"""Merge duplicate live rows of one folder revision, before 0007 makes them impossible.

Concurrent submissions could register a folder twice (same path, revision, precision, weight type and
base). The oldest row of each such set is kept. A duplicate's runs move to it when that changes nobody's
view of them (both rows public, or both private to the same owner and group); otherwise they stay on
the duplicate, so a private run never becomes visible to others. Each duplicate is then marked deleted
(not removed: its runs and scores stay), and its ranking rows, which are derived, are dropped:
``manage.py leaderboard_rebuild`` (run by deploy/upgrade.sh) recomputes them.
"""

from django.db import migrations
from django.db.models import Count

KEY = ("storage_path", "revision", "precision", "weight_type", "base_model_path")


def _same_audience(a, b) -> bool:
    if not a.private and not b.private:
        return True
    return (a.private, a.owner_id, a.group_id) == (b.private, b.owner_id, b.group_id)


def merge_duplicates(apps, schema_editor):
    RegisteredModel = apps.get_model("leaderboard", "RegisteredModel")
    LeaderboardEntry = apps.get_model("leaderboard", "LeaderboardEntry")
    EvaluationRun = apps.get_model("runs", "EvaluationRun")
    live = RegisteredModel.objects.filter(deleted=False)
    for key in live.values(*KEY).annotate(rows=Count("pk")).filter(rows__gt=1).order_by():
        keeper, *duplicates = live.filter(**{field: key[field] for field in KEY}).order_by("submitted_at", "pk")
        for duplicate in duplicates:
            LeaderboardEntry.objects.filter(model=duplicate).delete()
            if _same_audience(keeper, duplicate):
                EvaluationRun.objects.filter(model=duplicate).update(model=keeper)
            RegisteredModel.objects.filter(pk=duplicate.pk).update(deleted=True)


class Migration(migrations.Migration):

    dependencies = [
        ("leaderboard", "0005_owned_fields_verbose_names"),
        ("runs", "0002_run_dedupe_sent_at_worker_nodes"),
    ]

    operations = [
        migrations.RunPython(merge_duplicates, migrations.RunPython.noop, elidable=True),
    ]
