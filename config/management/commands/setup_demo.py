import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from leaderboard.tiny_model import build_tiny_model


class Command(BaseCommand):
    help = "Create the demo user and the tiny demo model folder (idempotent; no network)."

    def handle(self, *args, **options):
        username = os.getenv("DEMO_USERNAME", "demo")
        password = os.getenv("DEMO_PASSWORD", "demo-leaderboard")
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
            self.stdout.write(f"Created demo user {username!r}.")
        for root in settings.MODEL_ROOTS:
            root.mkdir(parents=True, exist_ok=True)
        tiny = settings.MODEL_ROOTS[0] / "tiny-llama"
        if not (tiny / "config.json").is_file():
            build_tiny_model(tiny)
            self.stdout.write(f"Wrote the demo model to {tiny}.")
