"""Read side of runs: which runs a user may see, and the queue view."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy

from leaderboard.models import RegisteredModel
from runs.choices import RunStatus
from runs.models import EvaluationRun


def runs_visible_to(user) -> QuerySet[EvaluationRun]:
    """Runs of models the user may see, plus runs they submitted; staff see all."""
    runs = EvaluationRun.objects.select_related("model", "submitted_by")
    if user.is_staff or user.is_superuser:
        return runs
    visible_models = RegisteredModel.objects.visible_to(user).values("pk")
    return runs.filter(
        Q(model__in=visible_models) | Q(submitted_by=user) | Q(model__isnull=True, submitted_by__isnull=True)
    )


def run_can_cancel(*, run: EvaluationRun, user) -> bool:
    return run.is_active and (user.is_staff or run.submitted_by_id == user.pk)


def workers_live(*, queue: str | None = None) -> list:
    """Worker nodes seen within settings.WORKER_STALE_AFTER_S, optionally only those taking ``queue``."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from runs.models import WorkerNode

    since = timezone.now() - timedelta(seconds=settings.WORKER_STALE_AFTER_S)
    # Filtered in Python: a handful of rows, and JSON "contains" is not portable to SQLite.
    return [
        node
        for node in WorkerNode.objects.filter(last_seen_at__gte=since)
        if queue is None or (isinstance(node.queues, list) and queue in node.queues)
    ]


def worker_capability_available(capability: str | Sequence[str], *, queue: str = "gpu") -> bool:
    """Whether a live worker of ``queue`` advertises every one of ``capability`` (e.g. ("cuda", "bitsandbytes"))."""
    needed = [capability] if isinstance(capability, str) else list(capability)
    return any(
        isinstance(node.capabilities, dict) and all(node.capabilities.get(name) is True for name in needed)
        for node in workers_live(queue=queue)
    )


# Shown after a submission whose run could not be handed to the broker yet (see run_awaits_broker).
BROKER_DOWN_MESSAGE = gettext_lazy(
    "The run is stored, but the queue cannot be reached right now; it will be sent to "
    "the workers as soon as the queue is reachable again."
)


def run_awaits_broker(*, run: EvaluationRun) -> bool:
    """A queued run whose message could not be handed to the broker yet (``sent_at`` still empty)."""
    current = EvaluationRun.objects.filter(pk=run.pk).values("status", "sent_at").first()
    return bool(current) and current["status"] == RunStatus.QUEUED and current["sent_at"] is None
