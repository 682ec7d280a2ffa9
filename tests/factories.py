"""Small builders for test data (plain functions: the models are few and simple)."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from leaderboard.models import RegisteredModel
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun

_counter = itertools.count(1)


def user_create(*, username: str | None = None, groups: tuple[Group, ...] = (), **fields):
    user = get_user_model().objects.create_user(username=username or f"user{next(_counter)}", password="pw", **fields)
    user.groups.add(*groups)
    return user


def registered_model_create(**fields) -> RegisteredModel:
    n = next(_counter)
    defaults = {"display_name": f"org/model-{n}", "storage_path": f"/models/model-{n}", "revision": f"{n:040x}",
                "architecture": "LlamaForCausalLM", "num_params": 7_000_000_000}
    return RegisteredModel.objects.create(**{**defaults, **fields})


def run_create_row(*, model=None, status=RunStatus.QUEUED, kind=RunKind.BENCHMARK, spec=None, **fields) -> EvaluationRun:
    """A run row written directly (no enqueue), for tests of what reads or reaps runs."""
    return EvaluationRun.objects.create(kind=kind, model=model, spec=spec or {"suite": "openllm_v1"}, status=status,
                                        queued_at=fields.pop("queued_at", timezone.now()), **fields)
