"""An evaluator run end to end through the run lifecycle: real ragas against the loopback judge, an
OpenAI-compatible model under test (also on loopback), results stored per sample, aggregates as scores."""

import re

import pytest
from django.urls import reverse

from evaluator.datasets import RowData
from evaluator.models import LLMEndpoint, MetricScore, SampleResult, TargetKind
from evaluator.services import EvaluationSetupError, dataset_create, evaluation_submit
from runs.choices import RunStatus
from runs.execution import run_execute
from runs.models import EvaluationRun, Score
from tests.evaluator.loopback_judge import LoopbackJudge
from tests.factories import user_create

pytestmark = pytest.mark.django_db

ROWS = [
    RowData(
        question="연차 휴가는 며칠인가요?",
        reference="15일",
        contexts=("입사 1년 후 15일의 연차가 주어진다.",),
        response="15일입니다.",
        tags=("hr",),
    ),
    RowData(
        question="What is the VPN address?",
        reference="vpn.example.internal",
        contexts=("The VPN is at vpn.example.internal.",),
        response="vpn.example.internal",
        tags=("it",),
    ),
    RowData(
        question="Who approves expenses?",
        reference="The team lead",
        contexts=("Team leads approve expenses.",),
        response="Your manager's manager.",
        tags=("hr", "finance"),
    ),
]


@pytest.fixture
def dataset():
    return dataset_create(name="Company FAQ", rows=ROWS, owner=user_create())


def endpoint(judge, name="judge", **fields):
    return LLMEndpoint.objects.create(
        **{
            "name": name,
            "base_url": judge.base_url,
            "model_name": judge.model,
            "timeout_s": 10,
            "max_retries": 0,
            **fields,
        }
    )


def test_precomputed_responses_scored_by_the_judge(dataset):
    with LoopbackJudge() as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["exact_match", "faithfulness", "answer_accuracy"],
            judge=endpoint(judge),
        )
        assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED, EvaluationRun.objects.get(pk=run.pk).error_message
        assert judge.calls > 0
    assert SampleResult.objects.filter(run=run).count() == 3
    scores = MetricScore.objects.filter(sample__run=run)
    assert scores.count() == 9
    exact = {s.sample.row.position: s.value for s in scores.filter(metric="exact_match")}
    assert exact == {1: 0.0, 2: 1.0, 3: 0.0}
    for score in scores.filter(metric__in=["faithfulness", "answer_accuracy"]):
        assert score.unscored_reason or 0.0 <= score.value <= 1.0
    aggregates = {s.metric: s for s in Score.objects.filter(run=run, task="evaluator")}
    assert aggregates["exact_match"].value == pytest.approx(1 / 3) and aggregates["exact_match"].sample_count == 3


def test_model_under_test_answers_through_an_endpoint(dataset):
    with LoopbackJudge() as judge, LoopbackJudge(model="model-under-test") as target:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.ENDPOINT,
            target_endpoint=endpoint(target, "target", is_judge=False),
            metric_keys=["rouge_l", "faithfulness"],
            judge=endpoint(judge),
        )
        assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED, EvaluationRun.objects.get(pk=run.pk).error_message
        assert target.calls == 3
    responses = list(SampleResult.objects.filter(run=run).values_list("response", flat=True))
    assert all(response for response in responses) and responses != [row.response for row in ROWS]


def test_garbage_from_the_judge_is_kept_as_unscored_with_the_raw_output(dataset):
    with LoopbackJudge(garbage=1.0) as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["faithfulness", "exact_match"],
            judge=endpoint(judge),
        )
        assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    faithfulness = MetricScore.objects.filter(sample__run=run, metric="faithfulness")
    assert faithfulness.count() == 3 and all(s.value is None and s.unscored_reason for s in faithfulness)
    aggregate = Score.objects.get(run=run, metric="faithfulness")
    assert aggregate.value is None and aggregate.sample_count == 0
    assert MetricScore.objects.filter(sample__run=run, metric="exact_match", value__isnull=False).count() == 3


def test_some_unscored_samples_are_counted_not_averaged_as_zero(dataset):
    with LoopbackJudge(garbage=0.5) as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["answer_accuracy", "coherence"],
            judge=endpoint(judge),
        )
        assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED, EvaluationRun.objects.get(pk=run.pk).error_message
    run.refresh_from_db()
    unscored_total = 0
    for key in ("answer_accuracy", "coherence"):
        scores = MetricScore.objects.filter(sample__run=run, metric=key)
        scored = [s.value for s in scores if s.value is not None and not s.unscored_reason]
        unscored = scores.count() - len(scored)
        unscored_total += unscored
        aggregate = Score.objects.get(run=run, metric=key)
        assert aggregate.sample_count == len(scored) == run.details["scored"][key]
        assert run.details["unscored"][key] == unscored
        if scored:
            assert aggregate.value == pytest.approx(sum(scored) / len(scored))
    assert unscored_total > 0, "a judge answering garbage half the time must leave some samples unscored"
    assert run.details["seconds"] >= run.details["scoring_s"] >= 0


def test_a_retried_run_replaces_its_rows(dataset, tmp_path):
    """Storing the same run's outcome twice (a retried finish, store_run_outcome) leaves one set of rows, not two."""
    from evaluator.executor import execute_evaluation
    from evaluator.ingest import sample_results_ingest
    from runs.executors import RunContext

    run = evaluation_submit(
        dataset_version=dataset.latest_version, target_kind=TargetKind.PRECOMPUTED, metric_keys=["exact_match", "chrf"]
    )
    first = execute_evaluation(run, RunContext(run_id=run.pk, artifacts_dir=tmp_path))
    assert not SampleResult.objects.filter(run=run).exists(), "the executor itself writes nothing"
    sample_results_ingest(run_id=run.pk, samples=first.samples)
    ids = set(MetricScore.objects.filter(sample__run=run).values_list("pk", flat=True))
    second = execute_evaluation(run, RunContext(run_id=run.pk, artifacts_dir=tmp_path))
    sample_results_ingest(run_id=run.pk, samples=second.samples)
    assert (
        SampleResult.objects.filter(run=run).count() == 3 and MetricScore.objects.filter(sample__run=run).count() == 6
    )
    assert ids.isdisjoint(MetricScore.objects.filter(sample__run=run).values_list("pk", flat=True))
    assert [(r.metric, r.value, r.sample_count) for r in first.scores] == [
        (r.metric, r.value, r.sample_count) for r in second.scores
    ]


def cancelled_after_scoring(run, context):
    """The real executor, then a cancel landing after the scoring and before run_finish."""
    from evaluator.executor import execute_evaluation
    from runs.services import run_cancel

    outcome = execute_evaluation(run, context)
    assert run_cancel(run_id=run.pk, by="test")
    return outcome


def test_a_cancel_between_scoring_and_finish_leaves_no_sample_rows(dataset, settings):
    settings.RUN_EXECUTORS = {**settings.RUN_EXECUTORS, "evaluator": f"{__name__}.cancelled_after_scoring"}
    run = evaluation_submit(
        dataset_version=dataset.latest_version, target_kind=TargetKind.PRECOMPUTED, metric_keys=["exact_match", "chrf"]
    )
    run_execute(run_id=run.pk)
    assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert not SampleResult.objects.filter(run=run).exists()
    assert not MetricScore.objects.filter(sample__run=run).exists()
    assert not Score.objects.filter(run=run).exists()


def test_the_page_and_the_scores_agree_on_the_means(dataset):
    """One aggregation (evaluator.aggregates): the Score rows and the results page give the same mean and count."""
    from evaluator.selectors import run_results

    run = evaluation_submit(
        dataset_version=dataset.latest_version, target_kind=TargetKind.PRECOMPUTED, metric_keys=["chrf", "rouge_l"]
    )
    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED
    shown = {m.key: m for m in run_results(run=EvaluationRun.objects.get(pk=run.pk)).metrics}
    for score in Score.objects.filter(run=run, task="evaluator"):
        assert score.value == shown[score.metric].mean and score.sample_count == shown[score.metric].scored
        assert score.stderr == shown[score.metric].stderr and score.stderr is not None


def test_a_run_with_every_score_unscored_fails_and_keeps_its_reasons(dataset):
    """A judge that answers only garbage: no number at all is a failure (as a judge that answers nothing), and
    the samples stay, each with why it is unscored."""
    with LoopbackJudge(garbage=1.0) as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["faithfulness"],
            judge=endpoint(judge),
        )
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert "no score at all" in run.error_message.lower() and "first reason" in run.error_message.lower()
    scores = MetricScore.objects.filter(sample__run=run)
    assert scores.count() == 3 and all(s.value is None and s.unscored_reason for s in scores)
    assert not Score.objects.filter(run=run).exists()
    assert run.details["unscored"] == {"faithfulness": 3}


def test_a_dead_judge_fails_the_run_with_a_clear_message(dataset):
    with LoopbackJudge() as judge:
        dead = endpoint(judge)
    run = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.PRECOMPUTED,
        metric_keys=["faithfulness"],
        judge=dead,
    )
    assert run_execute(run_id=run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert "the judge could not be reached" in run.error_message.lower()
    assert dead.base_url.split("//")[1].split("/")[0] not in run.error_message  # no address: others read it too


def test_a_missing_secret_fails_the_run_naming_it(dataset, monkeypatch, settings):
    settings.ENDPOINT_SECRETS_ENV_PREFIX = "EVALTEST_"
    monkeypatch.delenv("EVALTEST_JUDGE_KEY_FOR_TEST", raising=False)
    with LoopbackJudge() as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["faithfulness"],
            judge=endpoint(judge, secret_kind="env", secret_name="JUDGE_KEY_FOR_TEST"),
        )
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
    assert "JUDGE_KEY_FOR_TEST" in EvaluationRun.objects.get(pk=run.pk).error_message


def test_set_up_problems_are_refused_before_queueing():
    no_responses = dataset_create(name="Bare", rows=[RowData(question="Q?")])
    with pytest.raises(EvaluationSetupError) as caught:
        evaluation_submit(
            dataset_version=no_responses.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["faithfulness", "answer_accuracy", "nonsense"],
        )
    message = str(caught.value)
    for part in (
        "Unknown metrics: nonsense",
        "need a judge",
        "No row has a reference answer",
        "No row has retrieved contexts",
        "1 rows have no response",
    ):
        assert part in message, message
    assert not EvaluationRun.objects.exists()


def test_a_judge_that_hangs_fails_the_run_and_keeps_each_sample_with_the_timeout(dataset, client):
    """Reachable at the start, then silent past the timeout: nothing was judged, so the run fails saying so
    (it must not stand as a result, or a baseline), and every sample is kept, unscored with the reason."""
    with LoopbackJudge(mode="hang", hang_s=5) as judge:
        run = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["answer_accuracy", "rouge_l"],
            judge=endpoint(judge, timeout_s=1),
        )
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
    run.refresh_from_db()
    assert re.search(r"answered none of \d+ calls", run.error_message) and "within 1 s" in run.error_message, (
        run.error_message
    )
    judged = MetricScore.objects.filter(sample__run=run, metric="answer_accuracy")
    assert judged.count() == 3 and all(s.value is None and "within 1 s" in s.unscored_reason for s in judged)
    assert MetricScore.objects.filter(sample__run=run, metric="rouge_l", value__isnull=False).count() == 3
    assert not Score.objects.filter(run=run).exists()
    client.force_login(dataset.owner)
    page = client.get(reverse("evaluator:run", args=[run.pk])).content.decode()
    assert 'id="run-error"' in page and "answered none of" in page and 'id="headline"' not in page
    assert 'id="unscored-notice"' in page and "3 of 6 scores could not be given" in page
    only_unscored = client.get(reverse("evaluator:run", args=[run.pk]), {"unscored": "1"}).content.decode()
    assert only_unscored.count("within 1 s") >= 4
    assert page.count("within 1 s") >= 4  # the run's error and each sample's reason
    exported = client.get(reverse("evaluator:run_export", args=[run.pk, "json"])).json()
    assert exported["status"] == "failed" and "answered none of" in exported["error"]
    assert all("within 1 s" in sample["answer_accuracy_unscored_reason"] for sample in exported["samples"])


@pytest.mark.slow
def test_a_registered_local_model_answers_on_the_worker(dataset, tiny_model):
    """The model under test is a registered model folder: it generates on the worker with the prompt template."""
    from tests.factories import registered_model_create

    model = registered_model_create(display_name="acme/tiny", storage_path=str(tiny_model))
    run = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.REGISTERED_MODEL,
        target_model=model,
        metric_keys=["rouge_l", "chrf"],
        prompt_template="질문: {question}\n문맥:\n{contexts}\n답:",
    )
    assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED, EvaluationRun.objects.get(pk=run.pk).error_message
    results = SampleResult.objects.filter(run=run)
    assert results.count() == 3
    assert all(r.response or r.generation_error for r in results)
    assert EvaluationRun.objects.get(pk=run.pk).model_id == model.pk


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_takes_an_evaluator_run_from_the_broker():
    """Submitted as the page does (queued on commit), run by a real Celery worker with real ragas."""
    import signal

    from tests.workers import WorkerProcess, queues_purge, wait_for

    queues_purge()
    dataset = dataset_create(name="Company FAQ", rows=ROWS, owner=user_create())
    worker = WorkerProcess("evaluator-worker", settings_module="tests.worker_settings")
    try:
        with LoopbackJudge() as judge:
            run = evaluation_submit(
                dataset_version=dataset.latest_version,
                target_kind=TargetKind.PRECOMPUTED,
                metric_keys=["answer_accuracy", "rouge_l"],
                judge=endpoint(judge),
            )
            wait_for(
                lambda: EvaluationRun.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
                120,
                "the worker to finish the evaluator run",
                worker,
            )
            assert judge.calls > 0
    finally:
        worker.kill(signal.SIGTERM)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    assert run.worker_host and MetricScore.objects.filter(sample__run=run).count() == 6
    assert Score.objects.get(run=run, metric="rouge_l").sample_count == 3


def test_a_run_that_loads_no_model_skips_the_gpu_queue(dataset, tiny_model):
    """Endpoints only: the CPU queue, not behind benchmarks. A local judge or model under test: the GPU queue."""
    from evaluator.models import EndpointKind
    from tests.factories import registered_model_create

    with LoopbackJudge() as judge:
        remote = evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["faithfulness"],
            judge=endpoint(judge),
        )
    local_judge = LLMEndpoint.objects.create(name="local judge", kind=EndpointKind.LOCAL, local_path=str(tiny_model))
    judged_locally = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.PRECOMPUTED,
        metric_keys=["faithfulness"],
        judge=local_judge,
    )
    generating = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.REGISTERED_MODEL,
        target_model=registered_model_create(storage_path=str(tiny_model)),
        metric_keys=["rouge_l"],
    )
    assert [remote.queue, judged_locally.queue, generating.queue] == ["cpu", "gpu", "gpu"]


def test_an_outcome_kept_on_disk_stores_its_samples_when_stored_later(dataset, tmp_path, settings):
    """The database was down at the finish: the outcome went to disk (run_outcome_save) with its samples, and
    `store_run_outcome` later stores them with the status, in one transaction."""
    from evaluator.executor import execute_evaluation
    from runs.execution import run_outcome_save, run_outcome_store
    from runs.executors import RunContext

    settings.ARTIFACTS_DIR = str(tmp_path)
    run = evaluation_submit(
        dataset_version=dataset.latest_version, target_kind=TargetKind.PRECOMPUTED, metric_keys=["exact_match"]
    )
    outcome = execute_evaluation(run, RunContext(run_id=run.pk, artifacts_dir=tmp_path))
    path = run_outcome_save(run_id=run.pk, finish={"status": RunStatus.SUCCEEDED, "outcome": outcome})
    assert not SampleResult.objects.filter(run=run).exists()
    assert run_outcome_store(path=path)
    assert EvaluationRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    assert sorted(MetricScore.objects.filter(sample__run=run).values_list("value", flat=True)) == [0.0, 0.0, 1.0]
