"""A real Celery worker process takes runs from the configured broker (Redis in CI)."""

import os
import signal
import time

import pytest
from django.conf import settings

from runs import services
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score
from tests.workers import queues_purge, wait_for, workers_started

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def start_worker():
    queues_purge()
    with workers_started() as start:
        yield lambda name="test-worker": start(name)


def _status(run_id):
    return EvaluationRun.objects.values_list("status", flat=True).get(pk=run_id)


def test_run_goes_through_the_broker_to_a_worker_process(start_worker):
    worker = start_worker()
    run = services.run_create(kind=RunKind.BENCHMARK, spec={"hold_s": 0})
    wait_for(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 90, "the worker to finish the run", worker)
    run.refresh_from_db()
    assert run.worker_host
    assert run.details["pid"] != os.getpid(), "the run must have executed in the worker process"
    assert Score.objects.filter(run=run, task="arc_challenge").exists()


def test_broker_is_redis_in_ci():
    if os.getenv("TEST_SERVICES") != "1":
        pytest.skip("only in CI / TEST_SERVICES=1")
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def test_reaper_recovers_a_run_whose_worker_was_killed(start_worker, settings, tmp_path):
    marker = tmp_path / "started"
    first = start_worker("doomed")
    run = services.run_create(kind=RunKind.BENCHMARK, spec={"hold_first_attempt_s": 60, "started_marker": str(marker)})
    wait_for(marker.exists, 90, "the first worker to start the run", first)
    first.kill(signal.SIGKILL)
    assert _status(run.pk) == RunStatus.RUNNING, "a killed worker leaves its run RUNNING"

    settings.RUN_STALE_AFTER_S = 1
    time.sleep(2.5)
    report = services.runs_reap()
    assert report["requeued"] == [run.pk]

    second = start_worker("rescuer")
    wait_for(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 90, "the second worker to finish the run", second)
    run.refresh_from_db()
    assert run.attempts == 2
    transitions = [(e.from_status, e.to_status) for e in run.events.all()]
    assert transitions == [
        ("", "queued"),
        ("queued", "running"),
        ("running", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
