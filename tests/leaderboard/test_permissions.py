"""Login is required everywhere; private models and their scores are seen only by their group and staff."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from leaderboard.models import RegisteredModel
from leaderboard.ranking import leaderboard_entry_refresh
from runs.choices import RunStatus
from runs.models import Score
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return Group.objects.create(name="team-a")


@pytest.fixture
def models_and_users(team):
    member = user_create(groups=(team,))
    outsider = user_create()
    staff = user_create(is_staff=True)
    public = registered_model_create(display_name="org/public-model")
    private = registered_model_create(display_name="team-a/secret-model", private=True, group=team)
    for model in (public, private):
        run = run_create_row(
            model=model, status=RunStatus.SUCCEEDED, finished_at=timezone.now(), spec={"suite": "openllm_v1"}
        )
        Score.objects.create(run=run, task="arc_challenge", metric="acc_norm", value=0.5)
        leaderboard_entry_refresh(model_id=model.pk, suite_name="openllm_v1")
    return {"member": member, "outsider": outsider, "staff": staff, "public": public, "private": private}


@pytest.mark.parametrize("url_name", ["leaderboard:index", "leaderboard:about", "admin:index"])
def test_pages_need_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_health_check_is_public(client):
    assert client.get(reverse("leaderboard:healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(("who", "sees_private"), [("member", True), ("outsider", False), ("staff", True)])
def test_private_model_visibility(models_and_users, who, sees_private):
    user = models_and_users[who]
    visible = set(RegisteredModel.objects.visible_to(user).values_list("display_name", flat=True))
    assert "org/public-model" in visible
    assert ("team-a/secret-model" in visible) is sees_private
    assert models_and_users["private"].is_visible_to(user) is sees_private


@pytest.mark.parametrize(("who", "sees_private"), [("member", True), ("outsider", False), ("staff", True)])
def test_leaderboard_page_hides_private_rows(client, models_and_users, who, sees_private):
    client.force_login(models_and_users[who])
    # Private models are hidden by default, as on the Open LLM Leaderboard; the toggle shows those the user may see.
    html = client.get(reverse("leaderboard:index"), {"show_private": "1"}).content.decode()
    assert "org/public-model" in html
    assert ("team-a/secret-model" in html) is sees_private
    assert "team-a/secret-model" not in client.get(reverse("leaderboard:index")).content.decode()


def test_owner_sees_own_private_model_without_a_group():
    owner = user_create()
    model = registered_model_create(private=True, owner=owner)
    assert model.is_visible_to(owner)
    assert not model.is_visible_to(user_create())


def test_logged_in_user_sees_an_empty_leaderboard(client):
    client.force_login(user_create())
    response = client.get(reverse("leaderboard:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "No model has a finished run of this suite yet." in html
    for tab in ("LLM Benchmark", "About"):
        assert tab in html
