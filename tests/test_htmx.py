"""Pages that htmx updates in place answer a fragment only to an htmx swap: a history restore (htmx 2
re-requests the whole page with HX-Request: true when the user goes Back and its cache misses) gets the
full page, and every such response says it varies on those headers, so no cache serves one for the other."""

from __future__ import annotations

import pytest
from django.urls import reverse

from runs.choices import RunStatus
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db

SWAP = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}


@pytest.fixture
def pages(client):
    """URL -> a marker only its fragment has at the start, for each page with an htmx-swapped part."""
    user = user_create()
    run = run_create_row(model=registered_model_create(), status=RunStatus.RUNNING, submitted_by=user)
    client.force_login(user)
    return {
        reverse("runs:queue"): '<div id="queue-table"',
        reverse("runs:detail", args=[run.pk]): '<div id="run-status"',
        reverse("leaderboard:index"): "",
        reverse("leaderboard:metrics_through_time"): "",
    }


def _vary(response) -> set[str]:
    return {header.strip().lower() for header in response.get("Vary", "").split(",")}


def test_a_swap_gets_the_fragment_and_a_history_restore_the_page(client, pages):
    for url, fragment_start in pages.items():
        page = client.get(url)
        fragment = client.get(url, headers=SWAP)
        restored = client.get(url, headers=HISTORY_RESTORE)
        assert page.status_code == fragment.status_code == restored.status_code == 200, url
        assert "<html" in page.content.decode(), url
        assert "<html" not in fragment.content.decode(), url
        assert fragment.content.decode().lstrip().startswith(fragment_start.lstrip()), url
        assert "<html" in restored.content.decode(), url
        for response in (page, fragment, restored):
            assert {"hx-request", "hx-history-restore-request"} <= _vary(response), (url, response.get("Vary"))


def test_only_htmx_own_true_counts_as_htmx(client, pages):
    # Anything but htmx's "true" (a hand-made or hostile header) is a page load.
    url = reverse("runs:queue")
    for value in ("1", "false", ""):
        assert "<html" in client.get(url, headers={"HX-Request": value}).content.decode(), value
