"""Paired tests on per-sample data, checked against hand computations and SciPy, and on the compare page."""

from __future__ import annotations

import pytest
from django.urls import reverse
from scipy import stats

from leaderboard.comparison import runs_compare
from leaderboard.paired_tests import MCNEMAR, PAIRED_T, STDERR_Z, holm_adjust, paired_compare, stderr_z
from tests.factories import registered_model_create, user_create
from tests.leaderboard.sample_runs import raw_samples, real_runs, store_run  # noqa: F401 (fixture)


def test_a_real_drop_is_found_with_the_exact_p_value():
    # 400 documents, 20 right in A turned wrong in B, none the other way: p = 2 * 0.5**20 (two-sided).
    a = [1.0] * 300 + [0.0] * 100
    b = [0.0] * 20 + [1.0] * 280 + [0.0] * 100
    result = paired_compare(a, b)
    assert result.test == MCNEMAR
    assert result.p_value == pytest.approx(2 * 0.5**20, rel=1e-12)
    assert result.delta == pytest.approx(-0.05) and result.became_worse == 20 and result.became_better == 0
    assert result.high < 0  # the interval lies below zero
    # The unpaired test on the same two accuracies (0.75 vs 0.70, n=400) would not see it.
    se = lambda p: (p * (1 - p) / 400) ** 0.5  # noqa: E731
    assert stderr_z(value_a=0.75, value_b=0.70, stderr_a=se(0.75), stderr_b=se(0.70)).p_value > 0.05


def test_a_drop_inside_the_noise_is_not_significant():
    # 5 flipped to wrong, 3 to right: the binomial test of 3 of 8 at p = 1/2.
    a = [1.0] * 5 + [0.0] * 3 + [1.0] * 100
    b = [0.0] * 5 + [1.0] * 3 + [1.0] * 100
    result = paired_compare(a, b)
    assert result.p_value == pytest.approx(stats.binomtest(3, 8, 0.5).pvalue)
    assert result.p_value > 0.7
    assert result.low < 0 < result.high


def test_continuous_scores_get_the_paired_t_test():
    a = [0.41, 0.52, 0.33, 0.61, 0.47, 0.58, 0.39, 0.44]
    b = [0.38, 0.50, 0.30, 0.57, 0.46, 0.51, 0.37, 0.40]
    result = paired_compare(a, b)
    expected = stats.ttest_rel(b, a)
    assert result.test == PAIRED_T
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    interval = expected.confidence_interval(0.95)
    assert (result.low, result.high) == (pytest.approx(interval.low), pytest.approx(interval.high))


def test_holm_adjusts_in_step_down_order_and_keeps_missing_values():
    assert holm_adjust([0.01, 0.04, None, 0.03]) == [
        pytest.approx(0.03),
        pytest.approx(0.06),
        None,
        pytest.approx(0.06),
    ]
    assert holm_adjust([0.5, 0.9]) == [pytest.approx(1.0), pytest.approx(1.0)]


def _stored_pair(real_runs, settings):  # noqa: F811
    return tuple(
        store_run(
            real_runs[name],
            model=registered_model_create(display_name=f"org/tiny-{name}"),
            artifacts_dir=settings.ARTIFACTS_DIR,
        )
        for name in ("a", "b")
    )


@pytest.mark.django_db
def test_the_compare_page_tests_real_runs_on_their_samples(client, settings, real_runs):  # noqa: F811
    run_a, run_b = _stored_pair(real_runs, settings)
    comparison = runs_compare(run_a=run_a, run_b=run_b)
    columns = {row.task: row for row in comparison.columns}
    # ARC is judged right/wrong per document: McNemar on exactly the flips the page lists.
    arc = columns["arc_challenge"]
    flips = next(f for f in comparison.flips if f.task == "arc_challenge")
    assert arc.paired.test == MCNEMAR and arc.paired.pairs == flips.compared
    assert (arc.paired.became_worse, arc.paired.became_better) == (
        flips.became_incorrect_count,
        flips.became_correct_count,
    )
    # TruthfulQA mc2 is continuous: the paired t-test on the raw per-sample values.
    mc2 = columns["truthfulqa_mc2"]
    values = {
        name: {s["doc_id"]: s["acc"] for s in raw_samples(real_runs[name]["samples"]) if s["task"] == "truthfulqa_mc2"}
        for name in ("a", "b")
    }
    docs = sorted(values["a"].keys() & values["b"].keys())
    assert mc2.paired.test == PAIRED_T and mc2.paired.pairs == len(docs)
    expected = stats.ttest_rel([values["b"][d] for d in docs], [values["a"][d] for d in docs]).pvalue
    assert mc2.paired.p_value == pytest.approx(expected, rel=1e-9)
    # Holm across the column rows: each adjusted p is at least its own.
    assert all(row.p_adjusted >= row.paired.p_value for row in comparison.columns if row.paired)

    user = user_create()
    client.force_login(user)
    html = client.get(reverse("leaderboard:compare"), {"a": run_a.pk, "b": run_b.pk}).content.decode()
    row = html[html.index('data-key="arc_challenge,acc_norm,none"') :].split("</tr>")[0]
    assert f'data-test="{MCNEMAR}"' in row and "McNemar" in row


@pytest.mark.django_db
def test_without_samples_the_stderrs_decide_and_the_row_says_so(client, settings, real_runs):  # noqa: F811
    run_a, run_b = _stored_pair(real_runs, settings)
    type(run_b).objects.filter(pk=run_b.pk).update(samples_path="")  # e.g. an imported result without samples
    run_b.refresh_from_db()
    comparison = runs_compare(run_a=run_a, run_b=run_b)
    assert comparison.samples_problem
    judged = [row for row in comparison.columns if row.paired]
    assert judged and all(row.paired.test == STDERR_Z for row in judged)
