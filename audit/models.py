"""The audit log: one row per action worth answering "who did that?" for. Rows are only ever added."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    MODEL_SUBMITTED = "model_submitted", _("Model submitted")
    RUN_SUBMITTED = "run_submitted", _("Run submitted")
    RUN_CANCELLED = "run_cancelled", _("Run cancelled")
    MODEL_CHANGED = "model_changed", _("Model changed")
    MODEL_FLAGGED = "model_flagged", _("Model flagged")
    MODEL_UNFLAGGED = "model_unflagged", _("Model unflagged")
    MODEL_DELETED = "model_deleted", _("Model deleted")
    ENDPOINT_CREATED = "endpoint_created", _("Endpoint created")
    ENDPOINT_CHANGED = "endpoint_changed", _("Endpoint changed")
    ENDPOINT_DELETED = "endpoint_deleted", _("Endpoint deleted")
    DATASET_CREATED = "dataset_created", _("Dataset created")
    DATASET_VERSION_CREATED = "dataset_version_created", _("Dataset version created")
    DATASET_CHANGED = "dataset_changed", _("Dataset changed")
    DATASET_DELETED = "dataset_deleted", _("Dataset deleted")
    EVALUATION_SUBMITTED = "evaluation_submitted", _("Evaluation submitted")
    SCHEDULE_CREATED = "schedule_created", _("Schedule created")
    SCHEDULE_CHANGED = "schedule_changed", _("Schedule changed")
    SCHEDULE_DELETED = "schedule_deleted", _("Schedule deleted")


class AuditEvent(models.Model):
    """One action: who (kept by name too, so the row outlives the user), from which address, on what."""

    at = models.DateTimeField(_("time"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(_("actor name"), max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=AuditAction.choices)
    # What it was done to: "leaderboard.registeredmodel", its primary key, and its name at the time.
    target_type = models.CharField(_("target type"), max_length=100, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_label = models.CharField(_("target"), max_length=300, blank=True)
    # What changed (field names, a run id, a suite...); audit.services keeps secrets out of it.
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        # The admin lists newest first, filtered by action, by actor or by date, and one object's history.
        indexes = [
            models.Index(fields=["-at"], name="audit_at"),
            models.Index(fields=["action", "-at"], name="audit_action_at"),
            models.Index(fields=["actor", "-at"], name="audit_actor_at"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target_label}"
