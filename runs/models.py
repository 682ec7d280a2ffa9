"""Evaluation runs, their transitions and their scores. The row is the source of truth for a run."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from runs.choices import ACTIVE_STATUSES, RunKind, RunStatus
from runs.messages import message_text


def _status_label(status: str) -> str:
    """A status in the reader's language; an unknown one as it is."""
    return str(RunStatus(status).label) if status in RunStatus.values else status


class EvaluationRun(models.Model):
    """One evaluation of one model: a benchmark suite or an evaluator run, with its exact spec."""

    kind = models.CharField(max_length=20, choices=RunKind.choices)
    model = models.ForeignKey(
        "leaderboard.RegisteredModel", null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    # Everything the executor needs, frozen at submission: suite and version, tasks and shots,
    # sample limit, dtype, device, chat template... A re-run with the same spec is comparable.
    spec = models.JSONField(default=dict)
    # sha256 of the canonical spec plus the model revision: finds an identical finished run.
    spec_hash = models.CharField(max_length=64, db_index=True, blank=True)
    # Smoke runs (a per-task sample limit) are never ranked with full runs.
    is_partial = models.BooleanField(default=False)
    # The site's one run of its spec: while such a run is queued, running or succeeded, an identical
    # submission gets it back instead of a second run. A database constraint (below), not a
    # check-then-insert, holds this under concurrent submissions. Forced re-runs, imports and
    # evaluator runs are not deduplicated by spec.
    dedupe_by_spec = models.BooleanField(default=False)
    # An idempotency key from the submitting form or API call ("<user id>:<token>"): the same form
    # posted twice (a double click, a retried request) makes one run.
    submission_key = models.CharField(max_length=100, null=True, blank=True, unique=True)
    queue = models.CharField(max_length=40, default="gpu")
    # When the run's message was last handed to the broker; null when that failed (the broker was
    # down): the reaper sends it then.
    sent_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by the worker while it runs; the reaper treats an old heartbeat as a dead worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    worker_host = models.CharField(max_length=255, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_note = models.CharField(max_length=255, blank=True)
    # The note and the failure reason as a message code and parameters (runs.messages), shown in the
    # reader's language; the text fields above keep their English. Null: text stored without a code.
    progress_note_i18n = models.JSONField(null=True, blank=True)

    error_message = models.TextField(blank=True)
    error_message_i18n = models.JSONField(null=True, blank=True)
    log = models.TextField(blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    # What the executor returned beyond the score rows (task configs, seeds, timings...).
    details = models.JSONField(default=dict, blank=True)
    # Relative to ARTIFACTS_DIR: compressed per-sample log.
    samples_path = models.CharField(max_length=500, blank=True)

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-queued_at", "-pk"]
        indexes = [
            # "latest succeeded run per model" and its history over time.
            models.Index(fields=["model", "status", "-finished_at"], name="run_model_status_finished"),
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
            models.Index(fields=["kind", "status", "-finished_at"], name="run_kind_status_finished"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["spec_hash"],
                condition=Q(dedupe_by_spec=True, status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED]),
                name="run_one_live_per_spec",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def progress_note_text(self) -> str:
        return message_text(self.progress_note_i18n, self.progress_note)

    @property
    def error_message_text(self) -> str:
        return message_text(self.error_message_i18n, self.error_message)

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class RunEvent(models.Model):
    """One status transition of a run, with who or what caused it."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    at = models.DateTimeField()
    message = models.TextField(blank=True)
    # The message as a code and parameters (runs.messages), shown in the reader's language.
    message_i18n = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"

    @property
    def message_text(self) -> str:
        return message_text(self.message_i18n, self.message)

    @property
    def from_status_label(self) -> str:
        return _status_label(self.from_status)

    @property
    def to_status_label(self) -> str:
        return _status_label(self.to_status)


class Score(models.Model):
    """One metric of one task in one run, under one filter, as the evaluation library reported it."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="scores")
    task = models.CharField(max_length=200)
    metric = models.CharField(max_length=100)
    # lm-eval's filter ("none", "strict-match", "flexible-extract"...); "none" when it has none.
    filter = models.CharField(max_length=100, default="none")
    value = models.FloatField(null=True)
    stderr = models.FloatField(null=True, blank=True)
    n_shot = models.IntegerField(null=True, blank=True)
    sample_count = models.IntegerField(null=True, blank=True)
    task_version = models.CharField(max_length=40, blank=True)
    higher_is_better = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "task", "metric", "filter"], name="score_unique_per_run"),
        ]
        indexes = [models.Index(fields=["task", "metric", "filter"], name="score_task_metric")]

    def __str__(self) -> str:
        return f"{self.task} {self.metric},{self.filter} = {self.value}"


class WorkerNode(models.Model):
    """A Celery worker as it last reported itself: which queues it takes and what it can run.

    The submit form reads this to refuse, before anything is saved, what no live worker can run
    (8-bit and 4-bit weights need a GPU worker with bitsandbytes).
    """

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list)
    # {"cuda": bool, "gpu_count": int, "gpus": [...], "bitsandbytes": bool, "torch": "2.13.0", ...}
    capabilities = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
