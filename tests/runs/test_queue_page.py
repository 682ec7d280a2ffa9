"""The queue page: every run with its status, progress and failure reason, cancel for the submitter, live refresh."""

import pytest
from django.urls import reverse

from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db


def test_queue_shows_progress_reasons_and_cancel_only_to_the_submitter(client):
    submitter, other = user_create(), user_create()
    model = registered_model_create(display_name="acme/queued")
    running = run_create_row(
        model=model, status=RunStatus.RUNNING, submitted_by=submitter, progress_done=3, progress_total=10
    )
    failed = run_create_row(
        model=model,
        status=RunStatus.FAILED,
        submitted_by=submitter,
        error_message="Dataset allenai/ai2_arc is missing from the mirror at /srv/mirror",
    )
    client.force_login(submitter)
    html = client.get(reverse("runs:queue")).content.decode()
    assert 'hx-trigger="every 5s"' in html  # refreshes while a run is active
    assert '<progress max="10" value="3">' in html
    assert "allenai/ai2_arc is missing" in html
    assert reverse("runs:cancel", args=[running.pk]) in html
    assert reverse("runs:cancel", args=[failed.pk]) not in html

    client.force_login(other)
    assert reverse("runs:cancel", args=[running.pk]) not in client.get(reverse("runs:queue")).content.decode()
    partial = client.get(reverse("runs:queue"), headers={"HX-Request": "true"}).content.decode()
    assert partial.startswith('\n<div id="queue-table"') and "<html" not in partial


def test_queue_stops_refreshing_when_nothing_is_active(client):
    run_create_row(model=registered_model_create(), status=RunStatus.SUCCEEDED)
    client.force_login(user_create())
    assert "every 5s" not in client.get(reverse("runs:queue")).content.decode()


def test_queue_durations_read_as_minutes_and_seconds(client):
    from datetime import timedelta

    from django.utils import timezone

    started = timezone.now() - timedelta(hours=2)
    for seconds in (8.594585, 99.2, 3723):
        run_create_row(
            model=registered_model_create(),
            status=RunStatus.SUCCEEDED,
            started_at=started,
            finished_at=started + timedelta(seconds=seconds),
        )
    client.force_login(user_create())
    html = client.get(reverse("runs:queue")).content.decode()
    assert ">8s<" in html and ">1m 39s<" in html and ">1h 02m 03s<" in html
    assert "0:00:08.594585" not in html and "0:01:39" not in html


def test_queue_names_an_evaluator_runs_dataset_and_target_but_not_another_groups_private_ones(client):
    from django.contrib.auth.models import Group

    from evaluator.models import EvaluatorRun, TargetKind
    from tests.evaluator.factories import dataset_make, endpoint_make, evaluator_run_make

    team, others = Group.objects.create(name="team"), Group.objects.create(name="others")
    alice, bob = user_create(groups=(team,)), user_create(groups=(others,))
    public = dataset_make(name="Company FAQ")
    private = dataset_make(name="Secret merger Q&A", private=True, group=team)
    endpoint = endpoint_make(name="team-vllm-qwen", private=True, group=team)
    on_endpoint = evaluator_run_make(version=public.latest_version)  # unsubmitted: listed to everyone
    EvaluatorRun.objects.filter(run=on_endpoint).update(target_kind=TargetKind.ENDPOINT, target_endpoint=endpoint)
    evaluator_run_make(version=private.latest_version)  # no submitter, no model: the queue lists it to everyone

    client.force_login(alice)
    html = client.get(reverse("runs:queue")).content.decode()
    assert "Company FAQ v1" in html and "team-vllm-qwen" in html and "Secret merger Q&amp;A v1" in html
    assert "responses in the dataset" in html

    client.force_login(bob)
    html = client.get(reverse("runs:queue")).content.decode()
    assert "Secret merger" not in html and "a private dataset" in html
    assert "team-vllm-qwen" not in html and "a private endpoint" in html and "Company FAQ v1" in html
