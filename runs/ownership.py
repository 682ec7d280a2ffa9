"""Who may see a row: the one rule shared by registered models, golden datasets and endpoints."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


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


class Owned(models.Model):
    """A row a user or a group owns, optionally private to them (see ``OwnedQuerySet.visible_to``)."""

    private = models.BooleanField(_("private"), default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("group")
    )

    objects = OwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    def is_visible_to(self, user) -> bool:
        return type(self).objects.filter(pk=self.pk).visible_to(user).exists()
