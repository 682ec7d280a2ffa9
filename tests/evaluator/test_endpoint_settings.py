"""The upgrade from the free-form "API key secret", and the settings of endpoints and secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

BASE_DIR = Path(__file__).resolve().parents[2]
OLD = [("evaluator", "0002_owned_fields_verbose_names")]


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_drops_every_secret_it_cannot_trust():
    """Paths and names that do not fit the named-secret rules are dropped (the endpoint then needs its key);
    a plain name becomes a named secret under the prefix. Specs lose the old field, and texts that may have
    quoted what was read are cleared."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(OLD)
    others = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "evaluator"]
    apps = executor.loader.project_state(OLD + others).apps
    endpoint_model = apps.get_model("evaluator", "LLMEndpoint")
    old_values = {
        "environ": "/proc/self/environ",
        "shadow": "/etc/shadow",
        "secrets": "/run/secrets/judge",
        "traversal": "../../etc/passwd",
        "spaced": "MY KEY",
        "named": "JUDGE_KEY",
        "key": "SECRET_KEY",
        "none": "",
    }
    for name, value in old_values.items():
        endpoint_model.objects.create(
            name=name,
            api_key_secret=value,
            last_check_ok=False,
            last_check_message="HTTP 401: Illegal header value b'Bearer root:$6$x'",
        )
    run_model = apps.get_model("runs", "EvaluationRun")
    endpoint_spec = {
        "id": 1,
        "name": "shadow",
        "kind": "openai",
        "base_url": "http://x/v1",
        "api_key_secret": "/etc/shadow",
    }
    run = run_model.objects.create(
        kind="evaluator",
        status="failed",
        queued_at=timezone.now(),
        error_message="Illegal header value b'Bearer root:$6$abc'",
        spec={
            "target": {"kind": "endpoint", "endpoint": dict(endpoint_spec)},
            "judge": {**endpoint_spec, "api_key_secret": "JUDGE_KEY"},
        },
    )
    apps.get_model("runs", "RunEvent").objects.create(
        run=run, to_status="failed", at=timezone.now(), message="Illegal header value b'Bearer root:$6$abc'"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    from evaluator.models import LLMEndpoint
    from runs.models import EvaluationRun

    rows = {e.name: e for e in LLMEndpoint.objects.all()}
    for name in ("environ", "shadow", "secrets", "traversal", "spaced"):
        assert (rows[name].secret_kind, rows[name].secret_name, rows[name].api_key_needed) == ("", "", True), name
    for name in ("named", "key"):
        assert (rows[name].secret_kind, rows[name].secret_name, rows[name].api_key_needed) == (
            "env",
            old_values[name],
            False,
        )
    assert (rows["none"].secret_kind, rows["none"].api_key_needed) == ("", False)
    assert all(e.last_check_message == "" and e.last_check_ok is None for e in rows.values())
    run = EvaluationRun.objects.get()
    assert "api_key_secret" not in json.dumps(run.spec)
    assert run.spec["target"]["endpoint"]["secret"] == {"kind": "", "name": ""}
    assert run.spec["judge"]["secret"] == {"kind": "env", "name": "JUDGE_KEY"}
    assert "root:" not in run.error_message and "root:" not in run.events.get().message


@pytest.mark.django_db
def test_the_endpoint_list_says_which_endpoints_need_their_key(client):
    from django.urls import reverse

    from evaluator.models import LLMEndpoint
    from tests.factories import user_create

    user = user_create()
    client.force_login(user)
    endpoint = LLMEndpoint.objects.create(
        name="upgraded", base_url="http://127.0.0.1:9/v1", api_key_needed=True, owner=user
    )
    page = client.get(reverse("evaluator:index")).content.decode()
    assert f'data-key-needed="{endpoint.pk}"' in page and "needs its API key set again" in page
    edit = client.get(reverse("evaluator:endpoint_edit", args=[endpoint.pk])).content.decode()
    assert 'id="key-needed"' in edit


def _settings_values(env: dict[str, str]) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({'hosts': settings.ENDPOINT_ALLOWED_HOSTS, 'keys': settings.FIELD_ENCRYPTION_KEYS}))"
    )
    names = {"DEBUG", "ENDPOINT_ALLOWED_HOSTS", "FIELD_ENCRYPTION_KEY", "FIELD_ENCRYPTION_KEY_FILE", "SECRET_KEY", "DB"}
    clean = {k: v for k, v in os.environ.items() if k not in names}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_and_production_defaults(tmp_path):
    embedded = _settings_values({})
    assert embedded["hosts"] == ["localhost", "127.0.0.0/8", "::1"]
    assert len(embedded["keys"]) == 1 and embedded["keys"] == _settings_values({})["keys"]  # stable across restarts
    production = _settings_values({"DEBUG": "false", "SECRET_KEY": "x" * 60})
    assert production == {"hosts": [], "keys": []}
    key_file = tmp_path / "fek"
    key_file.write_text("new-key,old-key\n")
    listed = _settings_values(
        {
            "DEBUG": "false",
            "ENDPOINT_ALLOWED_HOSTS": "vllm.internal, *.gpu.internal,10.0.0.0/8",
            "FIELD_ENCRYPTION_KEY_FILE": str(key_file),
        }
    )
    assert listed == {"hosts": ["vllm.internal", "*.gpu.internal", "10.0.0.0/8"], "keys": ["new-key", "old-key"]}
    assert _settings_values({"ENDPOINT_ALLOWED_HOSTS": ""})["hosts"] == []  # set but empty: nothing, even in DEBUG


def test_deploy_check_refuses_a_missing_encryption_key():
    names = {"DEBUG", "FIELD_ENCRYPTION_KEY", "FIELD_ENCRYPTION_KEY_FILE", "DB", "DB_NAME", "CELERY_BROKER_URL"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": "x7$kq-production-secret-for-tests-only-9f2e1d0c8b7a6e5d4c3b2a1f0e9d8c7b",
            "ALLOWED_HOSTS": "leaderboard.internal",
            "MODEL_ROOTS": str(BASE_DIR),
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert "config.E101" in result.stderr and "config.W101" in result.stderr, result.stderr
