"""The contract between the run lifecycle and the code that evaluates (lm-eval, ragas).

An executor is a callable ``execute(run, context) -> RunOutcome``, registered per run kind in
``settings.RUN_EXECUTORS`` (a dotted path, like healthchecks' TRANSPORTS). Executors never touch
run status: they raise ``EvaluationFailed`` for a problem the submitter can fix, ``RunCancelled``
when ``context.is_cancelled()`` turned true, and anything else is a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from runs.messages import Message


class EvaluationFailed(Exception):
    """A problem the submitter can fix; its message is shown to them as it is.

    ``outcome``: what the run got before it failed (per-sample results whose reasons the page shows, e.g.
    a judge that went down); stored with the failed run, without its scores.

    Raise it with a ``runs.messages.Message`` (``EvaluationFailed(Message("code", name=value))``): the run
    stores the code and its parameters, and each reader sees the reason in their language. Plain text is
    stored as text (recognised when it is the English of a known message).
    """

    def __init__(self, message: Message | str, *, outcome: RunOutcome | None = None):
        super().__init__(message)
        self.outcome = outcome


class RunCancelled(Exception):
    """The run was cancelled while it ran; the executor stopped at a safe point."""


@dataclass(frozen=True)
class ScoreRow:
    task: str
    metric: str
    value: float | None
    filter: str = "none"
    stderr: float | None = None
    n_shot: int | None = None
    sample_count: int | None = None
    task_version: str = ""
    higher_is_better: bool = True


@dataclass
class RunOutcome:
    scores: list[ScoreRow] = field(default_factory=list)
    # JSON-serialisable: task configs, seeds, timings, the raw result minus per-sample data.
    details: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    # Relative to settings.ARTIFACTS_DIR.
    samples_path: str = ""
    # JSON-serialisable per-sample records, stored by the kind's ingester (settings.RUN_SAMPLE_INGESTERS)
    # inside run_finish's transaction: a run cancelled before its finish keeps none of them.
    samples: list[dict[str, Any]] = field(default_factory=list)


class RunContext:
    """What an executor may do with its run while it works: report progress, check for cancel."""

    def __init__(
        self,
        *,
        run_id: int,
        artifacts_dir: Path,
        cancel_event: threading.Event | None = None,
        progress_callback: Callable[[int, int, str], None] | None = None,
        log_callback: Callable[[str], None] | None = None,
    ):
        self.run_id = run_id
        self.artifacts_dir = artifacts_dir
        self._cancel_event = cancel_event or threading.Event()
        self._progress_callback = progress_callback
        self._log_callback = log_callback

    def is_cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.is_cancelled():
            raise RunCancelled(f"run {self.run_id} was cancelled")

    def progress(self, done: int, total: int, note: Message | str = "") -> None:
        """``note``: a ``runs.messages.Message``, shown in each reader's language (or plain text)."""
        if self._progress_callback:
            self._progress_callback(done, total, note)

    def log(self, line: str) -> None:
        if self._log_callback:
            self._log_callback(line)


Executor = Callable[[Any, RunContext], RunOutcome]


def get_executor(kind: str) -> Executor:
    try:
        dotted_path = settings.RUN_EXECUTORS[kind]
    except KeyError as exc:
        raise EvaluationFailed(Message("run.no_executor", kind=repr(kind))) from exc
    return import_string(dotted_path)
