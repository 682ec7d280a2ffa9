from django.core.management.base import BaseCommand

from leaderboard.ranking import leaderboard_rebuild


class Command(BaseCommand):
    help = "Recompute the leaderboard's ranking rows from runs and scores (after deleting runs or editing a suite)."

    def handle(self, *args, **options):
        count = leaderboard_rebuild()
        self.stdout.write(self.style.SUCCESS(f"Recomputed {count} leaderboard rows."))
