"""Mirror checks: which suites the dataset mirror serves, saved per mirror folder, read before queueing.

Verifying a suite means indexing lm-eval's tasks (seconds, with lm-eval imported), so it runs on a
worker (``leaderboard.refresh_mirror_reports``: every few minutes, re-checking only what changed) or in
``manage.py mirror_verify``, and is saved as a ``MirrorCheck`` row keyed by the mirror folder. Web
requests read that row (``suite_availability``): when the mirror's fingerprint (file names, sizes and
times of the suite's dataset folders) differs from the saved one, the saved entries are re-checked at
once, folders and configs only, and a worker is asked for a full check. ``suite_serve_check`` is the
rule every submission path applies before anything is queued (the submit form, ``benchmark_submit``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from leaderboard.harness.mirror import hub_dataset_paths, mirror_fingerprint, mirror_recheck, missing_columns
from leaderboard.harness.suites import Suite
from leaderboard.models import MirrorCheck

logger = logging.getLogger(__name__)

# A full check older than this is redone by the periodic task even when nothing seems to have changed.
CHECK_MAX_AGE = timedelta(hours=6)
# A web process asks a worker for a new check of one suite at most this often.
REFRESH_REQUEST_EVERY_S = 300


class Served:
    """How much of a suite the mirror serves, by its last check."""

    FULLY = "served"
    PARTLY = "partial"
    NOTHING = "none"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class MissingColumn:
    key: str
    label: str
    # The datasets (hub ids, with their config) the column needs and the mirror lacks.
    datasets: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass
class SuiteAvailability:
    """A suite as the dataset mirror can serve it, read from the last check of this mirror folder."""

    suite: Suite
    state: str
    missing: list[MissingColumn] = field(default_factory=list)
    checked_at: datetime | None = None
    # The mirror changed since the last full check: ``entries`` were re-checked now (no row counts).
    changed_since_check: bool = False
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def missing_keys(self) -> list[str]:
        return [column.key for column in self.missing]

    @property
    def served_labels(self) -> list[str]:
        missing = set(self.missing_keys)
        return [column.label for column in self.suite.columns if column.key not in missing]

    def missing_text(self) -> str:
        """``HellaSwag (Rowan/hellaswag); MMLU (cais/mmlu [anatomy], ...)``: what is missing, by column."""
        return "; ".join(
            f"{column.label} ({', '.join(column.datasets[:3])}{', …' if len(column.datasets) > 3 else ''})"
            for column in self.missing
        )


class SuiteNotServed(ValueError):
    """The mirror cannot serve (every column of) the suite; the message names the missing columns and datasets."""

    def __init__(self, message: str, availability: SuiteAvailability) -> None:
        super().__init__(message)
        self.availability = availability


def mirror_key(mirror_dir: Path | str | None = None) -> str:
    """The folder a check is saved under: the mirror's absolute, resolved path."""
    return str(Path(mirror_dir if mirror_dir is not None else settings.DATASET_MIRROR).resolve())


def suite_digest(suite: Suite) -> str:
    return hashlib.sha256(json.dumps(suite.to_dict(), sort_keys=True).encode()).hexdigest()


@functools.cache
def _lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return ""


# ----------------------------------------------------------------------------------------------
# Services (a worker or a command: they import lm-eval)
# ----------------------------------------------------------------------------------------------


def mirror_report_refresh(*, suite_name: str, mirror_dir: Path | str | None = None):
    """Verify one suite against a mirror folder (default ``DATASET_MIRROR``), save it, return the MirrorReport."""
    from leaderboard.harness.mirror import mirror_verify
    from leaderboard.harness.suites import suite_get

    suite = suite_get(suite_name)
    report = mirror_verify(mirror_key(mirror_dir), suite, include_path=settings.HARNESS_TASKS_DIR)
    mirror_check_save(report=report, suite=suite)
    return report


def mirror_check_save(*, report, suite: Suite) -> MirrorCheck:
    """Save a MirrorReport of ``suite`` (``leaderboard.harness.mirror.mirror_verify``) as its folder's check."""
    check, _created = MirrorCheck.objects.update_or_create(
        mirror_dir=mirror_key(report.mirror_dir),
        suite=suite.name,
        defaults={
            "suite_version": suite.version,
            "suite_digest": suite_digest(suite),
            "lm_eval_version": _lm_eval_version(),
            "fingerprint": report.fingerprint,
            "report": report.to_dict(),
            "checked_at": timezone.now(),
        },
    )
    return check


def mirror_checks_due(*, suites: list[Suite], now: datetime | None = None) -> list[Suite]:
    """The suites whose check of this mirror is missing, made for another suite definition or lm-eval,
    older than ``CHECK_MAX_AGE``, or made before the mirror changed."""
    now = now or timezone.now()
    return [
        suite
        for suite in suites
        if (check := _check_current(suite)) is None
        or check.checked_at < now - CHECK_MAX_AGE
        or _fingerprint_now(check) != check.fingerprint
    ]


def mirror_refresh_request(*, suite_names: list[str]) -> bool:
    """Ask a worker (cpu queue) for a full check of these suites, at most once per ``REFRESH_REQUEST_EVERY_S``
    per suite and process; never raises for a broker that is down (the periodic check comes anyway)."""
    from runs.broker import broker_errors
    from runs.services import PUBLISH_RETRY_POLICY

    wanted = [
        name for name in suite_names if cache.add(f"mirror-refresh:{mirror_key()}:{name}", 1, REFRESH_REQUEST_EVERY_S)
    ]
    if not wanted:
        return False
    from leaderboard.tasks import refresh_mirror_reports

    try:
        refresh_mirror_reports.apply_async(
            kwargs={"suite_names": wanted}, queue="cpu", retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except broker_errors() as exc:
        logger.warning("the broker did not take the mirror check of %s: %s", ", ".join(wanted), exc)
        return False
    return True


# ----------------------------------------------------------------------------------------------
# Selectors (web requests: no lm-eval, no data read)
# ----------------------------------------------------------------------------------------------


def _check_current(suite: Suite) -> MirrorCheck | None:
    """This mirror's check of this suite, if it was made for the suite as defined now and this lm-eval."""
    check = MirrorCheck.objects.filter(mirror_dir=mirror_key(), suite=suite.name).first()
    if check is None or check.suite_digest != suite_digest(suite) or check.lm_eval_version != _lm_eval_version():
        return None
    return check


def _fingerprint_now(check: MirrorCheck) -> str:
    return mirror_fingerprint(check.mirror_dir, hub_dataset_paths((check.report or {}).get("entries") or []))


def mirror_checks_elsewhere() -> list[MirrorCheck]:
    """Saved checks of other folders than this site's mirror (shown as such, never as this mirror's)."""
    return list(MirrorCheck.objects.exclude(mirror_dir=mirror_key()))


def suite_availability(*, suite: Suite, request_refresh: bool = True) -> SuiteAvailability:
    """How much of ``suite`` this site's mirror serves, by its last check (re-checked cheaply if the mirror
    changed since). A missing, outdated or changed check also asks a worker for a new one."""
    check = _check_current(suite)
    if check is None:
        if request_refresh:
            mirror_refresh_request(suite_names=[suite.name])
        return SuiteAvailability(suite=suite, state=Served.UNCHECKED)
    entries = list((check.report or {}).get("entries") or [])
    changed = _fingerprint_now(check) != check.fingerprint
    if changed:
        entries = mirror_recheck(check.mirror_dir, entries)
        if request_refresh:
            mirror_refresh_request(suite_names=[suite.name])
    gaps = missing_columns((check.report or {}).get("columns") or {}, entries)
    missing = [
        MissingColumn(
            key=column.key,
            label=column.label,
            datasets=tuple(dict.fromkeys(_dataset_label(entry) for entry in gaps[column.key])),
            problems=tuple(dict.fromkeys(entry.get("problem") or "" for entry in gaps[column.key])),
        )
        for column in suite.columns
        if column.key in gaps
    ]
    if not missing:
        state = Served.FULLY
    elif len(missing) == len(suite.columns):
        state = Served.NOTHING
    else:
        state = Served.PARTLY
    return SuiteAvailability(
        suite=suite,
        state=state,
        missing=missing,
        checked_at=check.checked_at,
        changed_since_check=changed,
        entries=entries,
    )


def _dataset_label(entry: dict[str, Any]) -> str:
    name = entry.get("dataset_name")
    return f"{entry.get('dataset_path')} [{name}]" if name else str(entry.get("dataset_path"))


def suites_availability(*, request_refresh: bool = True) -> list[SuiteAvailability]:
    from leaderboard.harness.suites import suite_list

    return [suite_availability(suite=suite, request_refresh=request_refresh) for suite in suite_list()]


def suite_serve_check(*, availability: SuiteAvailability, partial: bool) -> list[str]:
    """The columns a submission of this suite leaves out: none for a fully served (or not yet checked)
    suite, the missing ones for a knowingly partial run.

    Raises:
        SuiteNotServed: the mirror serves no column, or some are missing and ``partial`` is False.
    """
    if availability.state in (Served.FULLY, Served.UNCHECKED):
        return []
    names = {"suite": availability.suite.title, "missing": availability.missing_text()}
    if availability.state == Served.NOTHING:
        raise SuiteNotServed(
            _(
                "The dataset mirror has none of the data %(suite)s needs (missing: %(missing)s), so "
                "nothing was queued; an administrator must add it (see About)."
            )
            % names,
            availability,
        )
    if not partial:
        raise SuiteNotServed(
            _(
                "The dataset mirror cannot serve every column of %(suite)s: missing %(missing)s. "
                "Nothing was queued. Tick “Partial run” to run the other columns (a partial run is "
                "never ranked), or ask an administrator to add the data (see About)."
            )
            % names,
            availability,
        )
    return availability.missing_keys
