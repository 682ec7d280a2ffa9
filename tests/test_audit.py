"""The audit log: each recorded action writes exactly one event with its actor and address; the admin shows the log
to staff only, read-only; no event holds an endpoint's key."""

from __future__ import annotations

import json

import pytest
from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from audit.services import REDACTED, audit_record
from evaluator.models import GoldenDataset, LLMEndpoint
from leaderboard.models import RegisteredModel
from runs.choices import RunStatus
from runs.models import EvaluationRun
from tests.evaluator.factories import dataset_make, endpoint_make
from tests.factories import registered_model_create, run_create_row, user_create

pytestmark = pytest.mark.django_db

ADDRESS = "192.0.2.44"
KEY = "sk-live-0123456789-do-not-log"
CSV = "question,reference,response\nWhat is the VPN?,vpn.internal,vpn.internal\nWho approves?,The lead,The lead\n"


@pytest.fixture
def member():
    user = user_create(username="mallory")
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def staff():
    user = user_create(username="root", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    client.user = user
    return client


def the_event(action: AuditAction, user) -> AuditEvent:
    """The one event of ``action``, checked for its actor and address."""
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [str(e) for e in AuditEvent.objects.all()]
    event = events[0]
    assert event.actor == user and event.actor_name == user.get_username()
    assert event.ip_address == ADDRESS
    return event


def admin_form_data(model, obj, request_user, **changes) -> dict:
    """What the admin's change form would post for ``obj`` unchanged, then ``changes``."""
    request = RequestFactory().get("/")
    request.user = request_user
    form = admin.site._registry[model].get_form(request, obj)(instance=obj)
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.NullBooleanField):
            data[name] = {True: "true", False: "false"}.get(value, "unknown")
        elif isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif isinstance(field.widget, forms.MultiWidget):  # the admin's split date and time
            data.update(
                {f"{name}_{i}": part for i, part in enumerate(field.widget.decompress(value)) if part is not None}
            )
        elif value is not None:
            data[name] = value
    for name, value in changes.items():
        if value is False:
            data.pop(name, None)
        else:
            data[name] = "on" if value is True else value
    return data


# --- The site's own pages -----------------------------------------------------------------------------------------


def test_benchmark_submission(member, tiny_model):
    response = member.post(
        reverse("leaderboard:submit"),
        {
            "storage_path": str(tiny_model),
            "display_name": "acme/tiny",
            "precision": "float32",
            "weight_type": "original",
            "model_type": "pretrained",
            "suite": "openllm_v1",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = the_event(AuditAction.MODEL_SUBMITTED, member.user)
    model = RegisteredModel.objects.get()
    assert (event.target_type, event.target_id, event.target_label) == (
        "leaderboard.registeredmodel",
        str(model.pk),
        str(model),
    )
    assert event.detail["run"] == EvaluationRun.objects.get().pk and event.detail["suite"] == "openllm_v1"
    assert AuditEvent.objects.count() == 1


def test_run_cancel(member):
    run = run_create_row(model=registered_model_create(), status=RunStatus.QUEUED, submitted_by=member.user)
    assert member.post(reverse("runs:cancel", args=[run.pk])).status_code == 302
    event = the_event(AuditAction.RUN_CANCELLED, member.user)
    assert (event.target_type, event.target_id) == ("runs.evaluationrun", str(run.pk))
    # Refused (already cancelled): nothing more is recorded.
    assert member.post(reverse("runs:cancel", args=[run.pk])).status_code == 403
    assert AuditEvent.objects.count() == 1


def test_dataset_creation_and_new_versions(member):
    upload = SimpleUploadedFile("golden.csv", CSV.encode(), content_type="text/csv")
    assert (
        member.post(reverse("evaluator:dataset_new"), {"name": "FAQ", "description": "", "file": upload}).status_code
        == 302
    )
    dataset = GoldenDataset.objects.get()
    event = the_event(AuditAction.DATASET_CREATED, member.user)
    assert (event.target_id, event.detail) == (str(dataset.pk), {"rows": 2})

    url = reverse("evaluator:dataset", args=[dataset.pk])
    upload = SimpleUploadedFile("golden-2.csv", (CSV + "Third?,c,c\n").encode(), content_type="text/csv")
    assert member.post(url, {"upload-file": upload, "upload-note": "more"}).status_code == 302
    version = the_event(AuditAction.DATASET_VERSION_CREATED, member.user)
    assert version.target_type == "evaluator.datasetversion" and version.target_label == "FAQ v2"

    edited = member.post(
        url + "?v=2",
        {
            "edit-position": "1",
            "edit-question": "What is the VPN now?",
            "edit-reference": "x",
            "edit-contexts": "",
            "edit-response": "x",
            "edit-tags": "",
        },
    )
    assert edited.status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.DATASET_VERSION_CREATED).count() == 2
    assert AuditEvent.objects.count() == 3


def test_evaluation_submission(member):
    version = dataset_make().latest_version
    response = member.post(
        reverse("evaluator:run_new"),
        {
            "dataset_version": version.pk,
            "target_kind": "precomputed",
            "preset": "custom",
            "metrics": ["exact_match"],
            "prompt_template": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = the_event(AuditAction.EVALUATION_SUBMITTED, member.user)
    assert event.target_id == str(EvaluationRun.objects.get().pk)
    assert AuditEvent.objects.count() == 1


def test_endpoint_creation(member, tiny_model):
    response = member.post(
        reverse("evaluator:endpoint_new"),
        {
            "name": "tiny",
            "kind": "local",
            "base_url": "",
            "model_name": "",
            "api_key_secret": KEY,
            "api_key": KEY,
            "local_path": str(tiny_model),
            "temperature": 0,
            "max_tokens": 64,
            "timeout_s": 30,
            "max_concurrency": 1,
            "max_retries": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = the_event(AuditAction.ENDPOINT_CREATED, member.user)
    assert event.target_label == "tiny"
    assert KEY not in json.dumps(event.detail) + event.target_label


def test_endpoint_change_names_the_fields_never_the_key(member, settings):
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
    form = {
        "name": "judge",
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "model_name": "m",
        "secret_kind": "stored",
        "api_key": KEY,
        "temperature": 0,
        "max_tokens": 64,
        "timeout_s": 30,
        "max_concurrency": 1,
        "max_retries": 0,
        "is_judge": "on",
    }
    assert member.post(reverse("evaluator:endpoint_new"), form).status_code == 302
    endpoint = LLMEndpoint.objects.get(name="judge")
    changed = {**form, "model_name": "m2", "api_key": KEY + "-new"}
    response = member.post(reverse("evaluator:endpoint_edit", args=[endpoint.pk]), changed)
    assert response.status_code == 302, response.content.decode()[-2000:]
    event = the_event(AuditAction.ENDPOINT_CHANGED, member.user)
    assert "model_name" in event.detail["changed"]
    assert KEY not in json.dumps(event.detail) + event.target_label


# --- The admin --------------------------------------------------------------------------------------------------


def test_admin_flag_unflag_edit_and_delete_a_model(staff):
    model = registered_model_create(display_name="acme/flag-me")
    url = reverse("admin:leaderboard_registeredmodel_change", args=[model.pk])
    post = lambda **changes: staff.post(url, admin_form_data(RegisteredModel, model, staff.user, **changes))  # noqa: E731

    assert post(flagged=True).status_code == 302
    flagged = the_event(AuditAction.MODEL_FLAGGED, staff.user)
    assert flagged.target_id == str(model.pk)
    assert not AuditEvent.objects.filter(action=AuditAction.MODEL_CHANGED).exists()  # a flag is only a flag
    model.refresh_from_db()
    assert post(flagged=False).status_code == 302
    the_event(AuditAction.MODEL_UNFLAGGED, staff.user)
    model.refresh_from_db()
    assert post(display_name="acme/renamed").status_code == 302
    changed = the_event(AuditAction.MODEL_CHANGED, staff.user)
    assert changed.detail == {"added": False, "changed": {"display_name": "acme/renamed"}}

    delete = reverse("admin:leaderboard_registeredmodel_delete", args=[model.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 302
    deleted = the_event(AuditAction.MODEL_DELETED, staff.user)
    assert (deleted.target_id, deleted.target_label) == (str(model.pk), "acme/renamed @ " + model.revision[:10])
    assert AuditEvent.objects.count() == 4


def test_admin_bulk_delete_records_each_model(staff):
    models = [registered_model_create(), registered_model_create()]
    response = staff.post(
        reverse("admin:leaderboard_registeredmodel_changelist"),
        {"action": "delete_selected", "_selected_action": [m.pk for m in models], "post": "yes"},
    )
    assert response.status_code == 302 and not RegisteredModel.objects.exists()
    events = AuditEvent.objects.filter(action=AuditAction.MODEL_DELETED)
    assert sorted(int(e.target_id) for e in events) == sorted(m.pk for m in models)
    assert {(e.actor, e.ip_address) for e in events} == {(staff.user, ADDRESS)}


def test_admin_endpoint_change_and_delete_never_log_the_key(staff):
    endpoint = endpoint_make(name="judge")
    url = reverse("admin:evaluator_llmendpoint_change", args=[endpoint.pk])
    data = admin_form_data(LLMEndpoint, endpoint, staff.user, api_key_secret=KEY, model_name="judge-2")
    assert staff.post(url, data).status_code == 302
    changed = the_event(AuditAction.ENDPOINT_CHANGED, staff.user)
    assert "model_name" in changed.detail["changed"]
    delete = reverse("admin:evaluator_llmendpoint_delete", args=[endpoint.pk])
    assert staff.post(delete, {"post": "yes"}).status_code == 302
    the_event(AuditAction.ENDPOINT_DELETED, staff.user)
    for event in AuditEvent.objects.all():
        assert KEY not in json.dumps(event.detail) + event.target_label + event.target_id


def test_detail_keeps_secret_named_values_out():
    event = audit_record(
        action=AuditAction.ENDPOINT_CHANGED,
        detail={
            "api_key": KEY,
            "api_key_secret": KEY,
            "nested": {"password": KEY, "headers": [{"Authorization": f"Bearer {KEY}"}]},
            "token": KEY,
            "model_name": "judge",
        },
    )
    assert KEY not in json.dumps(event.detail)
    assert event.detail["api_key"] == REDACTED and event.detail["model_name"] == "judge"
    assert event.actor is None and event.ip_address is None


def test_the_actor_name_outlives_the_user(member):
    run = run_create_row(model=registered_model_create(), status=RunStatus.QUEUED, submitted_by=member.user)
    member.post(reverse("runs:cancel", args=[run.pk]))
    EvaluationRun.objects.filter(pk=run.pk).update(submitted_by=None)
    member.user.delete()
    event = AuditEvent.objects.get()
    assert event.actor is None and event.actor_name == "mallory"


def test_the_address_comes_from_the_trusted_proxy_rule(member, settings):
    settings.TRUSTED_PROXIES = [f"{ADDRESS}/32"]
    run = run_create_row(model=registered_model_create(), status=RunStatus.QUEUED, submitted_by=member.user)
    member.post(reverse("runs:cancel", args=[run.pk]), HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.3")
    assert AuditEvent.objects.get().ip_address == "198.51.100.3"


def test_only_staff_can_read_the_log_and_nobody_can_change_it(member, staff):
    audit_record(action=AuditAction.RUN_CANCELLED, actor=staff.user)
    changelist = reverse("admin:audit_auditevent_changelist")
    refused = member.get(changelist)
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
    assert "Audit" not in member.get(reverse("admin:index"), follow=True).content.decode()

    page = staff.get(changelist)
    assert page.status_code == 200 and "Run cancelled" in page.content.decode()
    for query in (
        {"action__exact": "run_cancelled"},
        {"actor__id__exact": staff.user.pk},
        {"q": "root"},
        {"at__gte": "2000-01-01 00:00:00+00:00"},
    ):
        assert staff.get(changelist, query).status_code == 200
    event = AuditEvent.objects.get()
    assert staff.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert staff.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert (
        staff.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "model_deleted"}).status_code
        == 403
    )
    assert AuditEvent.objects.get().action == AuditAction.RUN_CANCELLED


def test_a_staff_member_without_permissions_may_read_it():
    reader = user_create(username="ops", is_staff=True)
    client = Client()
    client.force_login(reader)
    audit_record(action=AuditAction.RUN_CANCELLED, actor=reader)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 200
