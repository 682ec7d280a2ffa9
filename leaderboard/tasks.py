from celery import shared_task


@shared_task(name="leaderboard.refresh_mirror_reports", ignore_result=True)
def refresh_mirror_reports() -> None:
    from leaderboard.harness.suites import suite_list
    from leaderboard.mirror_reports import mirror_report_refresh

    for suite in suite_list():
        mirror_report_refresh(suite_name=suite.name)
