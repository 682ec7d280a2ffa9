"""Workers report themselves in runs.WorkerNode: which queues they take and what they can run.

The submit form refuses what no live worker can run (8-bit and 4-bit weights need a CUDA worker with
bitsandbytes) by reading these rows. A worker writes its row when it is ready, refreshes
``last_seen_at`` every WORKER_REPORT_INTERVAL_S from a daemon thread of its main process, and deletes
the row when it shuts down; a worker killed outright leaves a row that goes stale after
WORKER_STALE_AFTER_S. Hooked from config/celery.py: only a worker process fires those signals, never
the web process or beat.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
import threading
from importlib import metadata
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

logger = logging.getLogger(__name__)

# Run in a child interpreter: importing torch costs seconds and memory the worker's main process does not
# otherwise need, and asking CUDA about devices before the pool forks its children would break CUDA in them.
_GPU_PROBE = """
import json
try:
    import torch
except ImportError:
    print(json.dumps({"cuda": False, "gpus": []}))
    raise SystemExit
gpus = []
if torch.cuda.is_available():
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append({"name": props.name, "memory_total_mb": props.total_memory // 2**20})
print(json.dumps({"cuda": bool(gpus), "gpus": gpus}))
"""
GPU_PROBE_TIMEOUT_S = 180


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _installed(*modules: str) -> bool:
    return any(importlib.util.find_spec(module) is not None for module in modules)


def _gpus_probe() -> dict[str, Any]:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _GPU_PROBE], capture_output=True, text=True, timeout=GPU_PROBE_TIMEOUT_S, check=True
        )
        return json.loads(probe.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        logger.warning("worker: could not ask torch about GPUs (%s); reporting none", exc)
        return {"cuda": False, "gpus": []}


def worker_capabilities_detect() -> dict[str, Any]:
    """What this machine can run, without importing torch or quantisation packages into this process.

    The GPUs are those this process may use (CUDA_VISIBLE_DEVICES, as the GPU worker units set it).
    """
    gpus = _gpus_probe()
    return {
        "cuda": gpus["cuda"],
        "gpu_count": len(gpus["gpus"]),
        "gpus": gpus["gpus"],
        "bitsandbytes": _installed("bitsandbytes"),
        "gptq": _installed("gptqmodel", "auto_gptq"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
    }


def worker_node_report(*, hostname: str, queues: list[str], capabilities: dict[str, Any], started_at) -> None:
    """Write the worker's row (created, or refreshed with ``last_seen_at`` now)."""
    from runs.models import WorkerNode

    WorkerNode.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": queues,
            "capabilities": capabilities,
            "started_at": started_at,
            "last_seen_at": timezone.now(),
        },
    )


def worker_node_remove(*, hostname: str) -> None:
    from runs.models import WorkerNode

    WorkerNode.objects.filter(hostname=hostname).delete()


class _Reporter(threading.Thread):
    """Detects the capabilities once, then reports every WORKER_REPORT_INTERVAL_S until stopped."""

    def __init__(self, *, hostname: str, queues: list[str]):
        super().__init__(name="worker-node-report", daemon=True)
        self.hostname = hostname
        self.queues = queues
        self.started_at = timezone.now()
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        capabilities = worker_capabilities_detect()
        logger.info("worker %s: queues %s, capabilities %s", self.hostname, self.queues, capabilities)
        while not self.stopped.is_set():
            try:
                worker_node_report(
                    hostname=self.hostname, queues=self.queues, capabilities=capabilities, started_at=self.started_at
                )
            except DatabaseError as exc:
                logger.warning("worker %s: could not report itself (%s); trying again", self.hostname, exc)
            finally:
                # No connection stays open between reports: none is then inherited by a forked pool child.
                connection.close()
            self.stopped.wait(settings.WORKER_REPORT_INTERVAL_S)


_reporter: _Reporter | None = None


def worker_reporting_start(*, hostname: str, queues: list[str]) -> None:
    global _reporter
    if _reporter is None:
        _reporter = _Reporter(hostname=hostname, queues=sorted(queues))
        _reporter.start()


def worker_reporting_stop(*, hostname: str) -> None:
    """Stop reporting and delete the row; the database being down then only leaves the row to go stale."""
    global _reporter
    if _reporter is not None:
        _reporter.stopped.set()
        _reporter.join(timeout=10)
        _reporter = None
    try:
        worker_node_remove(hostname=hostname)
    except DatabaseError as exc:
        logger.warning("worker %s: could not remove its row (%s); it goes stale", hostname, exc)
    finally:
        from django.db import connection

        connection.close()


def on_worker_ready(sender=None, **kwargs) -> None:
    """celery's worker_ready: ``sender`` is the worker's consumer, in the worker's main process."""
    queues = [queue.name for queue in sender.task_consumer.queues] if sender.task_consumer else []
    worker_reporting_start(hostname=sender.hostname, queues=queues)


def on_worker_shutdown(sender=None, **kwargs) -> None:
    worker_reporting_stop(hostname=sender.hostname)


__all__ = [
    "on_worker_ready",
    "on_worker_shutdown",
    "worker_capabilities_detect",
    "worker_node_remove",
    "worker_node_report",
    "worker_reporting_start",
    "worker_reporting_stop",
]
