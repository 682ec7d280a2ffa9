from django.core.management.base import BaseCommand, CommandError

from leaderboard.harness.suites import suite_list


class Command(BaseCommand):
    help = "Check which tasks of which suites the dataset mirror can serve, with row counts; saves the report for the About page."

    def add_arguments(self, parser):
        parser.add_argument("--suite", action="append", help="suite name (repeatable); default: all suites")

    def handle(self, *args, suite=None, **options):
        from leaderboard.mirror_reports import mirror_report_refresh

        names = suite or [s.name for s in suite_list()]
        incomplete = []
        for name in names:
            report = mirror_report_refresh(suite_name=name)
            self.stdout.write(report.to_text())
            if not report.ok:
                incomplete.append(name)
        if incomplete:
            raise CommandError(f"The mirror cannot serve every task of: {', '.join(incomplete)}")
