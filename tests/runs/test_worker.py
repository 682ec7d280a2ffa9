"""A real Celery worker process takes runs from the configured broker (Redis in CI)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from runs import services
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, Score

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(__file__).resolve().parents[2]


def _purge_queues():
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("gpu", "cpu"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that was never declared has nothing to purge
                pass


class Worker:
    def __init__(self, name: str):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
            "DB_NAME": connection.settings_dict["NAME"],
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "RUN_HEARTBEAT_S": "1",
            "ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
        }
        self.log_path = Path(settings.ARTIFACTS_DIR) / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("w")
        # Its own session, so the test can kill the whole worker (parent and pool child) at once.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "gpu,cpu", "--concurrency", "1",
             "--prefetch-multiplier", "1", "-n", f"{name}@%h", "--loglevel", "INFO"],
            cwd=BASE_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self, sig=signal.SIGKILL):
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def start_worker():
    _purge_queues()
    started = []

    def start(name="test-worker"):
        worker = Worker(name)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill(signal.SIGTERM)


def _wait_for(predicate, timeout, what, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    log = worker.output()[-3000:] if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def _status(run_id):
    return EvaluationRun.objects.values_list("status", flat=True).get(pk=run_id)


def test_run_goes_through_the_broker_to_a_worker_process(start_worker):
    worker = start_worker()
    run = services.run_create(kind=RunKind.BENCHMARK, spec={"hold_s": 0})
    _wait_for(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 90, "the worker to finish the run", worker)
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
    _wait_for(marker.exists, 90, "the first worker to start the run", first)
    first.kill(signal.SIGKILL)
    assert _status(run.pk) == RunStatus.RUNNING, "a killed worker leaves its run RUNNING"

    settings.RUN_STALE_AFTER_S = 1
    time.sleep(2.5)
    report = services.runs_reap()
    assert report["requeued"] == [run.pk]

    second = start_worker("rescuer")
    _wait_for(lambda: _status(run.pk) == RunStatus.SUCCEEDED, 90, "the second worker to finish the run", second)
    run.refresh_from_db()
    assert run.attempts == 2
    transitions = [(e.from_status, e.to_status) for e in run.events.all()]
    assert transitions == [("", "queued"), ("queued", "running"), ("running", "queued"),
                           ("queued", "running"), ("running", "succeeded")]
