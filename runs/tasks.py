"""Thin Celery tasks: load by id, call a service. The run row, not Celery, holds the outcome."""

from celery import shared_task
from celery.exceptions import Reject
from django.db import InterfaceError, OperationalError


@shared_task(name="runs.execute_run", acks_late=True, ignore_result=True)
def execute_run(run_id: int) -> None:
    from runs.execution import run_execute  # imported here: keeps worker start-up free of cycles

    try:
        run_execute(run_id=run_id)
    except (OperationalError, InterfaceError) as exc:
        # The database stayed unreachable through the claim (run_execute retried it): acknowledging would
        # drop the only message of a run that is still queued, so it goes back to the queue.
        raise Reject(f"database unreachable: {exc}", requeue=True) from exc


@shared_task(name="runs.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> None:
    from runs.services import runs_reap

    runs_reap()
