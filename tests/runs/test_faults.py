"""PostgreSQL goes away while a run ends: the worker keeps the outcome and stores it once, when it is back.

The run's database connections go through a TCP proxy in front of the real PostgreSQL, and the test cuts
it: every connection is closed and new ones are refused, as when the server restarts.
"""

import signal
import time

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from runs import execution, services
from runs.choices import RunKind, RunStatus
from runs.executors import RunOutcome, ScoreRow
from runs.models import EvaluationRun, Score
from tests.factories import run_create_row
from tests.runs.fault_tools import TcpProxy
from tests.workers import WorkerProcess, queues_purge, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]

PROXY: TcpProxy | None = None
SEEN: dict = {}


def cut_when_done(run, context):
    """Evaluates nothing, then takes the database away for spec["cut_s"] seconds just as it returns."""
    if "cut_s" in run.spec:
        PROXY.cut(run.spec["cut_s"])
    return RunOutcome(
        scores=[ScoreRow(task="arc_challenge", metric="acc_norm", value=0.5)],
        details={"cut": True},
        library_versions={"test": "1"},
    )


def cut_while_running(run, context):
    """Takes the database away mid-run, then waits for a heartbeat written after it is back."""
    PROXY.cut(1.0)
    time.sleep(1.5)  # the heartbeat thread fails several times meanwhile
    SEEN["back_at"] = timezone.now()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        connection.close()  # this thread's connection died with the cut
        beat = EvaluationRun.objects.values_list("heartbeat_at", flat=True).get(pk=run.pk)
        if beat > SEEN["back_at"]:
            SEEN["heartbeat_after_outage"] = beat
            return RunOutcome(scores=[ScoreRow(task="t", metric="m", value=1.0)])
        time.sleep(0.1)
    raise AssertionError("no heartbeat after the database came back")


@pytest.fixture
def proxied_db(settings):
    """Every connection of this process (each thread opens its own) goes through a cuttable proxy."""
    global PROXY
    settings.RUN_EXECUTORS = {
        "benchmark": "tests.runs.test_faults.cut_when_done",
        "evaluator": "tests.runs.test_faults.cut_while_running",
    }
    settings.RUN_HEARTBEAT_S = 0.1
    PROXY = TcpProxy(int(connection.settings_dict["PORT"]))
    original = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(PROXY.port)
    SEEN.clear()
    yield PROXY
    PROXY.restore()
    connection.close()
    connection.settings_dict["PORT"] = original
    PROXY.close()


def _transitions(run_id):
    return [(e.from_status, e.to_status) for e in EvaluationRun.objects.get(pk=run_id).events.all()]


def test_results_are_stored_once_after_a_short_database_outage(proxied_db, caplog):
    run = run_create_row(spec={"cut_s": 3})
    started = time.monotonic()
    assert execution.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert proxied_db.cuts == 1
    assert time.monotonic() - started >= 3, "the results cannot have been stored while the database was away"
    assert "retrying" in caplog.text
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.details == {"cut": True}
    assert list(Score.objects.filter(run=run).values_list("task", "value")) == [("arc_challenge", 0.5)]
    assert _transitions(run.pk) == [("queued", "running"), ("running", "succeeded")]


def test_the_claim_waits_for_the_database(proxied_db, caplog):
    run = run_create_row(spec={})
    proxied_db.cut(2)
    assert execution.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert "cannot claim it" in caplog.text
    assert _transitions(run.pk) == [("queued", "running"), ("running", "succeeded")]


def test_heartbeat_survives_a_database_outage(proxied_db):
    run = run_create_row(kind=RunKind.EVALUATOR)
    assert execution.run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    assert SEEN["heartbeat_after_outage"] > SEEN["back_at"]


def test_outcome_is_kept_on_disk_when_the_outage_outlasts_the_window(proxied_db, settings, caplog):
    settings.RUN_FINISH_RETRY_S = 1
    run = run_create_row(spec={"cut_s": 4})
    assert execution.run_execute(run_id=run.pk) == RunStatus.RUNNING
    saved = settings.ARTIFACTS_DIR / "runs" / str(run.pk) / "unsaved-outcome.json"
    assert saved.is_file()
    assert "store_run_outcome" in caplog.text
    wait_for(lambda: proxied_db._listener is not None, 10, "the database to come back")
    connection.close()
    assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    assert not Score.objects.filter(run=run).exists()

    call_command("store_run_outcome", str(saved))
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert list(Score.objects.filter(run=run).values_list("task", "value")) == [("arc_challenge", 0.5)]
    assert _transitions(run.pk) == [("queued", "running"), ("running", "succeeded")]
    assert not saved.exists(), "a stored outcome is renamed, so it cannot be stored twice"


def test_a_saved_outcome_wins_over_a_requeue_and_is_stored_once():
    # The worker gave up, then the reaper re-queued the run (its worker no longer reported it).
    run = run_create_row(status=RunStatus.QUEUED, attempts=1)
    saved = execution.run_outcome_save(
        run_id=run.pk,
        finish={
            "status": RunStatus.SUCCEEDED,
            "outcome": RunOutcome(scores=[ScoreRow(task="t", metric="m", value=0.5, n_shot=5)]),
        },
    )
    assert execution.run_outcome_store(path=saved)
    assert services.run_claim(run_id=run.pk) is None, "the re-sent message finds nothing to do"
    assert not execution.run_outcome_store(path=saved.with_suffix(".stored"))
    assert list(Score.objects.filter(run=run).values_list("task", "value", "n_shot")) == [("t", 0.5, 5)]
    assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_reaper_keeps_a_run_whose_worker_waits_for_the_database(settings, tmp_path):
    """A real worker whose database goes away as its run ends: the reaper sees a stale heartbeat, but the
    worker tells the broker it is still executing the run, so it is not re-queued; it finishes once."""
    proxy = TcpProxy(int(connection.settings_dict["PORT"]))
    queues_purge()
    marker = tmp_path / "started"
    worker = WorkerProcess(
        "db-outage",
        settings_module="tests.worker_settings",
        extra_env={"DB_PORT": str(proxy.port), "RUN_FINISH_RETRY_S": "120"},
    )
    try:
        run = services.run_create(kind=RunKind.BENCHMARK, spec={"started_marker": str(marker), "hold_s": 2})
        wait_for(marker.exists, 90, "the worker to start the run", worker)
        proxy.cut()  # the executor returns about two seconds later, into the outage
        settings.RUN_STALE_AFTER_S = 1
        time.sleep(8)  # the finish has failed a few times; its next try is several seconds away
        assert EvaluationRun.objects.get(pk=run.pk).heartbeat_at < timezone.now() - timezone.timedelta(seconds=6)
        report = services.runs_reap()
        assert report["kept"] == [run.pk] and report["requeued"] == []
        assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
        proxy.restore()
        restored_at = timezone.now()
        wait_for(
            lambda: EvaluationRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
            90,
            "the worker to store the run",
            worker,
        )
    finally:
        try:
            proxy.restore()
        finally:
            worker.kill(signal.SIGTERM)
            proxy.close()
    run.refresh_from_db()
    assert run.attempts == 1
    assert run.heartbeat_at > restored_at, "the heartbeat resumes as soon as the database is back, before the finish"
    assert Score.objects.filter(run=run).count() == 1
    assert _transitions(run.pk) == [("", "queued"), ("queued", "running"), ("running", "succeeded")]
    assert "retrying" in worker.output()


def test_a_message_taken_while_the_database_is_down_goes_back_to_the_queue(tmp_path):
    """The claim itself fails for longer than the retry window: the worker must not drop the run's only
    message (acknowledged, the run would wait in QUEUED for RUN_RESEND_AFTER_S)."""
    from runs.models import WorkerNode

    proxy = TcpProxy(int(connection.settings_dict["PORT"]))
    queues_purge()
    worker = WorkerProcess(
        "db-down-claim",
        settings_module="tests.worker_settings",
        extra_env={"DB_PORT": str(proxy.port), "RUN_FINISH_RETRY_S": "1"},
    )
    try:
        wait_for(
            lambda: WorkerNode.objects.filter(hostname__startswith="db-down-claim@").exists(),
            120,
            "the worker to be ready",
            worker,
        )
        proxy.cut()
        run = services.run_create(kind=RunKind.BENCHMARK, spec={"hold_s": 0})
        wait_for(lambda: worker.output().count("cannot claim it") >= 2, 60, "the worker to try to claim", worker)
        time.sleep(3)  # past the retry window: the message has gone back to the queue at least once
        proxy.restore()
        wait_for(
            lambda: EvaluationRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
            90,
            "the worker to run it once the database is back",
            worker,
        )
    finally:
        try:
            proxy.restore()
        finally:
            worker.kill(signal.SIGTERM)
            proxy.close()
    assert "reject requeue=True" in worker.output()
    assert _transitions(run.pk) == [("", "queued"), ("queued", "running"), ("running", "succeeded")]
