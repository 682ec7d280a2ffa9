"""The run lifecycle: claim, finish, cancel, reap; every transition recorded."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from runs import execution, services
from runs.choices import RunKind, RunStatus
from runs.executors import RunOutcome, ScoreRow
from runs.models import EvaluationRun, Score
from tests import executors
from tests.factories import run_create_row

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def scripted_executor(settings):
    settings.RUN_EXECUTORS = {"benchmark": "tests.executors.scripted"}
    settings.RUN_HEARTBEAT_S = 0.05
    executors.CALLS.clear()


def _statuses(run_id):
    return [(e.from_status, e.to_status) for e in EvaluationRun.objects.get(pk=run_id).events.all()]


def test_run_create_enqueues_only_after_commit(django_capture_on_commit_callbacks):
    with mock.patch("runs.services.run_enqueue") as enqueue:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            run = services.run_create(kind=RunKind.BENCHMARK, spec={"suite": "s"})
            assert enqueue.call_count == 0
        assert len(callbacks) == 1
        enqueue.assert_called_once()
    assert run.status == RunStatus.QUEUED
    assert run.spec_hash == services.spec_hash_compute(spec={"suite": "s"})
    assert _statuses(run.pk) == [("", "queued")]


def test_spec_hash_ignores_key_order():
    assert services.spec_hash_compute(spec={"a": 1, "b": [1, 2]}) == services.spec_hash_compute(
        spec={"b": [1, 2], "a": 1}
    )
    assert services.spec_hash_compute(spec={"a": 1}) != services.spec_hash_compute(spec={"a": 2})


@pytest.mark.django_db(transaction=True)
def test_successful_run_stores_scores_and_records_each_transition():
    run = run_create_row(spec={"suite": "s"})
    assert execution.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.started_at and run.finished_at and run.worker_host
    assert run.attempts == 1
    assert (run.progress_done, run.progress_total) == (2, 2)
    assert run.library_versions == {"test": "1"}
    score = Score.objects.get(run=run)
    assert (score.task, score.metric, score.value, score.stderr, score.n_shot) == (
        "arc_challenge",
        "acc_norm",
        0.25,
        0.01,
        25,
    )
    assert _statuses(run.pk) == [("queued", "running"), ("running", "succeeded")]


@pytest.mark.django_db(transaction=True)
def test_second_delivery_is_noop():
    run = run_create_row()
    assert execution.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert execution.run_execute(run_id=run.pk) is None
    assert executors.CALLS == [run.pk]
    assert Score.objects.filter(run=run).count() == 1
    assert EvaluationRun.objects.get(pk=run.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_claim_is_exclusive():
    run = run_create_row()
    assert services.run_claim(run_id=run.pk, worker_host="a") is not None
    assert services.run_claim(run_id=run.pk, worker_host="b") is None
    assert EvaluationRun.objects.get(pk=run.pk).worker_host == "a"


@pytest.mark.django_db(transaction=True)
def test_cancel_mid_run_is_not_overwritten_by_the_finishing_worker():
    run = run_create_row(spec={"cancel_self": True})
    execution.run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert not Score.objects.filter(run=run).exists(), "a cancelled run must not show scores"
    assert [to for _, to in _statuses(run.pk)] == ["running", "cancelled"]


@pytest.mark.django_db(transaction=True)
def test_running_executor_notices_cancel_through_heartbeat():
    import threading
    import time

    run = run_create_row(spec={"wait_for_cancel": True})
    result = {}
    worker = threading.Thread(target=lambda: result.update(status=execution.run_execute(run_id=run.pk)))
    worker.start()
    for _ in range(100):
        if EvaluationRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
            break
        time.sleep(0.05)
    assert services.run_cancel(run_id=run.pk, by="alice")
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert result["status"] == RunStatus.CANCELLED
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.events.last().message == "cancelled by alice"


def test_cancel_queued_run_then_delivery_does_nothing():
    run = run_create_row()
    assert services.run_cancel(run_id=run.pk)
    assert services.run_claim(run_id=run.pk) is None
    assert not services.run_cancel(run_id=run.pk), "a finished run cannot be cancelled again"


@pytest.mark.django_db(transaction=True)
def test_user_fixable_problem_fails_and_crash_errors():
    failed = run_create_row(spec={"fail": "Dataset allenai/ai2_arc is missing from /mirror"})
    crashed = run_create_row(spec={"crash": "boom"})
    assert execution.run_execute(run_id=failed.pk) == RunStatus.FAILED
    assert execution.run_execute(run_id=crashed.pk) == RunStatus.ERRORED
    failed.refresh_from_db()
    crashed.refresh_from_db()
    assert failed.error_message == "Dataset allenai/ai2_arc is missing from /mirror"
    assert crashed.error_message == "ValueError: boom"
    assert "Traceback" in crashed.log and "boom" in crashed.log
    assert not Score.objects.exists()


def test_storing_scores_twice_keeps_one_row_per_task_metric_filter():
    run = run_create_row(status=RunStatus.RUNNING)
    outcome = RunOutcome(
        scores=[
            ScoreRow(task="gsm8k", metric="exact_match", filter="strict-match", value=0.5),
            ScoreRow(task="gsm8k", metric="exact_match", filter="flexible-extract", value=0.6),
        ]
    )
    services.scores_store(run_id=run.pk, outcome=outcome)
    services.scores_store(run_id=run.pk, outcome=outcome)
    assert Score.objects.filter(run=run).count() == 2


def test_reaper_requeues_a_run_whose_worker_died(settings):
    settings.RUN_STALE_AFTER_S = 60
    settings.RUN_MAX_ATTEMPTS = 2
    old = timezone.now() - timedelta(minutes=5)
    dead = run_create_row(status=RunStatus.RUNNING, heartbeat_at=old, attempts=1, worker_host="gpu-1")
    exhausted = run_create_row(status=RunStatus.RUNNING, heartbeat_at=old, attempts=2, worker_host="gpu-2")
    alive = run_create_row(status=RunStatus.RUNNING, heartbeat_at=timezone.now(), attempts=1)
    with mock.patch("runs.services.run_enqueue") as enqueue:
        report = services.runs_reap()
    assert report["requeued"] == [dead.pk]
    assert report["errored"] == [exhausted.pk]
    dead.refresh_from_db()
    exhausted.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == RunStatus.QUEUED and dead.worker_host == ""
    assert "gpu-1 stopped sending heartbeats" in dead.events.last().message
    assert exhausted.status == RunStatus.ERRORED and "The worker died" in exhausted.error_message
    assert alive.status == RunStatus.RUNNING
    # The re-queued run is sent again (after commit; this test's transaction never commits).
    assert enqueue.call_count == 0


def test_reaper_sends_runs_never_sent_and_resends_only_after_the_period(settings):
    from runs.broker import broker_sentinel_check

    settings.RUN_RESEND_AFTER_S = 600
    broker_sentinel_check()  # the broker has kept its messages
    now = timezone.now()
    never_sent = run_create_row(queued_at=now - timedelta(minutes=2), sent_at=None)
    sent_long_ago = run_create_row(queued_at=now - timedelta(hours=2), sent_at=now - timedelta(hours=1))
    waiting = run_create_row(queued_at=now - timedelta(hours=3), sent_at=now - timedelta(minutes=5))
    with mock.patch("runs.services.run_enqueue") as enqueue:
        report = services.runs_reap()
    assert report["resent"] == [sent_long_ago.pk, never_sent.pk]
    assert [call.kwargs["run"].pk for call in enqueue.call_args_list] == [sent_long_ago.pk, never_sent.pk]
    assert EvaluationRun.objects.get(pk=waiting.pk).status == RunStatus.QUEUED


def test_unknown_kind_fails_cleanly(settings):
    settings.RUN_EXECUTORS = {}
    run = run_create_row(status=RunStatus.QUEUED)
    with mock.patch("runs.execution._Heartbeat.start"):
        assert execution.run_execute(run_id=run.pk) == RunStatus.FAILED
    assert "No executor is configured" in EvaluationRun.objects.get(pk=run.pk).error_message
