"""The Celery app, configured from Django settings (CELERY_* names), as cookiecutter-django does."""

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("leaderboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Each worker reports its queues and what it can run (runs.WorkerNode). These signals fire only in a
# worker's main process, so the web process and beat never report.
@worker_ready.connect
def _worker_ready(sender=None, **kwargs):
    from runs.workers import on_worker_ready

    on_worker_ready(sender=sender, **kwargs)


@worker_shutdown.connect
def _worker_shutdown(sender=None, **kwargs):
    from runs.workers import on_worker_shutdown

    on_worker_shutdown(sender=sender, **kwargs)
