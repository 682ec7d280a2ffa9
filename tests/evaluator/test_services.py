"""Evaluator services and selectors: version locking, the frozen run spec, and the results aggregation."""

import json
import math

import pytest

from evaluator.aggregates import confidence_interval
from evaluator.datasets import RowData
from evaluator.models import (
    DatasetRow,
    DatasetVersion,
    EvaluatorRun,
    JudgeReview,
    LLMEndpoint,
    MetricScore,
    TargetKind,
)
from evaluator.selectors import run_results, runs_compare, sample_results_page
from evaluator.services import (
    DatasetVersionLocked,
    EvaluationSetupError,
    dataset_version_delete,
    dataset_version_edit,
    dataset_version_note_set,
    evaluation_submit,
)
from tests.evaluator.factories import dataset_make, endpoint_make, evaluator_run_make, rows_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db


def _row_values(version):
    return list(
        version.rows.order_by("position").values_list(
            "position", "question", "reference", "contexts", "response", "tags"
        )
    )


def test_a_version_used_by_a_run_cannot_change_and_editing_makes_a_new_one():
    dataset = dataset_make()
    v1 = dataset.latest_version
    before = _row_values(v1)
    dataset_version_note_set(version=v1, note="checked by legal")  # unused: fine
    evaluator_run_make(version=v1)

    with pytest.raises(DatasetVersionLocked, match="used by an evaluation run"):
        dataset_version_note_set(version=v1, note="changed")
    with pytest.raises(DatasetVersionLocked):
        dataset_version_delete(version=v1)
    v2 = dataset_version_edit(
        version=v1,
        edits={2: None, 1: RowData(question="바뀐 질문", tags=("hr",))},
        additions=[RowData(question="new one")],
    )
    assert v2.number == 2 and [r[1] for r in _row_values(v2)] == ["바뀐 질문", "Who approves expenses?", "new one"]
    assert [r[0] for r in _row_values(v2)] == [1, 2, 3]
    v1.refresh_from_db()
    assert _row_values(v1) == before and v1.note == "checked by legal" and v1.row_count == 3

    dataset_version_delete(version=v2)  # nobody used it
    assert list(dataset.versions.values_list("number", flat=True)) == [1]
    assert DatasetRow.objects.filter(version_id=v2.pk).count() == 0


def test_submit_freezes_the_spec_without_the_key():
    from evaluator.endpoint_secrets import key_encrypt

    dataset = dataset_make()
    judge = endpoint_make(secret_kind="stored", api_key_encrypted=key_encrypt("sk-very-secret"))
    run = evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.PRECOMPUTED,
        judge=judge,
        metric_keys=["answer_accuracy", "semantic_similarity", "answer_accuracy"],
        preset="custom",
        custom_criteria=[
            {"name": "정중함", "definition": "존댓말을 쓴다."},
            {"name": "정중함", "definition": "again", "kind": "rubric", "rubric": {"1": "rude", "5": "polite"}},
        ],
    )
    spec = run.spec
    text = json.dumps(spec, ensure_ascii=False)
    assert "sk-very-secret" not in text and spec["judge"]["secret"] == {"kind": "stored", "name": ""}
    assert judge.api_key_encrypted not in text
    assert spec["metrics"] == ["answer_accuracy", "semantic_similarity"]
    assert [c["key"] for c in spec["custom_criteria"]] == ["custom:정중함", "custom:정중함-2"]
    assert spec["custom_criteria"][1]["rubric"] == {"1": "rude", "5": "polite"}
    assert spec["dataset_version_id"] == dataset.latest_version.pk and spec["embedding_path"].endswith("model")
    assert "{question}" in spec["prompt_template"]
    link = EvaluatorRun.objects.get(run=run)
    assert link.judge == judge and link.dataset_version == dataset.latest_version and run.kind == "evaluator"


def test_submit_lists_every_set_up_problem():
    dataset = dataset_make(rows=[RowData(question="Q1", response="R1"), RowData(question="Q2", response="R2")])
    with pytest.raises(EvaluationSetupError) as caught:
        evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.ENDPOINT,
            metric_keys=["context_recall"],
            prompt_template="no placeholders here",
            custom_criteria=[{"name": "x", "definition": ""}],
        )
    problems = " | ".join(caught.value.problems)
    for part in (
        "need a judge LLM",
        "No row has a reference answer",
        "No row has retrieved contexts",
        "Pick the endpoint",
        "needs a name and a definition",
        "{question}",
    ):
        assert part in problems, problems
    # Rows lacking only some references are fine: those samples come back unscored.
    partial = dataset_make(
        rows=[RowData(question="Q1", reference="A", response="R"), RowData(question="Q2", response="R")]
    )
    assert evaluation_submit(
        dataset_version=partial.latest_version, target_kind=TargetKind.PRECOMPUTED, metric_keys=["exact_match"]
    ).pk


def test_submit_refuses_an_endpoint_whose_key_must_be_set_again():
    """An endpoint whose old secret setting was dropped (it could not be trusted) is refused before queueing,
    not at the run's start."""
    from runs.models import EvaluationRun

    dataset = dataset_make()
    judge = endpoint_make(name="old judge", api_key_needed=True)
    with pytest.raises(EvaluationSetupError) as caught:
        evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            metric_keys=["answer_accuracy"],
            judge=judge,
        )
    assert any("old judge needs its API key set again" in problem for problem in caught.value.problems)
    assert not EvaluationRun.objects.exists()


def test_confidence_intervals():
    low, high, method = confidence_interval([1.0] * 8 + [0.0] * 2)
    assert method == "wilson" and (round(low, 3), round(high, 3)) == (0.490, 0.943)
    low, high, method = confidence_interval([0.2, 0.4, 0.6])
    # t(0.975, 2) = 4.303; standard error 0.2 / sqrt(3)
    assert method == "t" and low == 0.0 and high == pytest.approx(0.4 + 4.3027 * 0.2 / math.sqrt(3), abs=1e-3)
    assert confidence_interval([0.5]) == (None, None, "")
    assert confidence_interval([]) == (None, None, "")


def test_results_aggregate_by_metric_and_tag_in_bounded_queries(django_assert_max_num_queries):
    version = dataset_make(rows=rows_make(300)).latest_version
    reviewer = user_create()
    run = evaluator_run_make(
        version=version,
        metrics=("faithfulness", "answer_accuracy", "rouge_l"),
        custom_criteria=[{"key": "custom:polite", "name": "Polite", "definition": "d"}],
    )
    scores = list(MetricScore.objects.filter(sample__run=run, metric="answer_accuracy", value__isnull=False)[:4])
    JudgeReview.objects.bulk_create(
        [JudgeReview(score=s, reviewer=reviewer, agrees=i != 0) for i, s in enumerate(scores)]
    )

    with django_assert_max_num_queries(4):
        results = run_results(run=run)
    by_key = {m.key: m for m in results.metrics}
    assert list(by_key) == ["faithfulness", "answer_accuracy", "rouge_l", "custom:polite"]
    assert (by_key["faithfulness"].scored, by_key["faithfulness"].unscored) == (200, 100)
    assert by_key["answer_accuracy"].mean == pytest.approx(0.5) and by_key["answer_accuracy"].ci_method == "wilson"
    assert by_key["custom:polite"].label == "Polite"
    assert results.headline.key == "answer_accuracy" and results.samples == 300
    assert (results.reviewed, results.agreed, results.agreement) == (4, 3, 0.75)
    assert set(results.by_tag) == {"hr", "it", "휴가"}
    assert sum(s.total for tags in results.by_tag.values() for s in tags if s.key == "rouge_l") == 300

    with django_assert_max_num_queries(6):
        page = sample_results_page(run=run, tag="휴가", per_page=50)
        shown = [
            (s.row.position, [(m.metric, m.value, len(m.reviews.all())) for m in s.metric_scores.all()])
            for s in page.object_list
        ]
    assert len(shown) == 50 and page.paginator.count == 100 and all(position % 3 == 2 for position, _ in shown)
    assert all(len(metrics) == 4 for _, metrics in shown)

    unscored = sample_results_page(run=run, metric="faithfulness", only_unscored=True, per_page=500)
    assert unscored.paginator.count == 100
    assert all(s.metric_scores.all()[0].value is None for s in unscored.object_list)
    assert sample_results_page(run=run, metric="rouge_l", only_unscored=True).paginator.count == 0


def test_headline_falls_back_when_the_first_metric_has_no_score():
    version = dataset_make().latest_version
    run = evaluator_run_make(
        version=version,
        metrics=("answer_accuracy", "faithfulness"),
        value=lambda position, metric: None if metric == "answer_accuracy" else 0.5,
    )
    results = run_results(run=run)
    assert results.headline.key == "faithfulness" and results.headline.mean == 0.5
    assert results.metrics[0].mean is None and results.metrics[0].unscored == 3


def test_compare_two_runs_on_one_version():
    version = dataset_make().latest_version
    before = evaluator_run_make(
        version=version, metrics=("answer_accuracy",), value=lambda p, m: [0.0, 1.0, 0.5][p - 1]
    )
    after = evaluator_run_make(
        version=version, metrics=("answer_accuracy",), value=lambda p, m: [1.0, 1.0, 0.25][p - 1]
    )
    deltas, changed = runs_compare(run_a=before, run_b=after)
    assert deltas[0].key == "answer_accuracy" and deltas[0].delta == pytest.approx(0.25)
    assert changed == [(1, "answer_accuracy", 0.0, 1.0), (3, "answer_accuracy", 0.5, 0.25)]


def test_an_unused_only_version_cannot_be_deleted():
    version = dataset_make().latest_version
    with pytest.raises(DatasetVersionLocked, match="at least one version"):
        dataset_version_delete(version=version)
    assert DatasetVersion.objects.filter(pk=version.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_while_the_form_was_open_is_refused_not_a_500():
    dataset = dataset_make()
    judge = endpoint_make()
    LLMEndpoint.objects.filter(pk=judge.pk).delete()  # another request deleted it after the form was read
    with pytest.raises(EvaluationSetupError, match="just deleted"):
        evaluation_submit(
            dataset_version=dataset.latest_version,
            target_kind=TargetKind.PRECOMPUTED,
            judge=judge,
            metric_keys=["answer_accuracy"],
        )
    assert not EvaluatorRun.objects.exists()
