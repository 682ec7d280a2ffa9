"""Running a claimed run on a worker: the heartbeat, the executor, and a finish that survives the database
being briefly unreachable (retried, else saved to a file that ``manage.py store_run_outcome`` stores).

Status changes themselves are ``runs.services``'s conditional updates; this module only calls them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.utils import timezone

from runs.choices import ACTIVE_STATUSES, RunStatus
from runs.executors import EvaluationFailed, RunCancelled, RunContext, RunOutcome, ScoreRow, get_executor
from runs.messages import Message, message_of
from runs.models import EvaluationRun
from runs.services import run_claim, run_finish, run_heartbeat, run_log_append, run_progress

logger = logging.getLogger(__name__)


# Errors that mean "the database is unreachable right now", as opposed to a bug or a constraint.
_DB_UNREACHABLE = (OperationalError, InterfaceError)


def _connection_discard() -> None:
    """Drop this thread's broken connection so that the next query opens a new one."""
    from django.db import connection

    try:
        connection.close()
    except DatabaseError:
        connection.connection = None


class _Heartbeat(threading.Thread):
    """Beats every RUN_HEARTBEAT_S while the run is in this worker's hands; sets ``cancelled`` once the row
    left RUNNING. A database outage does not stop it: it logs, and beats again when the database is back.
    """

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.run_id = run_id
        self.cancelled = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        failing = False
        try:
            while not self._stop_event.wait(settings.RUN_HEARTBEAT_S):
                try:
                    alive = run_heartbeat(run_id=self.run_id)
                except _DB_UNREACHABLE as exc:
                    if not failing:
                        logger.warning(
                            "run %s: heartbeat failed, database unreachable (%s); still trying", self.run_id, exc
                        )
                    failing = True
                    _connection_discard()
                    continue
                if failing:
                    logger.warning("run %s: heartbeat back", self.run_id)
                    failing = False
                if not alive:
                    self.cancelled.set()
                    return
        finally:
            _connection_discard()  # this thread's own connection

    def stop(self) -> None:
        self._stop_event.set()


def _best_effort(call):
    """Progress and log lines are worth less than the evaluation: a database outage drops them, not the run."""

    def wrapped(*args, **kwargs):
        try:
            call(*args, **kwargs)
        except _DB_UNREACHABLE as exc:
            logger.warning("progress/log update dropped, database unreachable: %s", exc)
            _connection_discard()

    return wrapped


def _unsaved_outcome_path(run_id: int) -> Path:
    return Path(settings.ARTIFACTS_DIR) / "runs" / str(run_id) / "unsaved-outcome.json"


def run_outcome_save(*, run_id: int, finish: dict[str, Any]) -> Path:
    """Write how a run ended to its artefacts folder, for ``manage.py store_run_outcome``."""
    import dataclasses

    outcome = finish.get("outcome")
    finish = {name: value.english() if isinstance(value, Message) else value for name, value in finish.items()}
    data = {
        **finish,
        "run_id": run_id,
        "saved_at": timezone.now().isoformat(),
        "outcome": dataclasses.asdict(outcome) if outcome is not None else None,
    }
    path = _unsaved_outcome_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1, default=str))
    temporary.replace(path)
    return path


def run_outcome_store(*, path: Path) -> bool:
    """Store an outcome that ``run_outcome_save`` kept on disk. The run may have been re-queued or be
    running again meanwhile: the saved outcome wins (a running re-run sees the row leave RUNNING and stops,
    as after a cancel). False when the run has already ended.
    """
    data = json.loads(Path(path).read_text())
    outcome = data.get("outcome")
    if outcome is not None:
        outcome = RunOutcome(**{**outcome, "scores": [ScoreRow(**row) for row in outcome["scores"]]})
    stored = run_finish(
        run_id=data["run_id"],
        status=data["status"],
        error_message=data.get("error_message", ""),
        outcome=outcome,
        log=data.get("log", ""),
        from_statuses=ACTIVE_STATUSES,
        message=Message("run.outcome_stored"),
    )
    if stored:
        Path(path).rename(Path(path).with_suffix(".stored"))
    return stored


def _while_db_unreachable(call, *, what: str):
    """``call()``, retried with backoff for RUN_FINISH_RETRY_S while the database is unreachable; then
    the last error is raised."""
    deadline = time.monotonic() + settings.RUN_FINISH_RETRY_S
    delay = 0.5
    while True:
        try:
            return call()
        except _DB_UNREACHABLE as exc:
            _connection_discard()
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s: database unreachable (%s); retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30)


def _run_finish_durably(*, run_id: int, **finish: Any) -> bool | None:
    """``run_finish``, retried while the database is unreachable (``_while_db_unreachable``).

    Retrying is safe: the finish is one transaction behind a conditional update, so an attempt whose
    commit went through but whose answer was lost makes the next attempt find the run ended (False)
    and write nothing twice. The caller keeps heartbeating meanwhile, and the reaper leaves the run
    alone while this worker reports it active. When the window passes, the outcome goes to disk
    (``run_outcome_save``) and None is returned.
    """
    try:
        return _while_db_unreachable(
            lambda: run_finish(run_id=run_id, **finish), what=f"run {run_id}: cannot store how it ended"
        )
    except _DB_UNREACHABLE:
        path = run_outcome_save(run_id=run_id, finish=finish)
        logger.critical(
            "run %s ended %s but the database stayed unreachable for %ss; its outcome is saved in %s. "
            "Once the database is back run `manage.py store_run_outcome %s` (see README).",
            run_id,
            finish["status"],
            settings.RUN_FINISH_RETRY_S,
            path,
            path,
        )
        return None


def run_execute(*, run_id: int) -> str | None:
    """Claim a run, execute it, and record how it ended. What the Celery task and `evaluate` call.

    Returns the final status, or None when this delivery had nothing to do. A database that stays
    unreachable through the claim raises (the task puts the message back in the queue).
    """
    run = _while_db_unreachable(lambda: run_claim(run_id=run_id), what=f"run {run_id}: cannot claim it")
    if run is None:
        logger.info("run %s: not claimed (already taken, finished or cancelled)", run_id)
        return None

    heartbeat = _Heartbeat(run_id)
    context = RunContext(
        run_id=run_id,
        artifacts_dir=Path(settings.ARTIFACTS_DIR) / "runs" / str(run_id),
        cancel_event=heartbeat.cancelled,
        progress_callback=_best_effort(
            lambda done, total, note: run_progress(run_id=run_id, done=done, total=total, note=note)
        ),
        log_callback=_best_effort(lambda line: run_log_append(run_id=run_id, text=line)),
    )
    context.artifacts_dir.mkdir(parents=True, exist_ok=True)
    heartbeat.start()
    try:
        finish = _run_outcome_get(run=run, context=context)
        if finish is None:
            return RunStatus.CANCELLED
        # The heartbeat goes on until the outcome is stored: the run is still this worker's.
        stored = _run_finish_durably(run_id=run_id, **finish)
    finally:
        heartbeat.stop()
    if stored is None:
        return RunStatus.RUNNING  # kept on disk; the row still says running
    if stored:
        return finish["status"]
    return EvaluationRun.objects.values_list("status", flat=True).get(pk=run_id)


def _run_outcome_get(*, run: EvaluationRun, context: RunContext) -> dict[str, Any] | None:
    """Run the executor; how the run ended, as ``run_finish`` arguments (None: it was cancelled)."""
    try:
        outcome = get_executor(run.kind)(run, context)
    except RunCancelled:
        # The cancel already wrote the final status; there is nothing to add.
        logger.info("run %s: stopped after cancel", run.pk)
        return None
    except EvaluationFailed as exc:
        failed = {"status": RunStatus.FAILED, "error_message": message_of(exc)}
        return {**failed, "outcome": exc.outcome} if exc.outcome is not None else failed
    except Exception as exc:
        logger.exception("run %s errored", run.pk)
        return {
            "status": RunStatus.ERRORED,
            "error_message": f"{type(exc).__name__}: {exc}",
            "log": traceback.format_exc(),
        }
    return {"status": RunStatus.SUCCEEDED, "outcome": outcome}


__all__ = ["run_execute", "run_outcome_save", "run_outcome_store"]
