from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from leaderboard.harness.suites import suite_list


class Command(BaseCommand):
    help = (
        "Check which tasks of which suites the dataset mirror can serve, with row counts; saves the check "
        "under the mirror folder (the submit form and About read the check of DATASET_MIRROR)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--suite", action="append", help="suite name (repeatable); default: all suites")
        parser.add_argument(
            "--mirror",
            default=None,
            help="the folder to check (default DATASET_MIRROR); a check of another folder is "
            "saved under that folder and never shown as the site's mirror",
        )
        parser.add_argument(
            "--no-fail",
            action="store_true",
            help="exit 0 even when a suite cannot be served fully (for start-up scripts)",
        )

    def handle(self, *args, suite=None, mirror=None, no_fail=False, **options):
        from leaderboard.mirror_reports import mirror_report_refresh

        mirror = mirror or str(settings.DATASET_MIRROR)
        names = suite or [s.name for s in suite_list()]
        incomplete = []
        for name in names:
            report = mirror_report_refresh(suite_name=name, mirror_dir=mirror)
            self.stdout.write(report.to_text())
            missing = report.missing_columns()
            if missing:
                incomplete.append(f"{name} (missing columns: {', '.join(missing)})")
        if incomplete and not no_fail:
            raise CommandError(f"The mirror {mirror} cannot serve every column of: {'; '.join(incomplete)}")
        if incomplete:
            self.stdout.write(f"The mirror {mirror} cannot serve every column of: {'; '.join(incomplete)}")
