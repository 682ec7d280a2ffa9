"""Editing and deleting datasets and endpoints in the site: who may, what a refused delete says, the audit log."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from evaluator.endpoint_secrets import key_encrypt
from evaluator.models import DatasetRow, DatasetVersion, GoldenDataset, LLMEndpoint
from tests.evaluator.factories import dataset_make, endpoint_make, evaluator_run_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db
KEY = "sk-never-shown-3f9c1a"


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def test_the_owner_renames_describes_and_privatises_a_dataset(client, user):
    team = Group.objects.create(name="team")
    user.groups.add(team)
    dataset = dataset_make(owner=user, name="FAQ")
    assert 'id="dataset-edit"' in client.get(reverse("evaluator:dataset", args=[dataset.pk])).content.decode()
    url = reverse("evaluator:dataset_edit", args=[dataset.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"name": "사내 FAQ", "description": "HR questions", "private": "on"})
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert (dataset.name, dataset.description, dataset.private, dataset.group) == (
        "사내 FAQ",
        "HR questions",
        True,
        team,
    )
    event = AuditEvent.objects.get(action=AuditAction.DATASET_CHANGED)
    assert event.actor == user and sorted(event.detail["changed"]) == ["description", "group", "name", "private"]
    assert client.post(url, {"name": "", "description": ""}).status_code == 200  # the form says what is missing
    assert GoldenDataset.objects.get(pk=dataset.pk).name == "사내 FAQ"


def test_another_groups_datasets_cannot_be_edited_or_deleted(client, user):
    other = user_create()
    private = dataset_make(owner=other, private=True)
    public = dataset_make(owner=other)
    for name in ("evaluator:dataset_edit", "evaluator:dataset_delete"):
        assert client.get(reverse(name, args=[private.pk])).status_code == 404
        assert client.post(reverse(name, args=[private.pk]), {"name": "x"}).status_code == 404
        assert client.get(reverse(name, args=[public.pk])).status_code == 403
        assert client.post(reverse(name, args=[public.pk]), {"name": "x"}).status_code == 403
    assert GoldenDataset.objects.filter(pk__in=[private.pk, public.pk]).count() == 2
    unowned = dataset_make()  # anyone may add versions to it, but only staff delete it
    assert client.post(reverse("evaluator:dataset_delete", args=[unowned.pk])).status_code == 403
    assert not AuditEvent.objects.exists()


def test_an_unused_dataset_is_deleted_with_its_versions_and_audited(client, user):
    dataset = dataset_make(owner=user, name="Mistake")
    url = reverse("evaluator:dataset_delete", args=[dataset.pk])
    assert 'id="confirm-delete-button"' in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    assert (
        not GoldenDataset.objects.exists() and not DatasetVersion.objects.exists() and not DatasetRow.objects.exists()
    )
    event = AuditEvent.objects.get(action=AuditAction.DATASET_DELETED)
    assert (event.target_id, event.target_label, event.actor) == (str(dataset.pk), "Mistake", user)


def test_a_dataset_with_runs_is_kept_with_a_clear_message(client, user):
    dataset = dataset_make(owner=user, name="Used")
    run = evaluator_run_make(version=dataset.latest_version)
    url = reverse("evaluator:dataset_delete", args=[dataset.pk])
    page = client.get(url).content.decode()
    assert 'id="delete-in-use"' in page and f"#{run.pk}" in page and 'id="confirm-delete-button"' not in page
    response = client.post(url)
    assert response.status_code == 409
    assert f"#{run.pk}" in response.content.decode() and 'id="delete-refused"' in response.content.decode()
    assert GoldenDataset.objects.filter(pk=dataset.pk).exists()
    assert client.get(reverse("evaluator:run", args=[run.pk])).status_code == 200  # the run is intact
    assert not AuditEvent.objects.filter(action=AuditAction.DATASET_DELETED).exists()


def test_an_unused_endpoint_is_deleted_and_audited_without_its_key(client, user):
    endpoint = endpoint_make(name="old judge", owner=user, secret_kind="stored", api_key_encrypted=key_encrypt(KEY))
    page = client.get(reverse("evaluator:endpoint_edit", args=[endpoint.pk])).content.decode()
    assert 'id="endpoint-delete"' in page and KEY not in page
    url = reverse("evaluator:endpoint_delete", args=[endpoint.pk])
    confirm = client.get(url).content.decode()
    assert 'id="confirm-delete-button"' in confirm and KEY not in confirm
    assert client.post(url).status_code == 302
    assert not LLMEndpoint.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.ENDPOINT_DELETED)
    assert event.target_label == "old judge" and KEY not in str(event.detail)


def test_an_endpoint_used_by_runs_is_kept_and_another_groups_is_refused(client, user):
    judge = endpoint_make(name="judge", owner=user)
    run = evaluator_run_make(version=dataset_make(owner=user).latest_version, judge=judge)
    response = client.post(reverse("evaluator:endpoint_delete", args=[judge.pk]))
    assert response.status_code == 409 and f"#{run.pk}" in response.content.decode()
    assert LLMEndpoint.objects.filter(pk=judge.pk).exists()
    other = user_create()
    private = endpoint_make(owner=other, private=True)
    public = endpoint_make(owner=other)
    assert client.post(reverse("evaluator:endpoint_delete", args=[private.pk])).status_code == 404
    assert client.post(reverse("evaluator:endpoint_delete", args=[public.pk])).status_code == 403
    assert LLMEndpoint.objects.count() == 3 and not AuditEvent.objects.exists()
