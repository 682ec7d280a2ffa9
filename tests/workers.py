"""Start real Celery worker processes against the test database and the configured broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[1]


def queues_purge() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("gpu", "cpu"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # a queue that was never declared has nothing to purge
                pass


class WorkerProcess:
    """One `celery worker` on both queues, in its own session so a test can kill it whole."""

    def __init__(self, name: str, *, settings_module: str = "config.settings", extra_env: dict[str, str] | None = None):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DB_NAME": connection.settings_dict["NAME"],
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "RUN_HEARTBEAT_S": "1",
            "ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR),
            "MODEL_ROOTS": os.pathsep.join(str(root) for root in settings.MODEL_ROOTS),
            "DATASET_MIRROR": str(settings.DATASET_MIRROR),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.log_path = Path(settings.ARTIFACTS_DIR) / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                "gpu,cpu",
                "--concurrency",
                "1",
                "--prefetch-multiplier",
                "1",
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()


@contextmanager
def workers_started(settings_module: str = "tests.worker_settings"):
    """A ``start(name)`` that starts a worker process; every worker it started is stopped on the way out."""
    started: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        worker = WorkerProcess(name, settings_module=settings_module)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill(signal.SIGTERM)


def wait_for(predicate, timeout: float, what: str, worker: WorkerProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    log = worker.output()[-4000:] if worker else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")
