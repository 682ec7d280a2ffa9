"""Hostile or broken model folders get a clear message in the submit form, the inspect partial and the
folder browser: never a 500, never a file read outside the model roots, nothing stored."""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import time
from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse

from leaderboard.model_browser import model_folder_list
from leaderboard.model_inspection import ModelFolderError, model_folder_inspect
from leaderboard.models import RegisteredModel
from runs.models import EvaluationRun
from tests.factories import user_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client):
    client.force_login(user_create())
    return client


@pytest.fixture
def outside(tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("TOP SECRET CONTENT")
    return folder


def _safetensors(file, header_len: int, body: bytes = b"") -> None:
    file.write_bytes(struct.pack("<Q", header_len) + body)


def _adapter(folder, base) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": base}))


def _link(link, target) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(target)


# Each case builds a folder from the tiny model and gives (path, base, message the user must see).
def case_empty_safetensors(model, root, outside):
    (model / "model.safetensors").write_bytes(b"")
    return str(model), "", "is empty or shorter than its header"


def case_header_past_the_end(model, root, outside):
    _safetensors(model / "model.safetensors", 1000, b'{"a": 1}')
    return str(model), "", "header length runs past the end of the file"


def case_absurd_header_length(model, root, outside):
    _safetensors(model / "model.safetensors", 2**63 - 1, b"{}")
    return str(model), "", "header length runs past the end of the file"


def case_header_over_the_cap(model, root, outside):
    # A sparse 150 MB file declaring a 120 MB header: within the file, over safetensors' 100 MB cap.
    with (model / "model.safetensors").open("wb") as handle:
        handle.write(struct.pack("<Q", 120_000_000))
        handle.truncate(150_000_000)
    return str(model), "", "header length runs past the end of the file"


def case_header_not_json(model, root, outside):
    _safetensors(model / "model.safetensors", 5, b"{abc}")
    return str(model), "", "header is not valid JSON"


def case_header_bad_shape(model, root, outside):
    header = json.dumps({"w": {"dtype": "F32", "shape": ["x"], "data_offsets": [0, 0]}}).encode()
    _safetensors(model / "model.safetensors", len(header), header)
    return str(model), "", "has no valid shape"


def case_weights_link_to_a_text_file(model, root, outside):
    (root / "notes.txt").write_text("just notes, not weights")
    _link(model / "model.safetensors", root / "notes.txt")
    return str(model), "", "not a valid safetensors file"


def case_bin_weights_link_to_a_text_file(model, root, outside):
    (root / "notes.txt").write_text("just notes, not weights")
    (model / "model.safetensors").unlink()
    _link(model / "pytorch_model.bin", root / "notes.txt")
    return str(model), "", "is empty or not a weight file"


def case_weights_link_outside_the_roots(model, root, outside):
    _link(model / "model.safetensors", outside / "secret.txt")
    return str(model), "", "is a link to a place outside the allowed model roots"


def case_config_link_outside_the_roots(model, root, outside):
    (outside / "config.json").write_text((model / "config.json").read_text())
    _link(model / "config.json", outside / "config.json")
    return str(model), "", "is a link to a place outside the allowed model roots"


def case_tokenizer_link_outside_the_roots(model, root, outside):
    _link(model / "tokenizer.json", outside / "secret.txt")
    return str(model), "", "is a link to a place outside the allowed model roots"


def case_nested_link_outside_the_roots(model, root, outside):
    (model / "additional_chat_templates").mkdir()
    _link(model / "additional_chat_templates" / "x.jinja", outside / "secret.txt")
    return str(model), "", "is a link to a place outside the allowed model roots"


def case_git_link_outside_the_roots(model, root, outside):
    _link(model / ".git", outside)
    return str(model), "", "is a link to a place outside the allowed model roots"


def case_dangling_link(model, root, outside):
    _link(model / "tokenizer.json", root / "gone")
    return str(model), "", "is a link to nothing"


def case_fifo_config(model, root, outside):
    (model / "config.json").unlink()
    os.mkfifo(model / "config.json")
    return str(model), "", "is not a regular file"


def case_config_not_an_object(model, root, outside):
    (model / "config.json").write_text("[1, 2]")
    return str(model), "", "is not a JSON object"


def case_config_deeply_nested(model, root, outside):
    (model / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    return str(model), "", "is not valid JSON"


def case_adapter_base_is_itself(model, root, outside):
    _adapter(root / "selfish", str(root / "selfish"))
    return str(root / "selfish"), "", "is that folder itself"


def case_adapter_cycle(model, root, outside):
    _adapter(root / "a", str(root / "b"))
    _adapter(root / "b", str(root / "a"))
    return str(root / "a"), "", "is itself an adapter"


def case_adapter_base_not_a_string(model, root, outside):
    (root / "odd").mkdir()
    (root / "odd" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": ["x"]}))
    return str(root / "odd"), "", "must be a folder path"


def case_adapter_base_outside_the_roots(model, root, outside):
    shutil.copytree(model, outside / "base")
    _adapter(root / "lora", str(outside / "base"))
    return str(root / "lora"), "", "outside the allowed model roots"


def case_adapter_base_link_outside_the_roots(model, root, outside):
    shutil.copytree(model, outside / "base")
    _link(root / "base-link", outside / "base")
    _adapter(root / "lora", str(root / "base-link"))
    return str(root / "lora"), "", "outside the allowed model roots"


def case_symlink_loop(model, root, outside):
    _link(root / "loop", root / "loop")
    return str(root / "loop"), "", "loop of symbolic links"


def case_symlink_cycle(model, root, outside):
    _link(root / "ping", root / "pong")
    _link(root / "pong", root / "ping")
    return str(root / "ping" / "x"), "", "loop of symbolic links"


def case_long_component(model, root, outside):
    return str(root / ("x" * 300)), "", "longer than 255 bytes"


def case_long_component_in_the_base(model, root, outside):
    _adapter(root / "lora", str(root / ("y" * 300)))
    return str(root / "lora"), "", "longer than 255 bytes"


def case_file_not_folder(model, root, outside):
    return str(model / "config.json"), "", "is a file; give the model's folder"


def case_nul_in_path(model, root, outside):
    return str(model) + "\0/x", "", "NUL character"


CASES = [value for name, value in dict(globals()).items() if name.startswith("case_")]


@pytest.fixture(params=CASES, ids=lambda case: case.__name__.removeprefix("case_"))
def bad_folder(request, tiny_model, model_root, outside):
    return request.param(tiny_model, model_root, outside)


def test_inspection_refuses_with_a_message(bad_folder):
    path, base, message = bad_folder
    started = time.monotonic()
    with pytest.raises(ModelFolderError, match=message) as error:
        model_folder_inspect(path, base_model_path=base)
    assert time.monotonic() - started < 30  # no header of gigabytes was read
    assert "TOP SECRET" not in str(error.value)


def _answered_by_the_nul_guard(response, *paths) -> bool:
    """A NUL in any parameter is answered 400 by the site before any view (config.middleware); the folder
    checks refuse it too (the inspection tests above call them directly)."""
    if any("\0" in p for p in paths):
        assert response.status_code == 400
        return True
    return False


def test_submit_form_shows_the_message_and_stores_nothing(logged_in, bad_folder):
    path, base, message = bad_folder
    response = logged_in.post(
        reverse("leaderboard:submit"),
        {
            "storage_path": path,
            "base_model_path": base,
            "precision": "float32",
            "weight_type": "original",
            "model_type": "pretrained",
            "suite": "openllm_v1",
        },
    )
    html = unescape(response.content.decode())
    assert "TOP SECRET" not in html
    assert not RegisteredModel.objects.exists() and not EvaluationRun.objects.exists()
    if _answered_by_the_nul_guard(response, path, base):
        return
    assert response.status_code == 200
    assert message in html


def test_inspect_partial_shows_the_message(logged_in, bad_folder):
    path, base, message = bad_folder
    response = logged_in.get(reverse("leaderboard:submit_inspect"), {"storage_path": path, "base_model_path": base})
    html = unescape(response.content.decode())
    assert "TOP SECRET" not in html
    if not _answered_by_the_nul_guard(response, path, base):
        assert response.status_code == 200 and message in html


def test_browser_answers_every_bad_folder(logged_in, bad_folder, model_root):
    path, _base, message = bad_folder
    response = logged_in.get(reverse("leaderboard:submit_browse"), {"path": path})
    html = unescape(response.content.decode())
    assert "TOP SECRET" not in html
    if _answered_by_the_nul_guard(response, path):
        return
    assert response.status_code == 200
    if any(word in message for word in ("loop", "NUL", "longer", "is a file")) and not os.path.isdir(
        path.replace("\0", "")
    ):
        assert message in html  # the path itself is bad: said, and the roots listed instead
        assert str(model_root) in html


def test_browser_lists_around_broken_entries(model_root):
    (model_root / "ok").mkdir()
    (model_root / "loop").symlink_to(model_root / "loop")
    (model_root / "dangling").symlink_to(model_root / "gone")
    os.mkfifo(model_root / "fifo")
    assert [entry.name for entry in model_folder_list(raw_path=str(model_root)).entries] == ["ok"]


def test_browser_skips_names_that_are_not_utf8(client, model_root):
    os.mkdir(os.fsencode(str(model_root)) + b"/bad-\xff-name")
    (model_root / "fine").mkdir()
    client.force_login(user_create())
    response = client.get(reverse("leaderboard:submit_browse"), {"path": str(model_root)})
    assert response.status_code == 200 and "fine" in response.content.decode()


def _as_nobody(function):
    """Run ``function`` in a forked child with the uid of nobody (the tests run as root, who may read
    anything); returns what it returned or the text of the ModelFolderError it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no Django database use, only the file system
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                outcome = f"returned {function()!r}"
            except ModelFolderError as exc:
                outcome = f"ModelFolderError: {exc}"
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
                outcome = f"CRASH {type(exc).__name__}: {exc}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to nobody")
def test_unreadable_folders_and_files_are_reported(tiny_model_template, settings):
    # A world-traversable root (pytest's tmp folders are private to root), a folder only root may read,
    # and a model whose config.json only root may read.
    root = Path(tempfile.mkdtemp(prefix="model-root-", dir="/tmp"))
    model = shutil.copytree(tiny_model_template, root / "model")
    (root / "locked").mkdir()
    for folder in (root, model):
        folder.chmod(0o755)
    for file in model.iterdir():
        file.chmod(0o644)
    (root / "locked").chmod(0o700)
    (model / "config.json").chmod(0o600)
    settings.MODEL_ROOTS = [root.resolve()]
    try:
        for target in (root / "locked", model):
            assert _as_nobody(lambda target=target: model_folder_inspect(str(target), load_check=False)).startswith(
                "ModelFolderError: The site is not allowed to read"
            )
        assert _as_nobody(lambda: model_folder_list(raw_path=str(root / "locked"))).startswith(
            "ModelFolderError: The site is not allowed to read"
        )
        listed = _as_nobody(lambda: [e.name for e in model_folder_list(raw_path=str(root)).entries])
        assert listed == "returned ['locked', 'model']"
    finally:
        shutil.rmtree(root, ignore_errors=True)
