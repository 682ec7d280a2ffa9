"""Run the evaluator's asyncio work in its own thread, reporting progress from the caller's thread.

Why a thread: the callbacks the executor passes (``on_progress`` writes the run row, ``should_stop``
reads it) use the Django ORM, which refuses to run inside an event loop (SynchronousOnlyOperation), and
a database write inside the loop would stall every call in flight. So the loop runs in a worker thread;
the calling thread polls a small shared state, calls the callbacks at a modest rate, and passes a stop
request back through a ``threading.Event`` that the jobs check between steps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

PROGRESS_EVERY_S = 0.5
STOP_CHECK_EVERY_S = 2.0


class JobState:
    """Progress and the stop flag shared between the loop thread and the caller."""

    def __init__(self, total: int):
        self._lock = threading.Lock()
        self.total = total
        self.done = 0
        self.note = ""
        self.stop = threading.Event()
        self.reported: tuple[int, int, str] | None = None  # the last snapshot passed to on_progress

    def advance(self, note: str = "", count: int = 1) -> None:
        with self._lock:
            self.done += count
            if note:
                self.note = note

    def snapshot(self) -> tuple[int, int, str]:
        with self._lock:
            return self.done, self.total, self.note

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()


def run_jobs(
    main: Callable[[JobState], Awaitable[T]],
    *,
    total: int,
    on_progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> T:
    """Run ``main(state)`` in a fresh event loop on a worker thread and return its result."""
    state = JobState(total)
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(main(state))
        except BaseException as exc:  # handed to the caller's thread, re-raised there
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="evaluator-jobs", daemon=True)
    thread.start()
    try:
        _follow(thread, state, on_progress, should_stop)
    except BaseException:
        # A callback failed (say, the database went away): stop the jobs before giving up on them.
        state.stop.set()
        thread.join(30)
        raise
    if "error" in outcome:
        raise outcome["error"]
    snapshot = state.snapshot()
    if on_progress is not None and snapshot != state.reported:
        on_progress(*snapshot)
    return outcome["value"]


def _follow(thread: threading.Thread, state: JobState, on_progress, should_stop) -> None:
    """Report progress and pass on stop requests until ``thread`` ends."""
    last_stop_check = float("-inf")
    while thread.is_alive():
        thread.join(PROGRESS_EVERY_S)
        snapshot = state.snapshot()
        if on_progress is not None and snapshot != state.reported and thread.is_alive():
            on_progress(*snapshot)
            state.reported = snapshot
        now = time.monotonic()
        if should_stop is not None and not state.stopping and now - last_stop_check >= STOP_CHECK_EVERY_S:
            last_stop_check = now
            if should_stop():
                state.stop.set()


async def tasks_wait(tasks, state) -> None:
    """Wait for ``tasks``; when the run is asked to stop, cancel the ones still pending and return."""
    pending = set(tasks)
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=0.2)
        if state.stopping and pending:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return
