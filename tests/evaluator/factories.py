"""Builders for evaluator rows: datasets, endpoints, and runs with stored per-sample results.

``evaluator_run_make`` writes a finished run's rows directly (no scoring), for tests of what reads them:
the results aggregation, its query counts, comparisons and the pages.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from django.utils import timezone

from evaluator.datasets import RowData
from evaluator.models import EvaluatorRun, GoldenDataset, LLMEndpoint, MetricScore, SampleResult, TargetKind
from evaluator.services import dataset_create
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun

_counter = itertools.count(1)

KOREAN_ROWS = [
    RowData(
        question="연차 휴가는 며칠인가요?",
        reference="15일",
        contexts=("입사 1년 후 15일의 연차가 주어진다.",),
        response="15일입니다.",
        tags=("hr", "휴가"),
    ),
    RowData(
        question="What is the VPN address?",
        reference="vpn.example.internal",
        contexts=("The VPN is at vpn.example.internal.",),
        response="vpn.example.internal",
        tags=("it",),
    ),
    RowData(
        question="Who approves expenses?",
        reference="The team lead",
        contexts=("Team leads approve expenses.",),
        response="Your manager's manager.",
        tags=("hr", "finance"),
    ),
]


def rows_make(n: int, *, tags: Sequence[str] = ("hr", "it", "휴가")) -> list[RowData]:
    """``n`` rows with references, two contexts, a response and one tag each (cycling through ``tags``)."""
    return [
        RowData(
            question=f"질문 {i}: what is item {i}?",
            reference=f"answer {i}",
            contexts=(f"item {i} is answer {i}", f"unrelated passage {i}"),
            response=f"answer {i}" if i % 2 else f"maybe {i}",
            tags=(tags[i % len(tags)],),
        )
        for i in range(1, n + 1)
    ]


def dataset_make(
    *, rows: Sequence[RowData] | None = None, owner=None, private: bool = False, group=None, name: str | None = None
) -> GoldenDataset:
    return dataset_create(
        name=name or f"dataset {next(_counter)}",
        rows=list(rows or KOREAN_ROWS),
        owner=owner,
        private=private,
        group=group,
    )


def endpoint_make(*, judge=None, name: str | None = None, **fields) -> LLMEndpoint:
    """An endpoint row; with ``judge`` (a LoopbackJudge) pointing at it, else at an address nothing serves."""
    defaults = {
        "base_url": judge.base_url if judge else "http://127.0.0.1:9/v1",
        "model_name": judge.model if judge else "nobody",
        "timeout_s": 10,
        "max_retries": 0,
    }
    return LLMEndpoint.objects.create(name=name or f"endpoint {next(_counter)}", **{**defaults, **fields})


def evaluator_run_make(
    *,
    version,
    metrics: Sequence[str] = ("answer_accuracy", "exact_match"),
    value: Callable[[int, str], float | None] | None = None,
    custom_criteria: Sequence[dict] = (),
    submitted_by=None,
    status: str = RunStatus.SUCCEEDED,
    judge=None,
) -> EvaluationRun:
    """A run of ``version`` with one stored score per (row, metric): ``value(position, metric)``, None = unscored.

    The default gives every third row's first metric no score and alternates 0/1 otherwise."""
    value = value or (
        lambda position, metric: None if position % 3 == 0 and metric == metrics[0] else float(position % 2)
    )
    keys = list(metrics) + [c["key"] for c in custom_criteria]
    spec = {
        "dataset_version_id": version.pk,
        "dataset": version.dataset.name,
        "dataset_version": version.number,
        "target": {"kind": "precomputed"},
        "judge": None,
        "embedding_path": None,
        "metrics": list(metrics),
        "custom_criteria": list(custom_criteria),
        "preset": "custom",
        "prompt_template": "",
    }
    run = EvaluationRun.objects.create(
        kind=RunKind.EVALUATOR,
        spec=spec,
        status=status,
        submitted_by=submitted_by,
        queued_at=timezone.now(),
        finished_at=timezone.now(),
    )
    EvaluatorRun.objects.create(
        run=run, dataset_version=version, target_kind=TargetKind.PRECOMPUTED, judge=judge, metrics=list(metrics)
    )
    rows = list(version.rows.order_by("position"))
    results = SampleResult.objects.bulk_create([SampleResult(run=run, row=row, response=row.response) for row in rows])
    scores = []
    for result, row in zip(results, rows, strict=True):
        for key in keys:
            v = value(row.position, key)
            scores.append(
                MetricScore(
                    sample=result,
                    metric=key,
                    value=v,
                    reason=f"because {row.position}",
                    raw_output="" if v is not None else "{not json",
                    unscored_reason="" if v is not None else "the judge's answer could not be parsed",
                )
            )
    MetricScore.objects.bulk_create(scores, batch_size=1000)
    return run
