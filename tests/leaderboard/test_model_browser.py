"""The submit form's server-side browser of the model roots, and the check of a folder before queueing."""

import pytest
from django.urls import reverse

from leaderboard.model_browser import model_folder_list
from leaderboard.model_inspection import ModelFolderError
from tests.factories import user_create

pytestmark = pytest.mark.django_db


def test_lists_roots_then_folders_marking_models(tiny_model, model_root, settings, tmp_path):
    (model_root / "team" / "empty").mkdir(parents=True)
    adapter = model_root / "team" / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    roots = model_folder_list()
    assert [entry.path for entry in roots.entries] == [str(model_root)] and roots.current is None

    top = model_folder_list(raw_path=str(model_root))
    assert [(e.name, e.is_model) for e in top.entries] == [("team", False), ("tiny-llama", True)]
    assert top.parent is None
    team = model_folder_list(raw_path=str(model_root / "team"))
    assert [(e.name, e.is_adapter) for e in team.entries] == [("empty", False), ("lora", True)]
    assert team.parent == str(model_root)


def test_never_lists_outside_the_roots(model_root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (model_root / "escape").symlink_to(outside)
    for path in (str(outside), str(model_root / ".."), str(model_root / "escape"), "/etc"):
        with pytest.raises(ModelFolderError, match="outside the allowed model roots"):
            model_folder_list(raw_path=path)


def test_browse_and_inspect_partials(client, tiny_model, model_root):
    client.force_login(user_create())
    html = client.get(reverse("leaderboard:submit_browse"), {"path": str(model_root)}).content.decode()
    assert "tiny-llama" in html and "Use this folder" in html
    refused = client.get(reverse("leaderboard:submit_browse"), {"path": "/etc"}).content.decode()
    assert "outside the allowed model roots" in refused and str(model_root) in refused

    inspected = client.get(reverse("leaderboard:submit_inspect"), {"storage_path": str(tiny_model)}).content.decode()
    assert "The folder can be evaluated" in inspected and "LlamaForCausalLM" in inspected
    missing = client.get(
        reverse("leaderboard:submit_inspect"), {"storage_path": str(model_root / "nope")}
    ).content.decode()
    assert "does not exist" in missing


def test_submit_page_offers_the_browser(client):
    client.force_login(user_create())
    html = client.get(reverse("leaderboard:submit")).content.decode()
    assert 'id="browse-roots"' in html and reverse("leaderboard:submit_inspect") in html
