"""What a run with nothing scored shows, and which runs *Compare with* offers and accepts."""

import importlib

import pytest
from django.apps import apps
from django.urls import reverse

from evaluator.models import SampleResult
from runs.choices import RunStatus
from runs.models import EvaluationRun, RunEvent, Score
from tests.evaluator.factories import dataset_make, evaluator_run_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def test_a_metric_with_no_scored_sample_says_so_on_the_run_page(client, user):
    dataset = dataset_make(owner=user)
    run = evaluator_run_make(
        version=dataset.latest_version,
        metrics=("faithfulness", "exact_match"),
        value=lambda position, metric: None if metric == "faithfulness" else 1.0,
    )
    page = client.get(reverse("evaluator:run", args=[run.pk])).content.decode()
    assert 'data-none-scored="faithfulness"' in page and 'data-none-scored="exact_match"' not in page


def test_earlier_runs_with_every_score_unscored_are_marked_failed_by_the_migration(user):
    dataset = dataset_make(owner=user)
    nothing = evaluator_run_make(
        version=dataset.latest_version, metrics=("faithfulness",), value=lambda position, metric: None
    )
    Score.objects.create(run=nothing, task="evaluator", metric="faithfulness", value=None, sample_count=0)
    something = evaluator_run_make(version=dataset.latest_version)
    migration = importlib.import_module("evaluator.migrations.0007_unscored_runs_failed")
    migration.unscored_runs_fail(apps, None)
    nothing.refresh_from_db()
    assert nothing.status == RunStatus.FAILED and "no score at all" in nothing.error_message.lower()
    assert not Score.objects.filter(run=nothing).exists()
    assert SampleResult.objects.filter(run=nothing).count() == 3  # the reasons stay readable
    assert RunEvent.objects.filter(run=nothing, from_status="succeeded", to_status="failed").exists()
    assert EvaluationRun.objects.get(pk=something.pk).status == RunStatus.SUCCEEDED


def test_compare_with_offers_only_succeeded_runs_of_the_same_version(client, user):
    dataset = dataset_make(owner=user)
    version = dataset.latest_version
    run = evaluator_run_make(version=version)
    same = evaluator_run_make(version=version)
    failed = evaluator_run_make(version=version, status=RunStatus.FAILED)
    other_version = evaluator_run_make(version=dataset_make(owner=user).latest_version)
    page = client.get(reverse("evaluator:run", args=[run.pk])).content.decode()
    start = page.index('name="b"')
    offered = page[start : page.index("</select>", start)]
    assert f'value="{same.pk}"' in offered
    assert f'value="{failed.pk}"' not in offered and f'value="{other_version.pk}"' not in offered
    failed_page = client.get(reverse("evaluator:run", args=[failed.pk])).content.decode()
    assert 'name="b"' not in failed_page  # a failed run has nothing to compare


@pytest.mark.parametrize("which", ["failed", "other_version", "itself"])
def test_compare_refuses_other_runs_with_a_clear_400(client, user, which):
    dataset = dataset_make(owner=user)
    run = evaluator_run_make(version=dataset.latest_version)
    other = {
        "failed": lambda: evaluator_run_make(version=dataset.latest_version, status=RunStatus.FAILED),
        "other_version": lambda: evaluator_run_make(version=dataset_make(owner=user).latest_version),
        "itself": lambda: run,
    }[which]()
    for a, b in ((run, other), (other, run)):
        response = client.get(reverse("evaluator:compare"), {"a": a.pk, "b": b.pk})
        assert response.status_code == 400
        assert 'id="bad-request"' in response.content.decode() and "compare" in response.content.decode()


def test_compare_never_shows_another_groups_private_run(client, user):
    mine = evaluator_run_make(version=dataset_make(owner=user).latest_version)
    other = user_create()
    secret = evaluator_run_make(version=dataset_make(owner=other, private=True, name="Secret set").latest_version)
    response = client.get(reverse("evaluator:compare"), {"a": mine.pk, "b": secret.pk})
    assert response.status_code == 404 and "Secret set" not in response.content.decode()
