"""Saved mirror-verification reports: computed on a worker or by a command, read by the About page.

Verifying means indexing lm-eval's tasks (seconds), so web requests read the last saved report
instead of computing one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings


def _report_path(suite_name: str) -> Path:
    return Path(settings.VAR_DIR) / "mirror_reports" / f"{suite_name}.json"


def mirror_report_refresh(*, suite_name: str):
    """Verify the mirror for one suite, save the report, and return it (a MirrorReport)."""
    from leaderboard.harness.mirror import mirror_verify
    from leaderboard.harness.suites import suite_get

    report = mirror_verify(settings.DATASET_MIRROR, suite_get(suite_name), include_path=settings.HARNESS_TASKS_DIR)
    data = {**report.to_dict(), "checked_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path = _report_path(suite_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return report


def mirror_report_get(*, suite_name: str) -> dict | None:
    path = _report_path(suite_name)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
