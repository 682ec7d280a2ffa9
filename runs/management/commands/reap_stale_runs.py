from django.core.management.base import BaseCommand

from runs.services import runs_reap


class Command(BaseCommand):
    help = (
        "Re-queue or error runs whose worker died, and send queued runs whose message the broker lacks "
        "(never sent, or lost by the broker)."
    )

    def handle(self, *args, **options):
        report = runs_reap()
        self.stdout.write(", ".join(f"{key}: {ids or 'none'}" for key, ids in report.items()))
