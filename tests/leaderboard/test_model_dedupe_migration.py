"""Migration 0006 merges the duplicate model rows concurrent submissions made, losing no run or score."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("leaderboard", "0005_owned_fields_verbose_names"), ("runs", "0002_run_dedupe_sent_at_worker_nodes")]


def _migrate(targets=None):
    """Migrate to ``targets`` (default: every app's latest) and return the models as they are there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_duplicates_are_merged_without_losing_runs():
    apps = _migrate(BEFORE)
    try:
        User = apps.get_model("auth", "User")
        Group = apps.get_model("auth", "Group")
        RegisteredModel = apps.get_model("leaderboard", "RegisteredModel")
        LeaderboardEntry = apps.get_model("leaderboard", "LeaderboardEntry")
        EvaluationRun = apps.get_model("runs", "EvaluationRun")
        Score = apps.get_model("runs", "Score")
        owner, team = User.objects.create(username="alice"), Group.objects.create(name="team-b")
        now = timezone.now()
        key = {
            "storage_path": "/models/x",
            "revision": "abc",
            "precision": "float32",
            "weight_type": "original",
            "base_model_path": "",
        }
        oldest = RegisteredModel.objects.create(
            display_name="x", submitted_at=now - timezone.timedelta(hours=2), owner=owner, **key
        )
        public_dup = RegisteredModel.objects.create(display_name="x again", submitted_at=now, **key)
        private_dup = RegisteredModel.objects.create(
            display_name="x private", submitted_at=now, private=True, group=team, **key
        )
        other = RegisteredModel.objects.create(display_name="y", **{**key, "revision": "def"})
        runs = {}
        for name, model in (("oldest", oldest), ("public", public_dup), ("private", private_dup), ("other", other)):
            runs[name] = EvaluationRun.objects.create(
                kind="benchmark", model=model, spec={"suite": "s"}, status="succeeded", queued_at=now, finished_at=now
            )
            Score.objects.create(run=runs[name], task="t", metric="acc", value=0.5)
            LeaderboardEntry.objects.create(model=model, suite="s", run=runs[name], average=0.5)
    finally:
        apps = _migrate()

    RegisteredModel = apps.get_model("leaderboard", "RegisteredModel")
    EvaluationRun = apps.get_model("runs", "EvaluationRun")
    LeaderboardEntry = apps.get_model("leaderboard", "LeaderboardEntry")
    live = RegisteredModel.objects.filter(deleted=False)
    assert sorted(live.values_list("pk", flat=True)) == sorted([oldest.pk, other.pk])
    assert set(RegisteredModel.objects.filter(deleted=True).values_list("pk", flat=True)) == {
        public_dup.pk,
        private_dup.pk,
    }
    moved = dict(EvaluationRun.objects.values_list("pk", "model_id"))
    # The public duplicate's run joins the kept row; the private one's stays private, on its deleted row.
    assert moved == {
        runs["oldest"].pk: oldest.pk,
        runs["public"].pk: oldest.pk,
        runs["private"].pk: private_dup.pk,
        runs["other"].pk: other.pk,
    }
    assert apps.get_model("runs", "Score").objects.count() == 4
    assert set(LeaderboardEntry.objects.values_list("model_id", flat=True)) == {oldest.pk, other.pk}
    # The kept row is as it was.
    kept = RegisteredModel.objects.get(pk=oldest.pk)
    assert (kept.display_name, kept.owner_id, kept.private) == ("x", owner.pk, False)
