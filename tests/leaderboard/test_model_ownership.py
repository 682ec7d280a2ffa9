"""Registering a folder never changes who owns a model: no takeover of another team's (private) model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.urls import reverse

from leaderboard.models import RegisteredModel
from leaderboard.services import ModelFolderRefused, model_get_or_register, model_register
from runs.models import EvaluationRun
from tests.factories import user_create

pytestmark = pytest.mark.django_db

REFUSED = "is registered as a private model of another team"


@pytest.fixture
def teams():
    a, b = Group.objects.create(name="team-a"), Group.objects.create(name="team-b")
    return {
        "a": a,
        "b": b,
        "alice": user_create(groups=(a,)),
        "amir": user_create(groups=(a,)),
        "bob": user_create(groups=(b,)),
    }


def _submit(client, user, path, **fields):
    client.force_login(user)
    data = {
        "storage_path": str(path),
        "precision": "float32",
        "weight_type": "original",
        "model_type": "pretrained",
        "suite": "openllm_v1",
        "display_name": "",
        **fields,
    }
    return client.post(reverse("leaderboard:submit"), {k: v for k, v in data.items() if v is not None})


def _row(model: RegisteredModel) -> dict:
    model.refresh_from_db()
    return {**model_to_dict(model), "submitted_at": model.submitted_at}


def _change_revision(folder) -> None:
    (folder / "generation_config.json").write_text('{"do_sample": false}')


def test_private_folder_of_another_team_is_refused_whatever_the_precision_or_revision(client, teams, tiny_model):
    assert (
        _submit(
            client, teams["alice"], tiny_model, private="on", group=teams["a"].pk, display_name="team-a/secret"
        ).status_code
        == 302
    )
    model = RegisteredModel.objects.get()
    before, runs = _row(model), EvaluationRun.objects.count()

    for fields in (
        {},
        {"precision": "bfloat16"},
        {"display_name": "mine now", "private": "on", "group": teams["b"].pk},
    ):
        response = _submit(client, teams["bob"], tiny_model, **fields)
        assert response.status_code == 200 and REFUSED in response.content.decode()
    _change_revision(tiny_model)
    assert REFUSED in _submit(client, teams["bob"], tiny_model).content.decode()

    assert _row(model) == before
    assert RegisteredModel.objects.count() == 1 and EvaluationRun.objects.count() == runs
    # Alice's teammate may re-run it; the service refuses Bob too, whoever calls it.
    assert _submit(client, teams["amir"], tiny_model, force="on").status_code == 302
    with pytest.raises(ModelFolderRefused):
        model_register(storage_path=str(tiny_model), owner=teams["bob"], precision="float32")


def test_rerunning_a_visible_model_makes_the_submitters_run_and_leaves_the_row(client, teams, tiny_model):
    assert _submit(client, teams["alice"], tiny_model, display_name="team-a/public").status_code == 302
    model = RegisteredModel.objects.get()
    before = _row(model)

    response = _submit(
        client,
        teams["bob"],
        tiny_model,
        display_name="bob's now",
        private="on",
        group=teams["b"].pk,
        revision_note="hijack",
        use_chat_template="on",
        model_type="chat",
        force="on",
    )
    assert response.status_code == 302
    run = EvaluationRun.objects.latest("pk")
    assert run.submitted_by == teams["bob"] and run.model_id == model.pk
    assert response["Location"] == reverse("runs:detail", args=[run.pk])
    assert _row(model) == before  # every field, owner, group, private flag and name included
    assert RegisteredModel.objects.count() == 1


def test_a_changed_folder_becomes_the_submitters_new_row(client, teams, tiny_model):
    _submit(client, teams["alice"], tiny_model, display_name="team-a/public")
    first = RegisteredModel.objects.get()
    before = _row(first)
    _change_revision(tiny_model)
    assert (
        _submit(
            client, teams["bob"], tiny_model, display_name="team-b/v2", private="on", group=teams["b"].pk
        ).status_code
        == 302
    )
    second = RegisteredModel.objects.exclude(pk=first.pk).get()
    assert (second.owner, second.group, second.private, second.display_name) == (
        teams["bob"],
        teams["b"],
        True,
        "team-b/v2",
    )
    assert second.revision != first.revision and _row(first) == before
    # Now the folder has a row private to team B: Alice's team may no longer submit it.
    assert REFUSED in _submit(client, teams["alice"], tiny_model, force="on").content.decode()


def test_the_command_line_never_changes_an_existing_row(teams, tiny_model):
    model = model_register(
        storage_path=str(tiny_model),
        owner=teams["alice"],
        group=teams["a"],
        private=True,
        display_name="team-a/secret",
        precision="float32",
    )
    before = _row(model)
    # What `manage.py evaluate` calls: no owner, no privacy, another name.
    again, created = model_get_or_register(
        storage_path=str(tiny_model), display_name="cli", precision="float32", use_chat_template=True
    )
    assert again.pk == model.pk and not created and _row(model) == before


def test_the_database_refuses_a_second_live_row(teams, tiny_model):
    model = model_register(storage_path=str(tiny_model), owner=teams["alice"], precision="float32")
    fields = {f: getattr(model, f) for f in ("storage_path", "revision", "precision", "weight_type", "base_model_path")}
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisteredModel.objects.create(display_name="dup", **fields)
    # A deleted row does not count: the folder can be registered again after a deletion.
    RegisteredModel.objects.filter(pk=model.pk).update(deleted=True)
    assert model_get_or_register(storage_path=str(tiny_model), owner=teams["bob"], precision="float32")[1] is True
