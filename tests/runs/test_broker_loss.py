"""The broker down or emptied: no run is lost, none runs twice, and the reaper does not pile up messages.

Against a throwaway Redis the test stops and restarts empty (no data kept), and real worker processes.
"""

import time

import pytest

from runs import services
from runs.broker import SENTINEL_QUEUE, broker_sentinel_check
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun, RunEvent
from tests.runs.fault_tools import ThrowawayRedis, celery_broker
from tests.workers import wait_for, workers_started

pytestmark = [pytest.mark.slow, pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(tmp_path, settings):
    redis = ThrowawayRedis(tmp_path)
    redis.start()
    settings.CELERY_BROKER_URL = redis.url  # what tests.workers hands to worker processes
    with celery_broker(redis.url):
        yield redis
    redis.stop()


@pytest.fixture
def start_worker(broker):
    with workers_started() as start:
        yield lambda name="broker-loss-worker": start(name)


def _claims(run_id):
    return RunEvent.objects.filter(run_id=run_id, from_status=RunStatus.QUEUED, to_status=RunStatus.RUNNING).count()


def _all_succeed_once(run_ids, worker):
    wait_for(
        lambda: (
            set(EvaluationRun.objects.filter(pk__in=run_ids).values_list("status", flat=True)) == {RunStatus.SUCCEEDED}
        ),
        120,
        "the worker to finish every run",
        worker,
    )
    for run_id in run_ids:
        assert _claims(run_id) == 1, f"run {run_id} was claimed more than once"
        assert EvaluationRun.objects.get(pk=run_id).attempts == 1


def test_redis_restarted_empty_queued_runs_are_sent_again_once_each(broker, start_worker):
    assert broker_sentinel_check() is False  # the site's first pass puts the sentinel in
    runs = [services.run_create(kind=RunKind.BENCHMARK, spec={"n": n}) for n in range(3)]
    run_ids = [run.pk for run in runs]
    assert broker.llen("gpu") == 3
    assert all(run.sent_at for run in EvaluationRun.objects.filter(pk__in=run_ids))
    assert services.runs_reap()["resent"] == [], "runs whose message is in the queue are not sent again"
    assert broker.llen("gpu") == 3

    broker.restart_empty()
    assert broker.llen("gpu") == 0
    started = time.monotonic()
    report = services.runs_reap()
    assert sorted(report["resent"]) == sorted(run_ids)
    assert broker.llen("gpu") == 3, "exactly one message per queued run"
    assert broker.llen(SENTINEL_QUEUE) == 1
    for _ in range(5):
        assert services.runs_reap()["resent"] == []
    assert broker.llen("gpu") == 3, "further passes must not pile up messages for runs that merely wait"
    assert time.monotonic() - started < 30

    _all_succeed_once(run_ids, start_worker())


def test_submission_while_the_broker_is_down_is_stored_and_sent_when_it_is_back(broker, start_worker):
    broker_sentinel_check()
    broker.stop()
    started = time.monotonic()
    run = services.run_create(kind=RunKind.BENCHMARK, spec={"hold_s": 0})  # commits, then tries to send
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"a submission waited {elapsed:.1f}s on a dead broker"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.sent_at is None

    started = time.monotonic()
    assert services.runs_reap()["resent"] == [], "nothing can be sent while the broker is down"
    assert time.monotonic() - started < 15

    broker.start()  # back, and empty
    assert services.runs_reap()["resent"] == [run.pk]
    assert broker.llen("gpu") == 1
    assert EvaluationRun.objects.get(pk=run.pk).sent_at is not None
    assert services.runs_reap()["resent"] == []
    assert broker.llen("gpu") == 1

    _all_succeed_once([run.pk], start_worker())


def test_a_full_broker_does_not_fail_a_submission(broker):
    broker_sentinel_check()
    broker.client().config_set("maxmemory-policy", "noeviction")
    broker.client().config_set("maxmemory", "1")  # every write is refused: "OOM command not allowed"
    run = services.run_create(kind=RunKind.BENCHMARK, spec={"n": 1})
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.sent_at is None
    assert services.runs_reap()["resent"] == []
    broker.client().config_set("maxmemory", "0")
    assert services.runs_reap()["resent"] == [run.pk]
    assert broker.llen("gpu") == 1


def test_a_run_waiting_long_is_sent_again_once_per_period(broker, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.RUN_RESEND_AFTER_S = 3600
    broker_sentinel_check()
    waiting = services.run_create(kind=RunKind.BENCHMARK, spec={"n": 1})
    assert broker.llen("gpu") == 1
    EvaluationRun.objects.filter(pk=waiting.pk).update(sent_at=timezone.now() - timedelta(seconds=3601))
    assert services.runs_reap()["resent"] == [waiting.pk]
    assert services.runs_reap()["resent"] == []
    assert broker.llen("gpu") == 2


def test_the_production_redis_configuration_keeps_queued_runs_through_a_crash(tmp_path, settings):
    from django.conf import settings as django_settings

    redis = ThrowawayRedis(tmp_path, config_file=django_settings.BASE_DIR / "deploy" / "redis.conf")
    redis.start()
    try:
        with celery_broker(redis.url):
            broker_sentinel_check()
            run_ids = [services.run_create(kind=RunKind.BENCHMARK, spec={"n": n}).pk for n in range(3)]
            assert redis.llen("gpu") == 3
            time.sleep(1.5)  # appendfsync everysec: what is a second old is on disk
            redis.restart()  # kill -9, as a crash or power cut would
            assert redis.llen("gpu") == 3
            assert services.runs_reap()["resent"] == [], "the broker kept its messages: nothing to re-send"
            assert redis.llen("gpu") == 3
    finally:
        redis.stop()
    assert len(run_ids) == 3
