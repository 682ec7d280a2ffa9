"""Concurrent identical submissions against the real PostgreSQL: each thread its own connection and its
own test Client, released together by a barrier. Database constraints (not check-then-insert) make one
model row per folder revision and one run per spec or per form, and every duplicate gets the existing one."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from leaderboard.models import RegisteredModel
from leaderboard.services import model_register
from runs.idempotency import submission_token_new
from runs.models import EvaluationRun
from tests.factories import user_create

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

N = 20


@pytest.fixture(autouse=True)
def _postgresql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL (the production database)")
    # The runs are not sent anywhere: what is counted here is rows.
    from runs import services

    monkeypatch.setattr(services, "run_enqueue", lambda *, run: None)


def _fire(users, url: str, data_for) -> list:
    """POST ``data_for(i)`` to ``url`` from N threads at once; each result is (status, location) or the exception."""
    barrier = threading.Barrier(len(users))
    results: list = [None] * len(users)

    def one(i: int) -> None:
        try:
            client = Client()
            client.force_login(users[i])
            barrier.wait(timeout=60)
            response = client.post(url, data_for(i))
            results[i] = (response.status_code, response.get("Location", ""))
        except Exception as exc:  # a 500 raises in the test client: counted as an error
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return results


def _submit_data(path, token: str | None = None, **fields):
    data = {
        "storage_path": str(path),
        "precision": "float32",
        "weight_type": "original",
        "model_type": "pretrained",
        "suite": "openllm_v1",
        **fields,
    }
    if token:
        data["submission_token"] = token
    return data


def _check(results) -> set[str]:
    errors = [r for r in results if not isinstance(r, tuple) or r[0] != 302]
    assert errors == [], errors[:3]
    return {location for _, location in results}


def test_one_form_posted_twenty_times_makes_one_forced_run(tiny_model):
    """Forced re-runs are new runs by design: only the form's token makes the twenty posts one."""
    user = user_create()
    model_register(storage_path=str(tiny_model), owner=user, precision="float32")
    token = submission_token_new()
    locations = _check(
        _fire([user] * N, reverse("leaderboard:submit"), lambda i: _submit_data(tiny_model, token, force="on"))
    )
    run = EvaluationRun.objects.get()
    assert locations == {reverse("runs:detail", args=[run.pk])}
    assert run.submitted_by == user and RegisteredModel.objects.count() == 1


def test_twenty_people_submitting_an_existing_folder_get_one_run(tiny_model):
    """Different users, different forms, same spec: the database's one-live-run-per-spec constraint decides."""
    users = [user_create() for _ in range(N)]
    model_register(storage_path=str(tiny_model), owner=users[0], precision="float32")
    locations = _check(
        _fire(users, reverse("leaderboard:submit"), lambda i: _submit_data(tiny_model, submission_token_new()))
    )
    run = EvaluationRun.objects.get()
    assert locations == {reverse("runs:detail", args=[run.pk])} and RegisteredModel.objects.count() == 1


def test_twenty_submissions_of_a_new_folder_make_one_model_and_one_run(tiny_model):
    user = user_create()
    token = submission_token_new()
    locations = _check(_fire([user] * N, reverse("leaderboard:submit"), lambda i: _submit_data(tiny_model, token)))
    model, run = RegisteredModel.objects.get(), EvaluationRun.objects.get()
    assert locations == {reverse("runs:detail", args=[run.pk])} and run.model == model and model.owner == user
    # Later submissions of the folder still work: the same run, or a new one when forced.
    client = Client()
    client.force_login(user)
    again = client.post(reverse("leaderboard:submit"), _submit_data(tiny_model, submission_token_new()))
    assert (again.status_code, again["Location"]) == (302, reverse("runs:detail", args=[run.pk]))
    forced = client.post(reverse("leaderboard:submit"), _submit_data(tiny_model, submission_token_new(), force="on"))
    assert forced.status_code == 302 and EvaluationRun.objects.count() == 2 and RegisteredModel.objects.count() == 1


def test_twenty_submissions_of_a_new_folder_by_twenty_people_make_one_model(tiny_model):
    users = [user_create() for _ in range(N)]
    locations = _check(
        _fire(
            users,
            reverse("leaderboard:submit"),
            lambda i: _submit_data(tiny_model, submission_token_new(), display_name=f"name {i}"),
        )
    )
    model, run = RegisteredModel.objects.get(), EvaluationRun.objects.get()
    assert len(locations) == 1 and run.model == model
    # The row is one submitter's, whole: name and owner from the same submission.
    assert model.display_name == f"name {users.index(model.owner)}"


def test_one_new_evaluation_form_posted_twenty_times_makes_one_run():
    from evaluator.models import EvaluatorRun
    from tests.evaluator.factories import dataset_make

    user = user_create()
    version = dataset_make(owner=user).latest_version
    token = submission_token_new()
    data = {
        "dataset_version": version.pk,
        "target_kind": "precomputed",
        "preset": "custom",
        "metrics": ["exact_match"],
        "prompt_template": "",
        "submission_token": token,
    }
    locations = _check(_fire([user] * N, reverse("evaluator:run_new"), lambda i: data))
    run = EvaluationRun.objects.get()
    assert locations == {reverse("evaluator:run", args=[run.pk])}
    assert EvaluatorRun.objects.get().run == run and run.submission_key == f"{user.pk}:{token}"
    assert Counter(r.kind for r in EvaluationRun.objects.all()) == {"evaluator": 1}
