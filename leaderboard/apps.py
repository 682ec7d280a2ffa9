from django.apps import AppConfig


class LeaderboardConfig(AppConfig):
    """Registered models, benchmark suites and runs, scores, and the pages that rank them."""

    name = "leaderboard"
    verbose_name = "Leaderboard"
