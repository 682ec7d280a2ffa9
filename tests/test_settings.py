"""The one settings module switches between the embedded default and production by environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[1]
PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "x7$kq-production-secret-for-tests-only-9f2e1d0c8b7a6e5d4c3b2a1f0e9d8c7b",
    "DB": "postgres",
    "DB_NAME": "leaderboard",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "leaderboard.internal",
    "MODEL_ROOTS": str(BASE_DIR),  # any folder that exists
    "FIELD_ENCRYPTION_KEY": "yF3m9sQ1Xq6bq0c1Jc0s6m8m0cV1Yw2t3H5rj8m1n0A=",  # a Fernet key for tests only
    "ENDPOINT_ALLOWED_HOSTS": "vllm.internal,10.0.0.0/8",
}


def _settings_in_subprocess(env: dict[str, str]) -> dict:
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "db = settings.DATABASES['default'];"
        "print(json.dumps({'engine': db['ENGINE'], 'name': str(db['NAME']), 'broker': settings.CELERY_BROKER_URL,"
        " 'debug': settings.DEBUG, 'transport': settings.CELERY_BROKER_TRANSPORT_OPTIONS}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DB", "DB_NAME", "CELERY_BROKER_URL", "DEBUG"}}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DB", "DB_NAME", "CELERY_BROKER_URL", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
    )


def test_embedded_default_needs_no_service():
    values = _settings_in_subprocess({})
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["name"].endswith("var/site.sqlite3")
    assert values["broker"].startswith("sqla+sqlite:///")
    assert values["transport"] == {}


def test_production_settings_use_postgres_and_redis():
    values = _settings_in_subprocess(PRODUCTION_ENV)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["broker"] == "redis://127.0.0.1:6379/0"
    assert values["debug"] is False
    # Longer than the longest run, so Redis never hands a running evaluation to a second worker.
    assert values["transport"]["visibility_timeout"] > 24 * 3600


def test_unknown_database_is_refused():
    result = _manage("check", env={"DB": "mysql"})
    assert result.returncode != 0
    assert "DB must be 'sqlite' or 'postgres'" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_refuses_the_placeholder_secret():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = _manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "config.E001" in result.stderr


def test_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(PRODUCTION_ENV["SECRET_KEY"] + "\n")
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"} | {"SECRET_KEY_FILE": str(secret_file)}
    assert _manage("check", "--deploy", "--fail-level", "WARNING", env=env).returncode == 0


def test_migrations_are_complete():
    result = _manage("makemigrations", "--check", "--dry-run", env={})
    assert result.returncode == 0, result.stdout


@pytest.mark.services
@pytest.mark.django_db
def test_postgres_connection_is_real():
    from django.db import connection

    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        assert "PostgreSQL" in cursor.fetchone()[0]
