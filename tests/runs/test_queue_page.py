"""The queue page: every run with its status, progress and failure reason, cancel for the submitter, live refresh."""

import pytest
from django.urls import reverse

from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db


def test_queue_shows_progress_reasons_and_cancel_only_to_the_submitter(client):
    submitter, other = user_create(), user_create()
    model = registered_model_create(display_name="acme/queued")
    running = run_create_row(model=model, status=RunStatus.RUNNING, submitted_by=submitter, progress_done=3,
                             progress_total=10)
    failed = run_create_row(model=model, status=RunStatus.FAILED, submitted_by=submitter,
                            error_message="Dataset allenai/ai2_arc is missing from the mirror at /srv/mirror")
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
