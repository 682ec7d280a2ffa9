from django.core.management.base import BaseCommand

from runs.services import runs_reap


class Command(BaseCommand):
    help = "Re-queue or error runs whose worker died, and re-send queued runs whose message was lost."

    def handle(self, *args, **options):
        report = runs_reap()
        self.stdout.write(", ".join(f"{key}: {ids or 'none'}" for key, ids in report.items()))
