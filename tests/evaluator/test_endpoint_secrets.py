"""Hole 1 of issue #10: a user can make the site use only secrets placed for that purpose.

Keys typed into the form are stored encrypted and never shown back; named secrets come only from the
administrator's folder (no links out of it) or environment prefix. Hostile names are refused at the form
and, with the row or the run's spec changed behind the site's back, on the worker; canaries planted in
files and variables never reach a page, an export, an error or a log.
"""

from __future__ import annotations

import json
import logging
import os

import pytest
from django.db import connection
from django.urls import reverse

from evaluator.endpoint_secrets import key_decrypt, key_encrypt
from evaluator.models import LLMEndpoint, TargetKind
from evaluator.services import evaluation_submit
from runs.choices import RunStatus
from runs.execution import run_execute
from runs.models import EvaluationRun
from tests.evaluator.canned_server import CannedServer, chat_reply
from tests.evaluator.factories import dataset_make
from tests.factories import user_create

pytestmark = pytest.mark.django_db

FILE_CANARY = "CANARY-file-7c1d9e2b"  # in a file outside the secrets folder
ENV_CANARY = "CANARY-env-5a8f3e61"  # in variables outside the prefix (SECRET_KEY among them)
TYPED_CANARY = "sk-CANARY-typed-41b7d0c3"  # a key typed into the form
PREFIX = "LBTEST_SECRET_"
HOSTILE_FILE_NAMES = [
    "/proc/self/environ",
    "/etc/shadow",
    "../outside/secret.txt",
    "link-out",
    ".hidden",
    "a/b",
    "x" * 101,
    "..",
    "judge\x00",
]


@pytest.fixture
def secrets_dir(settings, tmp_path, monkeypatch):
    """The administrator's secrets folder, a canary file outside it (and a link to it inside), canary variables."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(FILE_CANARY)
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "judge").write_text("sk-judge-from-file\n")
    (folder / "binary").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + FILE_CANARY.encode())
    (folder / "big").write_text("k" * 9000)
    (folder / ".hidden").write_text(FILE_CANARY)
    (folder / "link-out").symlink_to(outside / "secret.txt")
    # Kubernetes mounts secrets as links into a ..data folder beside them: a link that stays inside works.
    (folder / "..data").mkdir()
    (folder / "..data" / "k8s").write_text("sk-k8s-style")
    (folder / "k8s").symlink_to(folder / "..data" / "k8s")
    settings.ENDPOINT_SECRETS_DIR = str(folder)
    settings.ENDPOINT_SECRETS_ENV_PREFIX = PREFIX
    settings.ENDPOINT_ALLOWED_HOSTS = ["127.0.0.0/8"]
    monkeypatch.setenv("SECRET_KEY", ENV_CANARY)
    monkeypatch.setenv("LBTEST_CANARY", ENV_CANARY)
    monkeypatch.setenv(PREFIX + "TEAMKEY", "sk-team-from-env")
    return folder


@pytest.fixture
def user(client):
    user = user_create()
    client.force_login(user)
    return user


def endpoint_form(base_url: str, **fields) -> dict:
    return {
        "name": fields.pop("name", "judge"),
        "kind": "openai",
        "base_url": base_url,
        "model_name": "canned",
        "secret_kind": "",
        "secret_name": "",
        "api_key": "",
        "local_path": "",
        "temperature": 0,
        "max_tokens": 64,
        "timeout_s": 5,
        "max_concurrency": 1,
        "max_retries": 0,
        "is_judge": "on",
        **fields,
    }


def assert_no_canary(*texts) -> None:
    shadow_head = _shadow_head()
    for text in texts:
        text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
        for canary in (FILE_CANARY, ENV_CANARY, TYPED_CANARY):
            assert canary not in text, text[:2000]
        if shadow_head:
            assert shadow_head not in text, text[:2000]


def _shadow_head() -> str:
    try:
        with open("/etc/shadow") as f:
            return f.readline().split(":")[1][:12] or ""  # a password hash (or "*"): nothing a page shows
    except (OSError, IndexError):
        return ""


def run_with_target(endpoint: LLMEndpoint, *, owner=None) -> EvaluationRun:
    """An evaluator run whose model under test is ``endpoint`` (exact match needs no judge)."""
    dataset = dataset_make(owner=owner)
    return evaluation_submit(
        dataset_version=dataset.latest_version,
        target_kind=TargetKind.ENDPOINT,
        target_endpoint=endpoint,
        metric_keys=["exact_match"],
        submitted_by=owner,
    )


# -- named secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE_FILE_NAMES)
def test_form_refuses_a_secret_file_outside_the_folder(client, user, secrets_dir, name):
    with CannedServer(body=chat_reply()) as server:
        response = client.post(
            reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, secret_kind="file", secret_name=name)
        )
    page = response.content.decode()
    assert not LLMEndpoint.objects.exists()
    assert_no_canary(page)
    if "\0" in name:  # answered 400 before any view (config.middleware); secret_name_check refuses it too
        assert response.status_code == 400
        return
    assert 'class="errorlist' in page and any(
        reason in page
        for reason in ("not a secret name", "not a file inside the secrets folder", "at most 100 characters")
    ), page[-3000:]


@pytest.mark.parametrize("name", ["SECRET_KEY", "LBTEST_CANARY", "CANARY", "../SECRET_KEY"])
def test_form_refuses_a_variable_outside_the_prefix(client, user, secrets_dir, name):
    with CannedServer(body=chat_reply()) as server:
        page = client.post(
            reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, secret_kind="env", secret_name=name)
        ).content.decode()
    assert not LLMEndpoint.objects.exists()
    assert "There is no secret" in page or "not a secret name" in page, page[-3000:]
    assert_no_canary(page)


def test_the_old_free_form_secret_field_is_gone(client, user, secrets_dir):
    with CannedServer(body=chat_reply()) as server:
        response = client.post(
            reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, api_key_secret="/proc/self/environ")
        )
        assert response.status_code == 302
        endpoint = LLMEndpoint.objects.get()
        assert endpoint.secret_kind == "" and endpoint.secret_name == "" and endpoint.api_key_encrypted == ""
        client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk]))
        assert server.authorizations == ["Bearer not-needed"]


def test_placed_secrets_are_used_where_the_call_is_made(client, user, secrets_dir):
    """A file in the folder (also one linked inside it, as Kubernetes mounts them) and a variable with the prefix:
    Test connection sends each as the Bearer token, and the pages name the secret, never its value."""
    with CannedServer(body=chat_reply()) as server:
        for name, kind, secret in (("f", "file", "judge"), ("k", "file", "k8s"), ("e", "env", "TEAMKEY")):
            response = client.post(
                reverse("evaluator:endpoint_new"),
                endpoint_form(server.base_url, name=name, secret_kind=kind, secret_name=secret),
            )
            assert response.status_code == 302, response.content.decode()[-2000:]
            checked = client.post(reverse("evaluator:endpoint_check", args=[LLMEndpoint.objects.get(name=name).pk]))
            assert 'data-check="ok"' in checked.content.decode()
        assert server.authorizations == ["Bearer sk-judge-from-file", "Bearer sk-k8s-style", "Bearer sk-team-from-env"]
    index = client.get(reverse("evaluator:index")).content.decode()
    assert "sk-judge-from-file" not in index and "sk-team-from-env" not in index


def test_a_binary_or_oversized_secret_file_gets_a_clear_message(client, user, secrets_dir):
    with CannedServer(body=chat_reply()) as server:
        page = client.post(
            reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, secret_kind="file", secret_name="binary")
        ).content.decode()
        assert "The secret “binary” is not UTF-8 text (a binary file?)" in page
        page = client.post(
            reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, secret_kind="file", secret_name="big")
        ).content.decode()
        assert "The secret “big” is larger than 8 KB" in page
        assert not LLMEndpoint.objects.exists()
        # The same file swapped in after the endpoint was saved: Test connection and the run say so too.
        endpoint = LLMEndpoint.objects.create(
            name="swapped",
            base_url=server.base_url,
            model_name="canned",
            secret_kind="file",
            secret_name="binary",
            owner=user,
            max_retries=0,
        )
        checked = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
        assert 'data-check="failed"' in checked and "is not UTF-8 text (a binary file?)" in checked
        run = run_with_target(endpoint, owner=user)
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert server.requests == []
    error = EvaluationRun.objects.get(pk=run.pk).error_message
    assert "The secret “binary” is not UTF-8 text" in error
    assert_no_canary(checked, page, error)


# (PostgreSQL stores no NUL character, so "judge\x00" cannot be written into a row or spec: the form test has it.)
HOSTILE_REFERENCES = [{"kind": "file", "name": name} for name in HOSTILE_FILE_NAMES if "\x00" not in name] + [
    {"kind": "env", "name": "SECRET_KEY"},
    {"kind": "env", "name": "LBTEST_CANARY"},
    {"kind": "env", "name": "../x"},
    {"kind": "file", "name": ["/etc/shadow"]},
    {"kind": "ftp", "name": "judge"},
]


@pytest.mark.parametrize("reference", HOSTILE_REFERENCES, ids=lambda r: f"{r['kind']}:{r['name']!s:.30}")
def test_the_worker_refuses_a_tampered_row_or_spec(client, user, secrets_dir, caplog, reference):
    """Written straight into the database (no form in the way): the run fails before any call, naming nothing
    but the secret, and no canary reaches the run, its pages, its export or the log."""
    caplog.set_level(logging.DEBUG)
    with CannedServer(body=chat_reply()) as server:
        tampered_row = LLMEndpoint.objects.create(
            name="row",
            base_url=server.base_url,
            model_name="canned",
            secret_kind=reference["kind"],
            secret_name=str(reference["name"])[:100],
            owner=user,
            max_retries=0,
        )
        clean = LLMEndpoint.objects.create(
            name="clean", base_url=server.base_url, model_name="canned", owner=user, max_retries=0
        )
        runs = [run_with_target(tampered_row, owner=user), run_with_target(clean, owner=user)]
        spec = runs[1].spec
        spec["target"]["endpoint"]["secret"] = reference
        EvaluationRun.objects.filter(pk=runs[1].pk).update(spec=spec)
        checked = client.post(reverse("evaluator:endpoint_check", args=[tampered_row.pk])).content.decode()
        for run in runs:
            assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert server.requests == []
    assert 'data-check="failed"' in checked
    texts = [checked, caplog.text]
    for run in runs:
        run.refresh_from_db()
        assert run.error_message.startswith("Cannot call the model under test:"), run.error_message
        texts += [
            run.error_message,
            list(run.events.values_list("message", flat=True)),
            run.log,
            client.get(reverse("evaluator:run", args=[run.pk])).content.decode(),
            client.get(reverse("runs:detail", args=[run.pk])).content.decode(),
            client.get(reverse("evaluator:run_export", args=[run.pk, "json"])).content.decode(),
        ]
    assert_no_canary(*texts)


def test_a_run_queued_with_the_old_field_is_refused(user, secrets_dir):
    with CannedServer(body=chat_reply()) as server:
        run = run_with_target(
            LLMEndpoint.objects.create(name="old", base_url=server.base_url, model_name="canned"), owner=user
        )
        spec = run.spec
        del spec["target"]["endpoint"]["secret"]
        spec["target"]["endpoint"]["api_key_secret"] = "/etc/shadow"
        EvaluationRun.objects.filter(pk=run.pk).update(spec=spec)
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert server.requests == []
    assert "queued before API keys were moved" in EvaluationRun.objects.get(pk=run.pk).error_message


# -- keys typed into the form --------------------------------------------------------------------------


def _raw_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM evaluator_llmendpoint")
        return repr(cursor.fetchall())


def test_a_typed_key_is_stored_encrypted_and_never_shown(client, user, secrets_dir, caplog, admin_client):
    caplog.set_level(logging.DEBUG)
    with CannedServer(body=chat_reply("the answer")) as server:
        response = client.post(reverse("evaluator:endpoint_new"), endpoint_form(server.base_url, api_key=TYPED_CANARY))
        assert response.status_code == 302, response.content.decode()[-2000:]
        endpoint = LLMEndpoint.objects.get()
        assert endpoint.secret_kind == "stored" and endpoint.api_key_encrypted
        assert TYPED_CANARY not in _raw_rows()  # raw SQL: only the Fernet token is in the table
        assert key_decrypt(endpoint.api_key_encrypted, endpoint_name="judge") == TYPED_CANARY
        checked = client.post(reverse("evaluator:endpoint_check", args=[endpoint.pk])).content.decode()
        run = run_with_target(endpoint, owner=user)
        assert run_execute(run_id=run.pk) == RunStatus.SUCCEEDED, EvaluationRun.objects.get(pk=run.pk).error_message
        assert set(server.authorizations) == {f"Bearer {TYPED_CANARY}"} and len(server.requests) == 4
    run.refresh_from_db()
    assert run.spec["target"]["endpoint"]["secret"] == {"kind": "stored", "name": ""}
    pages = [
        checked,
        caplog.text,
        run.spec,
        run.error_message,
        run.log,
        client.get(reverse("evaluator:index")).content.decode(),
        client.get(reverse("evaluator:endpoint_edit", args=[endpoint.pk])).content.decode(),
        client.get(reverse("evaluator:run", args=[run.pk])).content.decode(),
        client.get(reverse("runs:detail", args=[run.pk])).content.decode(),
        client.get(reverse("evaluator:run_export", args=[run.pk, "json"])).content.decode(),
        client.get(reverse("evaluator:run_export", args=[run.pk, "csv"])).content.decode(),
        admin_client.get(reverse("admin:evaluator_llmendpoint_change", args=[endpoint.pk])).content.decode(),
        admin_client.get(reverse("admin:evaluator_llmendpoint_changelist")).content.decode(),
    ]
    assert_no_canary(*pages)
    assert all(endpoint.api_key_encrypted not in (p if isinstance(p, str) else json.dumps(p)) for p in pages)
    assert "A key is stored for this endpoint" in pages[6]


def test_a_stored_key_is_replaced_removed_and_kept_to_its_url(client, user, secrets_dir):
    client.post(reverse("evaluator:endpoint_new"), endpoint_form("http://127.0.0.1:9/v1", api_key="sk-first"))
    endpoint = LLMEndpoint.objects.get()
    edit = reverse("evaluator:endpoint_edit", args=[endpoint.pk])
    # Keeping the key while moving the URL: refused, the key must be typed again for the new URL.
    moved = client.post(edit, endpoint_form("http://127.0.0.2:9/v1", secret_kind="stored")).content.decode()
    assert "The base URL changed: type the key again" in moved
    assert (
        client.post(edit, endpoint_form("http://127.0.0.1:9/v1", secret_kind="stored", max_tokens=32)).status_code
        == 302
    )
    endpoint.refresh_from_db()
    assert endpoint.max_tokens == 32 and key_decrypt(endpoint.api_key_encrypted, endpoint_name="x") == "sk-first"
    assert (
        client.post(edit, endpoint_form("http://127.0.0.2:9/v1", secret_kind="stored", api_key="sk-second")).status_code
        == 302
    )
    endpoint.refresh_from_db()
    assert key_decrypt(endpoint.api_key_encrypted, endpoint_name="x") == "sk-second"
    assert (
        client.post(edit, endpoint_form("http://127.0.0.2:9/v1", secret_kind="stored", remove_key="on")).status_code
        == 302
    )
    endpoint.refresh_from_db()
    assert endpoint.secret_kind == "" and endpoint.api_key_encrypted == ""
    bad = client.post(edit, endpoint_form("http://127.0.0.2:9/v1", api_key="two words\n")).content.decode()
    assert "An API key is one line" in bad and "two words" not in bad


def test_another_team_cannot_edit_an_endpoint(client, user):
    other = LLMEndpoint.objects.create(name="theirs", base_url="http://127.0.0.1:9/v1", owner=user_create())
    unowned = LLMEndpoint.objects.create(name="unowned", base_url="http://127.0.0.1:9/v1")
    for endpoint in (other, unowned):
        assert client.get(reverse("evaluator:endpoint_edit", args=[endpoint.pk])).status_code == 403
        assert (
            client.post(
                reverse("evaluator:endpoint_edit", args=[endpoint.pk]),
                endpoint_form("http://127.0.0.1:10/v1", name="x"),
            ).status_code
            == 403
        )
    assert LLMEndpoint.objects.get(pk=other.pk).base_url == "http://127.0.0.1:9/v1"


def test_no_encryption_key_no_stored_keys(client, user, settings):
    from config.checks import check_field_encryption_key

    settings.FIELD_ENCRYPTION_KEYS = []
    page = client.post(reverse("evaluator:endpoint_new"), endpoint_form("http://127.0.0.1:9/v1", api_key="sk-x"))
    assert "has not set FIELD_ENCRYPTION_KEY" in page.content.decode() and not LLMEndpoint.objects.exists()
    settings.DEBUG = False
    assert [e.id for e in check_field_encryption_key(None)] == ["config.E101"]
    settings.FIELD_ENCRYPTION_KEYS = ["not a fernet key"]
    from config.checks import check_endpoint_settings

    assert "config.E102" in [e.id for e in check_endpoint_settings(None)]


def test_keys_rotate_to_a_new_encryption_key(settings, user):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    endpoint = LLMEndpoint.objects.create(name="e", secret_kind="stored", api_key_encrypted=key_encrypt("sk-rotate"))
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("endpoint_keys_rotate", stdout=open(os.devnull, "w"))
    settings.FIELD_ENCRYPTION_KEYS = [new]
    endpoint.refresh_from_db()
    assert key_decrypt(endpoint.api_key_encrypted, endpoint_name="e") == "sk-rotate"
    settings.FIELD_ENCRYPTION_KEYS = [old]
    from evaluator.endpoint_secrets import SecretMissing

    with pytest.raises(SecretMissing, match="cannot be decrypted"):
        key_decrypt(endpoint.api_key_encrypted, endpoint_name="e")


def test_a_stored_key_goes_only_to_the_url_it_was_stored_with(user, secrets_dir):
    """A spec pointed at another (allowed) server, or at another endpoint's stored key: that key stays home."""
    with CannedServer(body=chat_reply()) as home, CannedServer(body=chat_reply()) as elsewhere:
        endpoint = LLMEndpoint.objects.create(
            name="home",
            base_url=home.base_url,
            model_name="canned",
            max_retries=0,
            secret_kind="stored",
            api_key_encrypted=key_encrypt(TYPED_CANARY),
        )
        run = run_with_target(endpoint, owner=user)
        spec = run.spec
        spec["target"]["endpoint"]["base_url"] = elsewhere.base_url
        EvaluationRun.objects.filter(pk=run.pk).update(spec=spec)
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert home.requests == [] and elsewhere.requests == []
    assert "is sent only to the endpoint's current URL" in EvaluationRun.objects.get(pk=run.pk).error_message


def test_an_upgraded_endpoint_needs_its_key_before_it_runs(user, secrets_dir):
    with CannedServer(body=chat_reply()) as server:
        endpoint = LLMEndpoint.objects.create(name="upgraded", base_url=server.base_url, model_name="canned")
        run = run_with_target(endpoint, owner=user)
        # Queued before the upgrade marked the endpoint (a submission after it is refused: test_services).
        LLMEndpoint.objects.filter(pk=endpoint.pk).update(api_key_needed=True)
        assert run_execute(run_id=run.pk) == RunStatus.FAILED
        assert server.requests == []
    assert "upgraded needs its API key set again" in EvaluationRun.objects.get(pk=run.pk).error_message


def test_a_resolved_key_is_not_in_the_configs_repr(secrets_dir):
    from evaluator.endpoints import endpoint_config

    config = endpoint_config(
        {
            "kind": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "name": "e",
            "secret": {"kind": "env", "name": "TEAMKEY"},
        }
    )
    assert config.api_key == "sk-team-from-env" and "sk-team-from-env" not in repr(config)
