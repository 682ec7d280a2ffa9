"""Workers report what they are and can run (runs.WorkerNode); a stopped worker's row goes away."""

import signal
import socket

import pytest
from django.utils import timezone

from runs.models import WorkerNode
from runs.workers import worker_capabilities_detect
from tests.workers import WorkerProcess, queues_purge, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _node(hostname):
    return WorkerNode.objects.filter(hostname=hostname).first()


def test_a_worker_reports_itself_and_removes_its_row_when_it_stops():
    queues_purge()
    hostname = f"nodes@{socket.gethostname()}"
    worker = WorkerProcess(
        "nodes", settings_module="tests.worker_settings", extra_env={"WORKER_REPORT_INTERVAL_S": "1"}
    )
    try:
        wait_for(lambda: _node(hostname) is not None, 120, "the worker to report itself", worker)
        node = _node(hostname)
        assert node.queues == ["cpu", "gpu"]
        capabilities = node.capabilities
        assert capabilities["cuda"] is False and capabilities["gpu_count"] == 0 and capabilities["gpus"] == []
        assert capabilities["torch"] and capabilities["transformers"]
        assert isinstance(capabilities["bitsandbytes"], bool) and isinstance(capabilities["gptq"], bool)
        first_seen = node.last_seen_at
        wait_for(lambda: _node(hostname).last_seen_at > first_seen, 30, "the worker to report again", worker)
    finally:
        worker.kill(signal.SIGTERM)
    assert _node(hostname) is None, "a worker that shuts down removes its row"


def test_a_killed_worker_leaves_a_row_that_goes_stale():
    queues_purge()
    hostname = f"doomed-node@{socket.gethostname()}"
    worker = WorkerProcess(
        "doomed-node", settings_module="tests.worker_settings", extra_env={"WORKER_REPORT_INTERVAL_S": "1"}
    )
    try:
        wait_for(lambda: _node(hostname) is not None, 120, "the worker to report itself", worker)
    finally:
        worker.kill(signal.SIGKILL)
    last_seen = _node(hostname).last_seen_at
    import time

    time.sleep(2.5)
    assert _node(hostname).last_seen_at == last_seen, "nobody reports for a dead worker"
    assert last_seen < timezone.now()


def test_capabilities_are_detected_without_importing_torch_here():
    import sys

    had_torch = "torch" in sys.modules
    capabilities = worker_capabilities_detect()
    assert set(capabilities) == {"cuda", "gpu_count", "gpus", "bitsandbytes", "gptq", "torch", "transformers"}
    assert capabilities["gpu_count"] == len(capabilities["gpus"])
    assert ("torch" in sys.modules) == had_torch


def test_the_web_process_never_reports(client, django_user_model):
    from runs import workers

    client.force_login(django_user_model.objects.create_user("viewer", password="pw"))
    client.get("/")
    assert workers._reporter is None
    assert not WorkerNode.objects.exists()
