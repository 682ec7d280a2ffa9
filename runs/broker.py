"""What the run lifecycle asks the broker, apart from sending runs: did it lose its messages, and
which runs do live workers say they are executing. No ORM here; runs.services decides what to do.

Why a sentinel: a Redis that restarts without its data (the embedded/CI set-up, or a production box
whose AOF was lost) silently drops every queued message, and nothing else tells the site. A message in
a queue nobody consumes is dropped with them, so "the sentinel is gone" means "every message sent
before now may be gone". The SQLAlchemy broker keeps it in its database like any message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from kombu import Producer
from kombu.exceptions import ChannelError, KombuError

logger = logging.getLogger(__name__)

SENTINEL_QUEUE = "leaderboard.broker-sentinel"
EXECUTE_TASK_NAME = "runs.execute_run"
# How long the reaper waits for workers to say what they execute; it asks only when a heartbeat is stale.
INSPECT_TIMEOUT_S = 2.0


def _app():
    from config.celery import app

    return app


def broker_errors() -> tuple[type[BaseException], ...]:
    """Every error that means "the broker did not do it": down, hung, full (Redis' OOM refusal under
    noeviction is a channel error) or refusing, for the configured transport."""
    conn = _app().connection_for_write()  # not connected: only the transport's error classes are read
    return (KombuError, OSError, *conn.connection_errors, *conn.channel_errors)


def _connection():
    """A fresh connection that gives up within seconds: the reaper must not hang on a dead broker."""
    conn = _app().connection_for_write()
    conn.ensure_connection(max_retries=1, interval_start=0.5, interval_step=0.5, interval_max=1)
    return conn


def broker_sentinel_check() -> bool | None:
    """True: the sentinel is there, nothing was lost. False: it was gone (the broker lost its
    messages, or this is its first check ever) and has been put back. None: the broker did not answer.
    """
    try:
        with _connection() as conn:
            try:
                with conn.channel() as channel:
                    _name, message_count, _consumers = channel.queue_declare(queue=SENTINEL_QUEUE, passive=True)
                if message_count > 0:
                    return True
            except ChannelError:
                pass  # Redis: a list with no element does not exist, so the queue itself is gone
            with conn.channel() as channel:
                channel.queue_declare(queue=SENTINEL_QUEUE, durable=True, auto_delete=False)
                Producer(channel).publish(
                    {
                        "purpose": "If this message disappears, the broker lost its messages; see README.",
                        "since": datetime.now(UTC).isoformat(),
                    },
                    exchange="",
                    routing_key=SENTINEL_QUEUE,
                    serializer="json",
                    retry=False,
                )
            return False
    except broker_errors() as exc:
        logger.warning("broker unreachable for its sentinel check: %s", exc)
        return None


def broker_active_run_ids() -> set[int] | None:
    """Ids of the runs that live workers report executing right now, asked through the broker.

    This channel does not need the database: a worker whose run waits for PostgreSQL to come back
    still answers. None when the broker could not be asked. A broker without broadcast (the embedded
    SQLAlchemy one) answers an empty set: only heartbeats count there.
    """
    try:
        with _connection() as conn:
            if "fanout" not in conn.transport.implements.exchange_type:
                return set()
            replies = _app().control.inspect(timeout=INSPECT_TIMEOUT_S, connection=conn).active() or {}
    except broker_errors() as exc:
        logger.warning("broker unreachable: cannot ask workers what they execute: %s", exc)
        return None
    run_ids: set[int] = set()
    for tasks in replies.values():
        for task in tasks or ():
            if task.get("name") == EXECUTE_TASK_NAME and task.get("args"):
                try:
                    run_ids.add(int(task["args"][0]))
                except (TypeError, ValueError):
                    continue
    return run_ids


__all__ = ["SENTINEL_QUEUE", "broker_active_run_ids", "broker_errors", "broker_sentinel_check"]
