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
    defaults = {
        "display_name": f"org/model-{n}",
        "storage_path": f"/models/model-{n}",
        "revision": f"{n:040x}",
        "architecture": "LlamaForCausalLM",
        "num_params": 7_000_000_000,
    }
    return RegisteredModel.objects.create(**{**defaults, **fields})


def run_create_row(
    *, model=None, status=RunStatus.QUEUED, kind=RunKind.BENCHMARK, spec=None, **fields
) -> EvaluationRun:
    """A run row written directly (no enqueue), for tests of what reads or reaps runs."""
    return EvaluationRun.objects.create(
        kind=kind,
        model=model,
        spec=spec or {"suite": "openllm_v1"},
        status=status,
        queued_at=fields.pop("queued_at", timezone.now()),
        **fields,
    )


# The Open LLM Leaderboard v1 columns as (key, score task, metric, filter), as
# harness_tasks/suites/openllm_v1.yaml reads them.
OPENLLM_V1_SCORE_ROWS = {
    "arc": ("arc_challenge", "acc_norm", "none"),
    "hellaswag": ("hellaswag", "acc_norm", "none"),
    "mmlu": ("mmlu_plain_mean", "acc", "none"),
    "truthfulqa": ("truthfulqa_mc2", "acc", "none"),
    "winogrande": ("winogrande", "acc", "none"),
    "gsm8k": ("gsm8k", "exact_match", "strict-match"),
}


def scored_run_create(
    *,
    model,
    values: dict[str, float],
    stderr: float | None = 0.01,
    finished_at=None,
    suite: str = "openllm_v1",
    **fields,
) -> EvaluationRun:
    """A succeeded benchmark run of ``model`` with one Score row per given suite column key."""
    from runs.models import Score

    run = run_create_row(
        model=model,
        status=RunStatus.SUCCEEDED,
        spec={"suite": suite},
        finished_at=finished_at or timezone.now(),
        **fields,
    )
    Score.objects.bulk_create(
        [
            Score(
                run=run,
                task=OPENLLM_V1_SCORE_ROWS[key][0],
                metric=OPENLLM_V1_SCORE_ROWS[key][1],
                filter=OPENLLM_V1_SCORE_ROWS[key][2],
                value=value,
                stderr=stderr,
            )
            for key, value in values.items()
        ]
    )
    if not run.is_partial:
        # What run_finish's hook does for a worker's run.
        from leaderboard.ranking import leaderboard_entry_refresh

        leaderboard_entry_refresh(model_id=model.pk, suite_name=suite)
    return run
