"""Two runs of one model finishing at once on two workers (found by benchmarks/load_submissions.py): the
ranking row must end on the newer run, whichever transaction commits first."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from leaderboard.models import LeaderboardEntry
from runs.choices import RunStatus
from runs.executors import RunOutcome, ScoreRow
from runs.services import run_finish
from tests.factories import registered_model_create, run_create_row

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Per run id: what the hooks around the ranking hook do (wait for / set events), set by the test.
_BEFORE: dict[int, threading.Event] = {}
_AFTER: dict[int, tuple[threading.Event, threading.Event]] = {}


def before_ranking(*, run_id: int) -> None:
    if run_id in _BEFORE:
        assert _BEFORE[run_id].wait(60)


def after_ranking(*, run_id: int) -> None:
    if run_id in _AFTER:
        written, release = _AFTER[run_id]
        written.set()
        assert release.wait(60)  # the transaction stays open (the ranking row locked) until released


def _other_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def test_the_ranking_row_ends_on_the_newest_run_when_two_finish_at_once(settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are tested on PostgreSQL (the production database)")
    settings.RUN_FINISH_HOOKS = {
        "benchmark": [
            f"{__name__}.before_ranking",
            "leaderboard.ranking.leaderboard_entry_refresh_for_run",
            f"{__name__}.after_ranking",
        ]
    }
    model = registered_model_create()
    older, newer = (run_create_row(model=model, status=RunStatus.RUNNING) for _ in range(2))
    t2_wrote, release_t2, t1_go = threading.Event(), threading.Event(), threading.Event()
    _BEFORE[older.pk] = t1_go
    _AFTER[newer.pk] = (t2_wrote, release_t2)
    errors = []

    def finish(run, value):
        try:
            outcome = RunOutcome(scores=[ScoreRow(task="arc_challenge", metric="acc_norm", value=value)])
            assert run_finish(run_id=run.pk, status=RunStatus.SUCCEEDED, outcome=outcome)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        # The older run's worker stores its end first (the earlier finished_at), then is slow to rank it;
        # the newer one ranks its run meanwhile and holds its transaction open until the older one waits.
        first = threading.Thread(target=finish, args=(older, 0.25))
        first.start()
        time.sleep(0.2)
        second = threading.Thread(target=finish, args=(newer, 0.5))
        second.start()
        assert t2_wrote.wait(60)
        t1_go.set()
        deadline = time.monotonic() + 30
        while not _other_backend_waits_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.05)
        release_t2.set()
        first.join(60)
        second.join(60)
    finally:
        t1_go.set()
        release_t2.set()
        _BEFORE.clear()
        _AFTER.clear()
    assert not errors
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.finished_at < newer.finished_at
    entry = LeaderboardEntry.objects.get(model=model, suite="openllm_v1")
    assert entry.run_id == newer.pk
    assert entry.scores["arc"] == 0.5
