"""Read side of the evaluator: what a results page shows, in a bounded number of queries."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q

from evaluator.metrics import CUSTOM_PREFIX, HEADLINE_METRIC_ORDER, METRICS
from evaluator.models import GoldenDataset, JudgeReview, MetricScore, SampleResult

Z_95 = 1.96


@dataclass
class MetricSummary:
    key: str
    label: str
    description: str
    scored: int = 0
    unscored: int = 0
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @property
    def total(self) -> int:
        return self.scored + self.unscored


def _summary(key: str, values: list[float], unscored: int, custom_labels: dict[str, str]) -> MetricSummary:
    info = METRICS.get(key)
    summary = MetricSummary(key=key, label=str(info.label) if info else custom_labels.get(key, key),
                            description=str(info.description) if info else "", scored=len(values), unscored=unscored)
    if values:
        mean = sum(values) / len(values)
        # Normal approximation of the mean's 95% interval (t would be wider for a handful of samples;
        # with under 2 there is no interval), clipped to the metric's 0..1 range.
        half = Z_95 * math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)) if len(values) > 1 else None
        summary.mean = mean
        if half is not None:
            summary.ci_low, summary.ci_high = max(0.0, mean - half), min(1.0, mean + half)
    return summary


@dataclass
class RunResults:
    metrics: list[MetricSummary]
    headline: MetricSummary | None
    by_tag: dict[str, list[MetricSummary]] = field(default_factory=dict)
    samples: int = 0
    reviewed: int = 0
    agreed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.reviewed if self.reviewed else None


def run_results(*, run) -> RunResults:
    """Per-metric and per-tag aggregates, the headline and the judge-reviewer agreement: three queries."""
    custom_labels = {c["key"]: c["name"] for c in run.spec.get("custom_criteria", [])}
    keys = list(run.spec.get("metrics", [])) + list(custom_labels)
    values: dict[str, list[float]] = defaultdict(list)
    unscored: dict[str, int] = defaultdict(int)
    tag_values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tag_unscored: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = MetricScore.objects.filter(sample__run=run).values_list("metric", "value", "unscored_reason", "sample__row__tags")
    for metric, value, reason, tags in rows:
        scored = value is not None and not reason
        for bucket_values, bucket_unscored in [(values, unscored)] + [(tag_values[t], tag_unscored[t]) for t in (tags or [])]:
            if scored:
                bucket_values[metric].append(value)
            else:
                bucket_unscored[metric] += 1
    summaries = [_summary(key, values[key], unscored[key], custom_labels) for key in keys]
    by_key = {s.key: s for s in summaries}
    headline = next((by_key[k] for k in HEADLINE_METRIC_ORDER if k in by_key and by_key[k].scored), None)
    headline = headline or next((s for s in summaries if s.key.startswith(CUSTOM_PREFIX) and s.scored), None)
    by_tag = {tag: [_summary(key, tag_values[tag][key], tag_unscored[tag][key], custom_labels) for key in keys]
              for tag in sorted(set(tag_values) | set(tag_unscored))}
    reviews = JudgeReview.objects.filter(score__sample__run=run).aggregate(n=Count("pk"), agreed=Count("pk", filter=Q(agrees=True)))
    return RunResults(metrics=summaries, headline=headline, by_tag=by_tag,
                      samples=SampleResult.objects.filter(run=run).count(),
                      reviewed=reviews["n"], agreed=reviews["agreed"])


def sample_results_page(*, run, tag: str = "", metric: str = "", only_unscored: bool = False, page: int = 1,
                        per_page: int = 25):
    """A page of the per-sample table with its scores (and the viewer's reviews) prefetched: three queries."""
    samples = SampleResult.objects.filter(run=run).select_related("row").order_by("row__position")
    if tag:
        samples = samples.filter(row__tags__icontains=tag)
    if only_unscored:
        unscored = Q(metric_scores__value__isnull=True) | ~Q(metric_scores__unscored_reason="")
        if metric:
            unscored &= Q(metric_scores__metric=metric)
        samples = samples.filter(unscored).distinct()
    scores = MetricScore.objects.order_by("metric").prefetch_related("reviews")
    if metric:
        scores = scores.filter(metric=metric)
    samples = samples.prefetch_related(Prefetch("metric_scores", queryset=scores))
    return Paginator(samples, per_page).get_page(page)


def datasets_visible_to(user):
    return GoldenDataset.objects.visible_to(user).annotate(version_count=Count("versions")).order_by("name")


@dataclass
class MetricDelta:
    key: str
    label: str
    a: MetricSummary
    b: MetricSummary

    @property
    def delta(self) -> float | None:
        return None if self.a.mean is None or self.b.mean is None else self.b.mean - self.a.mean


def runs_compare(*, run_a, run_b) -> tuple[list[MetricDelta], list[tuple[int, str, float, float]]]:
    """Per-metric deltas, and the samples whose score changed: (row position, metric, value in A, value in B)."""
    results_a, results_b = run_results(run=run_a), run_results(run=run_b)
    b_by_key = {s.key: s for s in results_b.metrics}
    deltas = [MetricDelta(key=s.key, label=s.label, a=s, b=b_by_key[s.key]) for s in results_a.metrics if s.key in b_by_key]
    values: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for run_id, position, metric, value in MetricScore.objects.filter(
        sample__run__in=[run_a, run_b], value__isnull=False, unscored_reason="",
    ).values_list("sample__run_id", "sample__row__position", "metric", "value"):
        values[(position, metric)][run_id] = value
    changed = sorted(
        (position, metric, pair[run_a.pk], pair[run_b.pk])
        for (position, metric), pair in values.items()
        if run_a.pk in pair and run_b.pk in pair and abs(pair[run_a.pk] - pair[run_b.pk]) > 1e-9
    )
    return deltas, changed
