"""How run facts read on the pages: durations as people say them, not timedelta's ``0:01:39.594585``."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext as _


def duration_text(duration: timedelta | None) -> str:
    """A run's duration as "1h 02m 03s", "1m 39s" or "42s" ("" when unknown; seconds are truncated)."""
    if duration is None:
        return ""
    seconds = max(0, int(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return _("%(h)dh %(m)02dm %(s)02ds") % {"h": hours, "m": minutes, "s": seconds}
    if minutes:
        return _("%(m)dm %(s)02ds") % {"m": minutes, "s": seconds}
    return _("%(s)ds") % {"s": seconds}
