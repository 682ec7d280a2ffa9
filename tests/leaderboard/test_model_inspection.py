"""Model folders are validated from their files before anything is queued."""

import json
import os
import shutil

import pytest
from django.core.management import call_command

from leaderboard.model_inspection import ModelFolderError, folder_revision, model_folder_inspect


def test_make_tiny_model_writes_a_folder_transformers_loads(model_root):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = model_root / "made-by-command"
    call_command("make_tiny_model", str(target), "--seed", "3")
    model = AutoModelForCausalLM.from_pretrained(target, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
    assert type(model).__name__ == "LlamaForCausalLM"
    ids = tokenizer("대한민국의 수도는 서울 answer 42").input_ids
    assert tokenizer.decode(ids) == "대한민국의 수도는 서울 answer 42"
    logits = model(**tokenizer("hello", return_tensors="pt")).logits
    assert logits.shape[-1] == len(tokenizer)


def test_inspect_reads_facts_from_the_files(tiny_model):
    info = model_folder_inspect(str(tiny_model))
    assert info.architecture == "LlamaForCausalLM"
    assert info.num_params == 147_776
    assert info.license == "apache-2.0"
    assert not info.is_adapter and not info.moe and not info.merged
    assert len(info.revision) == 64


def test_revision_changes_with_the_weights_and_not_with_other_files(tiny_model):
    before = folder_revision(tiny_model)
    (tiny_model / "notes.txt").write_text("unrelated")
    assert folder_revision(tiny_model) == before
    with (tiny_model / "model.safetensors").open("ab") as handle:
        handle.write(b"\0")
    assert folder_revision(tiny_model) != before


def test_relative_path_is_read_inside_the_first_root(tiny_model):
    assert model_folder_inspect("tiny-llama", load_check=False).path == tiny_model


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda root, tmp: "/etc", "outside the allowed model roots"),
        (lambda root, tmp: str(root / ".." / ".."), "outside the allowed model roots"),
        (lambda root, tmp: str(root / "nope"), "does not exist"),
        (lambda root, tmp: "", "Give the path of a model folder"),
    ],
)
def test_bad_paths_get_clear_messages(model_root, tmp_path, make_path, message):
    with pytest.raises(ModelFolderError, match=message):
        model_folder_inspect(make_path(model_root, tmp_path))


def test_symlink_out_of_the_root_is_refused(model_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, model_root / "sneaky")
    with pytest.raises(ModelFolderError, match="outside the allowed model roots"):
        model_folder_inspect(str(model_root / "sneaky"))


def test_folder_without_config_is_not_a_model(model_root):
    (model_root / "empty").mkdir()
    with pytest.raises(ModelFolderError, match="not a model folder"):
        model_folder_inspect(str(model_root / "empty"))


def test_remote_code_is_refused(tiny_model):
    config = json.loads((tiny_model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (tiny_model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="needs custom code"):
        model_folder_inspect(str(tiny_model))


def test_broken_tokenizer_is_reported(tiny_model):
    (tiny_model / "tokenizer.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="tokenizer"):
        model_folder_inspect(str(tiny_model))


def test_config_without_weights_is_reported(tiny_model):
    (tiny_model / "model.safetensors").unlink()
    with pytest.raises(ModelFolderError, match="no weight files"):
        model_folder_inspect(str(tiny_model))


def test_adapter_needs_a_usable_base(tiny_model, model_root):
    adapter = model_root / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": ""}))
    with pytest.raises(ModelFolderError, match="give the folder of its base model"):
        model_folder_inspect(str(adapter))
    with pytest.raises(ModelFolderError, match="base model is not usable"):
        model_folder_inspect(str(adapter), base_model_path="/etc")
    info = model_folder_inspect(str(adapter), base_model_path=str(tiny_model))
    assert info.is_adapter and info.base_model_path == tiny_model
    assert info.architecture == "LlamaForCausalLM"


def test_setup_demo_is_idempotent(db, model_root):
    call_command("setup_demo")
    call_command("setup_demo")
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(username="demo").count() == 1
    assert (model_root / "tiny-llama" / "config.json").is_file()
    shutil.rmtree(model_root / "tiny-llama")
