"""Migration 0008 gives existing ranking entries the Average's stderr from the column stderrs they hold."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("leaderboard", "0007_registeredmodel_model_one_live_per_revision")]


def _migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_entries_get_the_average_stderr():
    apps = _migrate(BEFORE)
    try:
        RegisteredModel = apps.get_model("leaderboard", "RegisteredModel")
        LeaderboardEntry = apps.get_model("leaderboard", "LeaderboardEntry")
        EvaluationRun = apps.get_model("runs", "EvaluationRun")
        now = timezone.now()
        entries = {}
        for name, stderrs in (("whole", {"a": 0.03, "b": 0.04}), ("missing", {"a": 0.03, "b": None})):
            model = RegisteredModel.objects.create(display_name=name, storage_path=f"/models/{name}", revision=name)
            run = EvaluationRun.objects.create(
                kind="benchmark", model=model, spec={"suite": "s"}, status="succeeded", queued_at=now, finished_at=now
            )
            entries[name] = LeaderboardEntry.objects.create(
                model=model, suite="s", run=run, average=0.5, scores={"a": 0.4, "b": 0.6}, stderrs=stderrs
            ).pk
    finally:
        apps = _migrate()
    LeaderboardEntry = apps.get_model("leaderboard", "LeaderboardEntry")
    # sqrt(0.03^2 + 0.04^2) / 2 = 0.05 / 2 = 0.025
    assert LeaderboardEntry.objects.get(pk=entries["whole"]).average_stderr == pytest.approx(0.025, rel=1e-12)
    assert LeaderboardEntry.objects.get(pk=entries["missing"]).average_stderr is None
    assert math.isclose(0.025, math.sqrt(0.03**2 + 0.04**2) / 2)
