from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from leaderboard.harness.suites import suite_get, suite_list


class Command(BaseCommand):
    help = (
        "On a machine WITH network access (HF_HUB_OFFLINE=0): download the dataset repos a suite needs, "
        "laid out as <org>/<name>/, to carry into the closed network."
    )

    def add_arguments(self, parser):
        parser.add_argument("--mirror", default=str(settings.DATASET_MIRROR), help="folder to fill")
        parser.add_argument("--suite", action="append", help="suite name (repeatable); default: all suites")
        parser.add_argument("--revision", default=None, help="hub revision, e.g. refs/convert/parquet")

    def handle(self, *args, mirror, suite=None, revision=None, **options):
        from leaderboard.harness.mirror import mirror_prepare

        suites = [suite_get(name) for name in suite] if suite else suite_list()
        for one in suites:
            for action in mirror_prepare(Path(mirror), one, include_path=settings.HARNESS_TASKS_DIR, revision=revision):
                state = "downloaded" if action.downloaded else "already there"
                self.stdout.write(f"{one.name}: {action.repo_id} -> {action.local_dir} ({state})")
