"""Thin Celery tasks: load by id, call a service. The run row, not Celery, holds the outcome."""

from celery import shared_task


@shared_task(name="runs.execute_run", acks_late=True, ignore_result=True)
def execute_run(run_id: int) -> None:
    from runs.services import run_execute  # imported here: keeps worker start-up free of cycles

    run_execute(run_id=run_id)


@shared_task(name="runs.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> None:
    from runs.services import runs_reap

    runs_reap()
