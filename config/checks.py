"""System checks that `manage.py check --deploy` runs in production."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_secret_key_is_not_placeholder(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.INSECURE_SECRET_KEY:
        return [Error("SECRET_KEY is the development placeholder.", hint="Set SECRET_KEY or SECRET_KEY_FILE.", id="config.E001")]
    return []


@register(deploy=True)
def check_production_services(app_configs, **kwargs):
    problems = []
    if not settings.DEBUG and settings.DB == "sqlite":
        problems.append(Warning("Production runs on SQLite.", hint="Set DB=postgres and the DB_* variables.", id="config.W001"))
    if not settings.DEBUG and settings.CELERY_BROKER_URL.startswith("sqla+"):
        problems.append(Warning("Production uses the embedded SQLite broker.", hint="Set CELERY_BROKER_URL=redis://...", id="config.W002"))
    return problems


@register()
def check_model_roots(app_configs, **kwargs):
    missing = [str(root) for root in settings.MODEL_ROOTS if not root.is_dir()]
    if missing:
        return [Warning(f"Model roots that do not exist: {', '.join(missing)}", hint="Create them or fix MODEL_ROOTS.", id="config.W003")]
    return []
