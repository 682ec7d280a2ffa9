"""Submission: a path on the model storage is validated, with a clear message for each problem."""

import json

import pytest
from django.urls import reverse

from runs.choices import RunStatus
from runs.models import EvaluationRun
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client):
    user = user_create()
    client.force_login(user)
    client.user = user
    return client


def _post(client, **fields):
    data = {
        "precision": "float32",
        "weight_type": "original",
        "model_type": "pretrained",
        "suite": "openllm_v1",
        **fields,
    }
    return client.post(reverse("leaderboard:submit"), data)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc", "outside the allowed model roots"),
        ("missing-folder", "does not exist"),
        ("", "This field is required"),
    ],
)
def test_bad_paths_are_refused_with_a_message(logged_in, path, message):
    response = _post(logged_in, storage_path=path)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not EvaluationRun.objects.exists()


def test_remote_code_model_is_refused(logged_in, tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "x.Y"}
    (tiny_model / "config.json").write_text(json.dumps(config))
    assert "needs custom code" in _post(logged_in, storage_path=str(tiny_model)).content.decode()


def test_adapter_weight_type_needs_an_adapter_folder(logged_in, tiny_model):
    html = _post(logged_in, storage_path=str(tiny_model), weight_type="adapter").content.decode()
    assert "not a PEFT adapter" in html


def test_delta_needs_a_base(logged_in, tiny_model):
    html = _post(logged_in, storage_path=str(tiny_model), weight_type="delta").content.decode()
    assert "Delta weights need the folder of their base model" in html


def test_submit_page_lists_roots_and_suites(logged_in, model_root):
    html = logged_in.get(reverse("leaderboard:submit")).content.decode()
    assert str(model_root) in html
    assert "Open LLM Leaderboard v1" in html and "KoBEST" in html


def test_queue_shows_failure_reasons_and_only_visible_runs(logged_in):
    mine = registered_model_create(display_name="org/visible")
    hidden = registered_model_create(display_name="other/hidden", private=True)
    run_create_row(model=mine, status=RunStatus.FAILED, error_message="Dataset allenai/ai2_arc is missing")
    run_create_row(model=hidden, status=RunStatus.QUEUED)
    html = logged_in.get(reverse("runs:queue")).content.decode()
    assert "org/visible" in html and "Dataset allenai/ai2_arc is missing" in html
    assert "other/hidden" not in html


def test_submitter_can_cancel_a_queued_run_others_cannot(client, logged_in):
    run = run_create_row(model=registered_model_create(), status=RunStatus.QUEUED, submitted_by=logged_in.user)
    other = user_create()
    client.force_login(other)
    assert client.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    client.force_login(logged_in.user)
    response = client.post(reverse("runs:cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    html = client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert f"cancelled by {logged_in.user.username}" in html


def test_run_status_partial_polls_only_while_active(logged_in):
    active = run_create_row(model=registered_model_create(), status=RunStatus.RUNNING, submitted_by=logged_in.user)
    done = run_create_row(model=registered_model_create(), status=RunStatus.SUCCEEDED, submitted_by=logged_in.user)
    partial = logged_in.get(reverse("runs:detail", args=[active.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 3s"' in partial and "<html" not in partial
    assert (
        "hx-trigger"
        not in logged_in.get(reverse("runs:detail", args=[done.pk]), HTTP_HX_REQUEST="true").content.decode()
    )
