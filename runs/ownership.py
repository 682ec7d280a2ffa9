"""Who may see a row: the one rule shared by registered models, golden datasets and endpoints."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OwnedQuerySet(models.QuerySet):
    """For models with ``private``, ``owner`` and ``group`` fields."""

    def visible_to(self, user):
        """Public rows, plus private ones of the user or the user's groups; staff see everything."""
        if user.is_staff or user.is_superuser:
            return self
        if not user.is_authenticated:
            return self.filter(private=False)
        # ``group`` is a foreign key, so ``group__in`` is an IN (subquery), not a join: no duplicate rows,
        # no DISTINCT (which would stop the leaderboard from ranking with a window function).
        return self.filter(Q(private=False) | Q(owner=user) | Q(group__in=user.groups.all()))
