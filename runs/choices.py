"""Run kinds and statuses, defined once (as NetBox's JobStatusChoices)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunKind(models.TextChoices):
    BENCHMARK = "benchmark", _("Benchmark suite")
    EVALUATOR = "evaluator", _("Evaluator run")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    # A problem the submitter can fix (bad path, missing dataset, out of memory).
    FAILED = "failed", _("Failed")
    # A crash or a bug: the traceback is in the log.
    ERRORED = "errored", _("Errored")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
TERMINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ERRORED, RunStatus.CANCELLED)
