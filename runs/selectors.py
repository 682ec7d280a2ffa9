"""Read side of runs: which runs a user may see, and the queue view."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from leaderboard.models import RegisteredModel
from runs.models import EvaluationRun


def runs_visible_to(user) -> QuerySet[EvaluationRun]:
    """Runs of models the user may see, plus runs they submitted; staff see all."""
    runs = EvaluationRun.objects.select_related("model", "submitted_by")
    if user.is_staff or user.is_superuser:
        return runs
    visible_models = RegisteredModel.objects.visible_to(user).values("pk")
    return runs.filter(Q(model__in=visible_models) | Q(submitted_by=user) | Q(model__isnull=True, submitted_by__isnull=True))


def run_can_cancel(*, run: EvaluationRun, user) -> bool:
    return run.is_active and (user.is_staff or run.submitted_by_id == user.pk)
