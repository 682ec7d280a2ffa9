from celery import shared_task


@shared_task(name="leaderboard.refresh_mirror_reports", ignore_result=True)
def refresh_mirror_reports(suite_names: list[str] | None = None, force: bool = False) -> None:
    """Check the dataset mirror for these suites (default all): only those whose saved check is missing,
    outdated or made before the mirror changed, unless ``force`` (the About page's button)."""
    from leaderboard.harness.suites import suite_list
    from leaderboard.mirror_reports import mirror_checks_due, mirror_report_refresh

    suites = [suite for suite in suite_list() if suite_names is None or suite.name in suite_names]
    for suite in suites if force else mirror_checks_due(suites=suites):
        mirror_report_refresh(suite_name=suite.name)
