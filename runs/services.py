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
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from runs.choices import ACTIVE_STATUSES, RunStatus
from runs.executors import RunOutcome
from runs.messages import Message, message_split
from runs.models import EvaluationRun, RunEvent, Score

logger = logging.getLogger(__name__)

LOG_LIMIT_CHARS = 200_000


def spec_hash_compute(*, spec: dict[str, Any]) -> str:
    """A stable hash of a spec: same spec, same hash, whatever the key order."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _event_record(*, run_id: int, from_status: str, to_status: str, message: Message | str = "") -> None:
    text, coded = message_split(message, limit=500)
    RunEvent.objects.create(
        run_id=run_id, from_status=from_status, to_status=to_status, at=timezone.now(), message=text, message_i18n=coded
    )


def _transition(
    *, run_id: int, from_statuses: tuple[str, ...], to_status: str, message: Message | str = "", **fields: Any
) -> bool:
    """Move a run to ``to_status`` only if it is in one of ``from_statuses``; record the event.

    ``message`` (the event's) and an ``error_message`` field may be ``Message``s: stored as English text and code.
    """
    if "error_message" in fields:
        fields["error_message"], fields["error_message_i18n"] = message_split(fields["error_message"])
    with transaction.atomic():
        current = (
            EvaluationRun.objects.filter(pk=run_id, status__in=from_statuses).values_list("status", flat=True).first()
        )
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
    _event_record(run_id=run.pk, from_status="", to_status=RunStatus.QUEUED, message=Message("run.submitted"))
    if enqueue:
        # After commit: a worker must never receive an id whose row it cannot see yet.
        transaction.on_commit(lambda: run_enqueue(run=run))
    return run


def run_existing_find(
    *, spec_hash: str = "", dedupe_by_spec: bool = False, submission_key: str | None = None
) -> EvaluationRun | None:
    """The run a duplicate submission should get back: the same submission key, or the live run of the spec."""
    if submission_key:
        run = EvaluationRun.objects.filter(submission_key=submission_key).first()
        if run is not None:
            return run
    if dedupe_by_spec and spec_hash:
        # Any live run of the spec answers (a forced re-run or an import too); the constraint covers
        # only the deduplicated ones, so prefer those.
        return (
            EvaluationRun.objects.filter(spec_hash=spec_hash, status__in=(RunStatus.SUCCEEDED, *ACTIVE_STATUSES))
            .order_by("-dedupe_by_spec", "-queued_at")
            .first()
        )
    return None


def run_create_or_existing(
    *,
    spec: dict[str, Any],
    spec_hash: str | None = None,
    dedupe_by_spec: bool = False,
    submission_key: str | None = None,
    **fields: Any,
) -> tuple[EvaluationRun, bool]:
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
            run = run_create(
                spec=spec, spec_hash=spec_hash, dedupe_by_spec=dedupe_by_spec, submission_key=submission_key, **fields
            )
    except IntegrityError:
        existing = run_existing_find(**keys)
        if existing is None:
            raise
        return existing, False
    return run, True


# A submission must not wait on a dead broker: two tries, a second apart (the connect and socket
# timeouts in CELERY_BROKER_TRANSPORT_OPTIONS bound each try). The reaper sends what failed here.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 1, "interval_step": 1, "interval_max": 1}


def run_enqueue(*, run: EvaluationRun) -> bool:
    """Hand a run's message to the broker; True when the broker took it.

    Never raises for a broker that is down: the run is stored and stays QUEUED with ``sent_at``
    null, the page says it will be sent, and the reaper sends it once the broker answers. ``sent_at``
    is also set on ``run`` itself, so a caller that enqueued on commit can read it afterwards.
    """
    from runs.broker import broker_errors
    from runs.tasks import execute_run as execute_run_task

    try:
        execute_run_task.apply_async(args=[run.pk], queue=run.queue, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
    except broker_errors() as exc:
        logger.warning("run %s: the broker did not take its message (%s); the reaper will send it", run.pk, exc)
        return False
    now = timezone.now()
    # Only while QUEUED: a fast worker may have claimed it already, and a stale row must not get a date.
    EvaluationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(sent_at=now)
    run.sent_at = now
    return True


def run_claim(*, run_id: int, worker_host: str | None = None) -> EvaluationRun | None:
    """QUEUED -> RUNNING. Returns None when another delivery, a cancel or the reaper got there first."""
    now = timezone.now()
    claimed = _transition(
        run_id=run_id,
        from_statuses=(RunStatus.QUEUED,),
        to_status=RunStatus.RUNNING,
        message=Message("run.claimed", worker=worker_host or socket.gethostname()),
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


def run_progress(*, run_id: int, done: int, total: int, note: Message | str = "") -> None:
    text, coded = message_split(note, limit=255)
    EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        progress_done=done,
        progress_total=total,
        progress_note=text,
        progress_note_i18n=coded,
        heartbeat_at=timezone.now(),
    )


def run_log_append(*, run_id: int, text: str) -> None:
    run = EvaluationRun.objects.only("log").get(pk=run_id)
    log = (run.log + text.rstrip("\n") + "\n")[-LOG_LIMIT_CHARS:]
    EvaluationRun.objects.filter(pk=run_id).update(log=log)


def run_finish(
    *,
    run_id: int,
    status: str,
    error_message: Message | str = "",
    outcome: RunOutcome | None = None,
    log: str = "",
    from_statuses: tuple[str, ...] = (RunStatus.RUNNING,),
    message: Message | str = "",
) -> bool:
    """RUNNING (or one of ``from_statuses``) -> a terminal status, storing the outcome in the same transaction.

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
        if not _transition(
            run_id=run_id, from_statuses=from_statuses, to_status=status, message=message or error_message, **fields
        ):
            return False
        if log:
            run_log_append(run_id=run_id, text=log)
        if outcome is not None:
            _samples_ingest(run_id=run_id, outcome=outcome)
        if outcome is not None and status == RunStatus.SUCCEEDED:
            scores_store(run_id=run_id, outcome=outcome)
        _finish_hooks_call(run_id=run_id)
    return True


def _samples_ingest(*, run_id: int, outcome: RunOutcome) -> None:
    """The kind's ``RUN_SAMPLE_INGESTERS`` entry stores ``outcome.samples``, in run_finish's transaction."""
    from django.utils.module_loading import import_string

    kind = EvaluationRun.objects.filter(pk=run_id).values_list("kind", flat=True).first()
    path = getattr(settings, "RUN_SAMPLE_INGESTERS", {}).get(kind)
    if path:
        import_string(path)(run_id=run_id, samples=outcome.samples)


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
        message=Message("run.cancelled_by", user=by) if by else Message("run.cancelled"),
        finished_at=timezone.now(),
    )


def runs_reap(*, now=None) -> dict[str, list[int]]:
    """Recover runs whose worker died, and send queued runs whose message is missing. Beat runs it every minute.

    A RUNNING run with a stale heartbeat goes back to QUEUED (and is re-sent) while it has attempts
    left, else to ERRORED; but not while a live worker tells the broker it is executing it (a worker
    waiting for PostgreSQL cannot beat). Then ``runs_resend`` sends what the broker lacks.
    """
    now = now or timezone.now()
    report: dict[str, list[int]] = {"requeued": [], "errored": [], "kept": [], "resent": []}
    _runs_reap_stale(now=now, report=report)
    runs_resend(now=now, report=report)
    return report


def _runs_reap_stale(*, now, report: dict[str, list[int]]) -> None:
    from runs.broker import broker_active_run_ids

    stale_before = now - timedelta(seconds=settings.RUN_STALE_AFTER_S)
    stale = list(
        EvaluationRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_before).only(
            "pk", "attempts", "worker_host", "heartbeat_at"
        )
    )
    if not stale:
        return
    active = broker_active_run_ids()
    if active is None:
        logger.warning(
            "reaper: %d run(s) look stale but the broker cannot say whether their workers live; "
            "left alone until it answers",
            len(stale),
        )
        report["kept"].extend(run.pk for run in stale)
        return
    for run in stale:
        if run.pk in active:
            # Alive, only silent: its worker waits for the database (see run_execute). Heartbeats resume.
            logger.warning("reaper: run %s has a stale heartbeat but its worker still executes it; kept", run.pk)
            report["kept"].append(run.pk)
            continue
        lost = Message("run.worker_lost", worker=run.worker_host or "?", at=f"{run.heartbeat_at:%Y-%m-%d %H:%M:%S}")
        if run.attempts < settings.RUN_MAX_ATTEMPTS:
            if _transition(
                run_id=run.pk,
                from_statuses=(RunStatus.RUNNING,),
                to_status=RunStatus.QUEUED,
                message=Message("run.requeued", reason=lost),
                queued_at=now,
                heartbeat_at=None,
                worker_host="",
                sent_at=None,
            ):
                report["requeued"].append(run.pk)
                transaction.on_commit(lambda run=run: run_enqueue(run=EvaluationRun.objects.get(pk=run.pk)))
        elif _transition(
            run_id=run.pk,
            from_statuses=(RunStatus.RUNNING,),
            to_status=RunStatus.ERRORED,
            message=lost,
            finished_at=now,
            error_message=Message("run.worker_died", reason=lost, attempts=run.attempts),
        ):
            report["errored"].append(run.pk)


def runs_resend(*, now=None, report: dict[str, list[int]] | None = None) -> list[int]:
    """Send the queued runs whose message the broker does not hold, each once.

    Those are: runs whose send failed (``sent_at`` null: the broker was down at submission); every
    queued run when the broker lost its messages (its sentinel is gone: a Redis restarted empty);
    and, as a safety net for a message lost some other way, a run whose last send is older than
    RUN_RESEND_AFTER_S. A run waiting its turn is never sent twice within that period, and a second
    delivery would be harmless anyway: the claim lets one run it.
    """
    from runs.broker import broker_sentinel_check

    now = now or timezone.now()
    report = report if report is not None else {"requeued": [], "resent": []}
    sentinel = broker_sentinel_check()
    if sentinel is None:
        return report["resent"]  # the broker is down: nothing can be sent; sent_at says what to send later
    # Runs re-queued in this pass are sent when that transaction commits.
    queued = EvaluationRun.objects.filter(status=RunStatus.QUEUED).exclude(pk__in=report["requeued"])
    if not sentinel:
        # Null first, then send: a pass that dies half-way leaves the rest for the next one.
        lost = queued.update(sent_at=None)
        if lost:
            logger.warning(
                "reaper: the broker lost its messages (its sentinel was gone); re-sending %d queued run(s)", lost
            )
    due = queued.filter(Q(sent_at__isnull=True) | Q(sent_at__lt=now - timedelta(seconds=settings.RUN_RESEND_AFTER_S)))
    for run in due.only("pk", "queue").order_by("queued_at", "pk"):
        if not run_enqueue(run=run):
            break  # the broker went away meanwhile; the next pass goes on
        report["resent"].append(run.pk)
    return report["resent"]


__all__ = [
    "run_cancel",
    "run_claim",
    "run_create",
    "run_create_or_existing",
    "run_existing_find",
    "run_enqueue",
    "run_finish",
    "run_heartbeat",
    "run_progress",
    "runs_reap",
    "runs_resend",
    "scores_store",
    "spec_hash_compute",
]
