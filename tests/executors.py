"""Executors with controllable behaviour, for testing the run lifecycle and the worker wiring.

They stand in for lm-eval/ragas only where the lifecycle is under test; the real executors
have their own tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from runs.executors import EvaluationFailed, RunCancelled, RunOutcome, ScoreRow

CALLS: list[int] = []


def _hold(context, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        context.raise_if_cancelled()
        time.sleep(0.05)


def scripted(run, context) -> RunOutcome:
    """Does what run.spec says: hold for a while, fail, crash, or cancel itself, then score."""
    CALLS.append(run.pk)
    spec = run.spec
    if marker := spec.get("started_marker"):
        Path(marker).write_text(str(os.getpid()))
    context.progress(0, 2, "starting")
    _hold(context, float(spec.get("hold_s", 0)))
    if run.attempts == 1:
        _hold(context, float(spec.get("hold_first_attempt_s", 0)))
    if spec.get("fail"):
        raise EvaluationFailed(spec["fail"])
    if spec.get("crash"):
        raise ValueError(spec["crash"])
    if spec.get("cancel_self"):
        from runs.services import run_cancel

        run_cancel(run_id=run.pk, by="test")  # a person cancels while the executor goes on
    if spec.get("wait_for_cancel"):
        _hold(context, 30)
        raise AssertionError("the heartbeat never reported the cancel")
    context.progress(2, 2, "done")
    return RunOutcome(
        scores=[ScoreRow(task="arc_challenge", metric="acc_norm", value=0.25, stderr=0.01, n_shot=25, sample_count=4)],
        details={"pid": os.getpid()},
        library_versions={"test": "1"},
    )


__all__ = ["CALLS", "RunCancelled", "scripted"]
