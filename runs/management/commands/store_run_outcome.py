from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from runs.execution import run_outcome_store


class Command(BaseCommand):
    help = (
        "Store the outcome a worker saved to disk because the database stayed unreachable "
        "(ARTIFACTS_DIR/runs/<id>/unsaved-outcome.json), unless the run has ended since."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)

    def handle(self, *args, paths, **options):
        for path in paths:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            if run_outcome_store(path=path):
                self.stdout.write(self.style.SUCCESS(f"{path}: stored"))
            else:
                self.stdout.write(f"{path}: not stored, the run has ended since (re-run, cancelled or stored before)")
