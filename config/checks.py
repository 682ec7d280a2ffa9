"""System checks that `manage.py check --deploy` runs in production."""

import os

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_secret_key_is_not_placeholder(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the development placeholder.",
                hint="Set SECRET_KEY or SECRET_KEY_FILE.",
                id="config.E001",
            )
        ]
    return []


@register(deploy=True)
def check_production_services(app_configs, **kwargs):
    problems = []
    if not settings.DEBUG and settings.DB == "sqlite":
        problems.append(
            Warning("Production runs on SQLite.", hint="Set DB=postgres and the DB_* variables.", id="config.W001")
        )
    if not settings.DEBUG and settings.CELERY_BROKER_URL.startswith("sqla+"):
        problems.append(
            Warning(
                "Production uses the embedded SQLite broker.",
                hint="Set CELERY_BROKER_URL=redis://...",
                id="config.W002",
            )
        )
    return problems


@register()
def check_model_roots(app_configs, **kwargs):
    missing = [str(root) for root in settings.MODEL_ROOTS if not root.is_dir()]
    if missing:
        return [
            Warning(
                f"Model roots that do not exist: {', '.join(missing)}",
                hint="Create them or fix MODEL_ROOTS.",
                id="config.W003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_field_encryption_key(app_configs, **kwargs):
    """Typed API keys are stored encrypted: production needs its own key, not one derived in development."""
    if not settings.DEBUG and not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Error(
                "FIELD_ENCRYPTION_KEY is not set: endpoint API keys cannot be stored encrypted.",
                hint="Set FIELD_ENCRYPTION_KEY or FIELD_ENCRYPTION_KEY_FILE to a Fernet key: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
                id="config.E101",
            )
        ]
    return []


@register()
def check_endpoint_settings(app_configs, **kwargs):
    """Keys that are not Fernet keys and allowed-host entries that mean nothing fail at the first use: say so now."""
    from cryptography.fernet import Fernet

    from evaluator.url_policy import allowed_hosts_parse

    problems = []
    for number, key in enumerate(settings.FIELD_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                Error(
                    f"FIELD_ENCRYPTION_KEY: key {number} is not a Fernet key (32 url-safe base64 bytes).",
                    id="config.E102",
                )
            )
    try:
        hosts = allowed_hosts_parse(settings.ENDPOINT_ALLOWED_HOSTS)
    except ValueError as exc:
        problems.append(
            Error(str(exc), hint="Host names, *.suffix wildcards or networks such as 10.0.0.0/8.", id="config.E103")
        )
    else:
        if hosts.empty and not settings.DEBUG:
            problems.append(
                Warning(
                    "ENDPOINT_ALLOWED_HOSTS is empty: no evaluator endpoint can be used.",
                    hint="List the hosts and networks of your LLM servers.",
                    id="config.W101",
                )
            )
    folder = settings.ENDPOINT_SECRETS_DIR
    if folder and not os.path.isdir(folder):
        problems.append(Warning(f"ENDPOINT_SECRETS_DIR {folder} is not a folder.", id="config.W102"))
    return problems
