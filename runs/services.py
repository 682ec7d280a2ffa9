"""Every write to a run's status happens here, as one conditional UPDATE per transition.

Why conditional updates: a run can be touched at the same moment by a worker (claim, finish),
a person (cancel) and the reaper. ``filter(pk=..., status=<expected>).update(...)`` lets the
database decide who wins; the loser sees 0 rows updated and backs off. Nothing here reads a
status and then writes it in Python.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from runs.choices import ACTIVE_STATUSES, RunKind, RunStatus
from runs.executors import EvaluationFailed, RunCancelled, RunContext, RunOutcome, get_executor
from runs.models import EvaluationRun, RunEvent, Score

logger = logging.getLogger(__name__)

LOG_LIMIT_CHARS = 200_000


def spec_hash_compute(*, spec: dict[str, Any]) -> str:
    """A stable hash of a spec: same spec, same hash, whatever the key order."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _event_record(*, run_id: int, from_status: str, to_status: str, message: str = "") -> None:
    RunEvent.objects.create(run_id=run_id, from_status=from_status, to_status=to_status, at=timezone.now(), message=message)


def _transition(*, run_id: int, from_statuses: tuple[str, ...], to_status: str, message: str = "", **fields: Any) -> bool:
    """Move a run to ``to_status`` only if it is in one of ``from_statuses``; record the event."""
    with transaction.atomic():
        current = EvaluationRun.objects.filter(pk=run_id, status__in=from_statuses).values_list("status", flat=True).first()
        if current is None:
            return False
        updated = EvaluationRun.objects.filter(pk=run_id, status=current).update(status=to_status, **fields)
        if updated != 1:
            return False
        _event_record(run_id=run_id, from_status=current, to_status=to_status, message=message)
    return True


def run_create(
    *,
    kind: str,
    spec: dict[str, Any],
    model=None,
    submitted_by=None,
    is_partial: bool = False,
    spec_hash: str | None = None,
    enqueue: bool = True,
    queue: str | None = None,
    dedupe_by_spec: bool = False,
    submission_key: str | None = None,
) -> EvaluationRun:
    """Save a QUEUED run and send it to its queue once the transaction commits.

    ``enqueue=False`` is for callers that execute the run themselves (``manage.py evaluate``); ``queue``
    overrides the kind's queue from settings.RUN_QUEUES. ``dedupe_by_spec`` and ``submission_key`` make
    the database refuse a duplicate (IntegrityError); ``run_create_or_existing`` turns that into the
    existing run.
    """
    queue = queue or settings.RUN_QUEUES.get(kind, "cpu")
    run = EvaluationRun.objects.create(
        kind=kind,
        model=model,
        spec=spec,
        spec_hash=spec_hash or spec_hash_compute(spec=spec),
        is_partial=is_partial,
        dedupe_by_spec=dedupe_by_spec,
        submission_key=submission_key or None,
        queue=queue,
        status=RunStatus.QUEUED,
        queued_at=timezone.now(),
        submitted_by=submitted_by,
    )
    _event_record(run_id=run.pk, from_status="", to_status=RunStatus.QUEUED, message="submitted")
    if enqueue:
        # After commit: a worker must never receive an id whose row it cannot see yet.
        transaction.on_commit(lambda: run_enqueue(run=run))
    return run


def run_existing_find(*, spec_hash: str = "", dedupe_by_spec: bool = False,
                      submission_key: str | None = None) -> EvaluationRun | None:
    """The run a duplicate submission should get back: the same submission key, or the live run of the spec."""
    if submission_key:
        run = EvaluationRun.objects.filter(submission_key=submission_key).first()
        if run is not None:
            return run
    if dedupe_by_spec and spec_hash:
        # Any live run of the spec answers (a forced re-run or an import too); the constraint covers
        # only the deduplicated ones, so prefer those.
        return (EvaluationRun.objects.filter(spec_hash=spec_hash, status__in=(RunStatus.SUCCEEDED, *ACTIVE_STATUSES))
                .order_by("-dedupe_by_spec", "-queued_at").first())
    return None


def run_create_or_existing(*, spec: dict[str, Any], spec_hash: str | None = None, dedupe_by_spec: bool = False,
                           submission_key: str | None = None, **fields: Any) -> tuple[EvaluationRun, bool]:
    """``run_create``, or the existing run when this is a duplicate: (run, created).

    The look-up first is only a shortcut; the database constraints decide. Two concurrent identical
    submissions can both find nothing, and then exactly one insert wins: the loser's IntegrityError
    (inside a savepoint, so the caller's transaction stays usable) sends it to the winner's row, which
    is committed by then (PostgreSQL makes the second insert wait for the first transaction).
    """
    spec_hash = spec_hash or spec_hash_compute(spec=spec)
    keys = {"spec_hash": spec_hash, "dedupe_by_spec": dedupe_by_spec, "submission_key": submission_key}
    existing = run_existing_find(**keys)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            run = run_create(spec=spec, spec_hash=spec_hash, dedupe_by_spec=dedupe_by_spec,
                             submission_key=submission_key, **fields)
    except IntegrityError:
        existing = run_existing_find(**keys)
        if existing is None:
            raise
        return existing, False
    return run, True


def run_enqueue(*, run: EvaluationRun) -> None:
    from runs.tasks import execute_run as execute_run_task

    execute_run_task.apply_async(args=[run.pk], queue=run.queue)


def run_claim(*, run_id: int, worker_host: str | None = None) -> EvaluationRun | None:
    """QUEUED -> RUNNING. Returns None when another delivery, a cancel or the reaper got there first."""
    now = timezone.now()
    claimed = _transition(
        run_id=run_id,
        from_statuses=(RunStatus.QUEUED,),
        to_status=RunStatus.RUNNING,
        message=f"claimed by {worker_host or socket.gethostname()}",
        started_at=now,
        heartbeat_at=now,
        worker_host=worker_host or socket.gethostname(),
        attempts=F("attempts") + 1,
        error_message="",
    )
    return EvaluationRun.objects.get(pk=run_id) if claimed else None


def run_heartbeat(*, run_id: int) -> bool:
    """Tell the reaper this run's worker is alive. False once the run is no longer RUNNING."""
    return EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now()) == 1


def run_progress(*, run_id: int, done: int, total: int, note: str = "") -> None:
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        progress_done=done, progress_total=total, progress_note=note[:255], heartbeat_at=timezone.now()
    )


def run_log_append(*, run_id: int, text: str) -> None:
    run = EvaluationRun.objects.only("log").get(pk=run_id)
    log = (run.log + text.rstrip("\n") + "\n")[-LOG_LIMIT_CHARS:]
    EvaluationRun.objects.filter(pk=run_id).update(log=log)


def run_finish(*, run_id: int, status: str, error_message: str = "", outcome: RunOutcome | None = None, log: str = "") -> bool:
    """RUNNING -> a terminal status, storing the outcome in the same transaction.

    If the run was cancelled (or reaped) meanwhile, nothing is written: the scores of a
    cancelled run must not appear, and the cancel must not be overwritten.
    """
    assert status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ERRORED)
    with transaction.atomic():
        fields: dict[str, Any] = {"finished_at": timezone.now(), "error_message": error_message}
        if outcome is not None:
            fields.update(
                details=outcome.details,
                library_versions=outcome.library_versions,
                samples_path=outcome.samples_path,
            )
        if not _transition(run_id=run_id, from_statuses=(RunStatus.RUNNING,), to_status=status,
                           message=error_message[:500], **fields):
            return False
        if log:
            run_log_append(run_id=run_id, text=log)
        if outcome is not None and status == RunStatus.SUCCEEDED:
            scores_store(run_id=run_id, outcome=outcome)
        _finish_hooks_call(run_id=run_id)
    return True


def _finish_hooks_call(*, run_id: int) -> None:
    from django.utils.module_loading import import_string

    kind = EvaluationRun.objects.filter(pk=run_id).values_list("kind", flat=True).first()
    for path in getattr(settings, "RUN_FINISH_HOOKS", {}).get(kind, ()):
        import_string(path)(run_id=run_id)


def scores_store(*, run_id: int, outcome: RunOutcome) -> None:
    """One row per (run, task, metric, filter); storing the same outcome twice changes nothing."""
    for row in outcome.scores:
        Score.objects.update_or_create(
            run_id=run_id,
            task=row.task,
            metric=row.metric,
            filter=row.filter,
            defaults={
                "value": row.value,
                "stderr": row.stderr,
                "n_shot": row.n_shot,
                "sample_count": row.sample_count,
                "task_version": row.task_version,
                "higher_is_better": row.higher_is_better,
            },
        )


def run_cancel(*, run_id: int, by: str = "") -> bool:
    """QUEUED or RUNNING -> CANCELLED. A running worker notices at its next heartbeat and stops."""
    return _transition(
        run_id=run_id,
        from_statuses=ACTIVE_STATUSES,
        to_status=RunStatus.CANCELLED,
        message=f"cancelled by {by}" if by else "cancelled",
        finished_at=timezone.now(),
    )


def runs_reap(*, now=None) -> dict[str, list[int]]:
    """Recover runs whose worker died, and re-send queued runs whose message may be lost.

    A RUNNING run with a stale heartbeat goes back to QUEUED (and is re-sent) while it has
    attempts left, else to ERRORED. Re-sending a QUEUED run is harmless: the claim lets only
    one delivery run it.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.RUN_STALE_AFTER_S)
    requeue_before = now - timedelta(seconds=settings.RUN_REQUEUE_AFTER_S)
    report: dict[str, list[int]] = {"requeued": [], "errored": [], "resent": []}

    stale = EvaluationRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
    for run in stale.only("pk", "attempts", "worker_host", "heartbeat_at"):
        lost = f"worker {run.worker_host or '?'} stopped sending heartbeats at {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        if run.attempts < settings.RUN_MAX_ATTEMPTS:
            if _transition(run_id=run.pk, from_statuses=(RunStatus.RUNNING,), to_status=RunStatus.QUEUED,
                           message=f"{lost}; re-queued", queued_at=now, heartbeat_at=None, worker_host=""):
                report["requeued"].append(run.pk)
                transaction.on_commit(lambda run=run: run_enqueue(run=EvaluationRun.objects.get(pk=run.pk)))
        elif _transition(run_id=run.pk, from_statuses=(RunStatus.RUNNING,), to_status=RunStatus.ERRORED,
                         message=lost, finished_at=now,
                         error_message=f"The worker died: {lost}, after {run.attempts} attempts."):
            report["errored"].append(run.pk)

    for run in EvaluationRun.objects.filter(status=RunStatus.QUEUED, queued_at__lt=requeue_before):
        run_enqueue(run=run)
        report["resent"].append(run.pk)
    return report


class _Heartbeat(threading.Thread):
    """Beats every RUN_HEARTBEAT_S while the executor works; sets ``cancelled`` once the row left RUNNING."""

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id = run_id
        self.cancelled = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self._stop_event.wait(settings.RUN_HEARTBEAT_S):
                if not run_heartbeat(run_id=self.run_id):
                    self.cancelled.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self._stop_event.set()


def run_execute(*, run_id: int) -> str | None:
    """Claim a run, execute it, and record how it ended. What the Celery task and `evaluate` call.

    Returns the final status, or None when this delivery had nothing to do.
    """
    run = run_claim(run_id=run_id)
    if run is None:
        logger.info("run %s: not claimed (already taken, finished or cancelled)", run_id)
        return None

    heartbeat = _Heartbeat(run_id)
    context = RunContext(
        run_id=run_id,
        artifacts_dir=Path(settings.ARTIFACTS_DIR) / "runs" / str(run_id),
        cancel_event=heartbeat.cancelled,
        progress_callback=lambda done, total, note: run_progress(run_id=run_id, done=done, total=total, note=note),
        log_callback=lambda line: run_log_append(run_id=run_id, text=line),
    )
    context.artifacts_dir.mkdir(parents=True, exist_ok=True)
    heartbeat.start()
    try:
        outcome = get_executor(run.kind)(run, context)
    except RunCancelled:
        # The cancel already wrote the final status; there is nothing to add.
        logger.info("run %s: stopped after cancel", run_id)
        return RunStatus.CANCELLED
    except EvaluationFailed as exc:
        run_finish(run_id=run_id, status=RunStatus.FAILED, error_message=str(exc))
        return RunStatus.FAILED
    except Exception as exc:
        run_finish(run_id=run_id, status=RunStatus.ERRORED,
                   error_message=f"{type(exc).__name__}: {exc}", log=traceback.format_exc())
        logger.exception("run %s errored", run_id)
        return RunStatus.ERRORED
    finally:
        heartbeat.stop()

    if run_finish(run_id=run_id, status=RunStatus.SUCCEEDED, outcome=outcome):
        return RunStatus.SUCCEEDED
    return EvaluationRun.objects.values_list("status", flat=True).get(pk=run_id)


__all__ = [
    "RunKind",
    "run_cancel",
    "run_claim",
    "run_create",
    "run_create_or_existing",
    "run_existing_find",
    "run_enqueue",
    "run_execute",
    "run_finish",
    "run_heartbeat",
    "run_progress",
    "runs_reap",
    "scores_store",
    "spec_hash_compute",
]
