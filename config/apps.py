from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Project-level pieces: deployment checks and set-up commands."""

    name = "config"
    verbose_name = "Site configuration"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the system checks)
