"""Read side of the evaluator: what a results page shows, in a bounded number of queries."""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.utils.translation import gettext as _

from evaluator.aggregates import MetricSummary, metric_summary
from evaluator.metrics import CUSTOM_PREFIX, HEADLINE_METRIC_ORDER, METRICS
from evaluator.models import (
    DatasetRow,
    DatasetVersion,
    EvaluatorRun,
    GoldenDataset,
    JudgeReview,
    LLMEndpoint,
    MetricScore,
    SampleResult,
    TargetKind,
)
from leaderboard.models import RegisteredModel
from runs.choices import RunKind, RunStatus
from runs.models import EvaluationRun


def _summary(key: str, values: list[float], unscored: int, custom_labels: dict[str, str]) -> MetricSummary:
    info = METRICS.get(key)
    return metric_summary(
        key=key,
        values=values,
        unscored=unscored,
        label=str(info.label) if info else custom_labels.get(key, key),
        description=str(info.description) if info else "",
    )


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

    @property
    def unscored(self) -> int:
        """(sample, metric) pairs left unscored, over every metric."""
        return sum(m.unscored for m in self.metrics)

    @property
    def scores_asked(self) -> int:
        return sum(m.scored + m.unscored for m in self.metrics)


def run_results(*, run) -> RunResults:
    """Per-metric and per-tag aggregates, the headline and the judge-reviewer agreement: three queries."""
    custom_labels = {c["key"]: c["name"] for c in run.spec.get("custom_criteria", [])}
    keys = list(run.spec.get("metrics", [])) + list(custom_labels)
    values: dict[str, list[float]] = defaultdict(list)
    unscored: dict[str, int] = defaultdict(int)
    tag_values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tag_unscored: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = MetricScore.objects.filter(sample__run=run).values_list(
        "metric", "value", "unscored_reason", "sample__row__tags"
    )
    for metric, value, reason, tags in rows:
        scored = value is not None and not reason
        for bucket_values, bucket_unscored in [(values, unscored)] + [
            (tag_values[t], tag_unscored[t]) for t in (tags or [])
        ]:
            if scored:
                bucket_values[metric].append(value)
            else:
                bucket_unscored[metric] += 1
    summaries = [_summary(key, values[key], unscored[key], custom_labels) for key in keys]
    by_key = {s.key: s for s in summaries}
    headline = next((by_key[k] for k in HEADLINE_METRIC_ORDER if k in by_key and by_key[k].scored), None)
    headline = headline or next((s for s in summaries if s.key.startswith(CUSTOM_PREFIX) and s.scored), None)
    by_tag = {
        tag: [_summary(key, tag_values[tag][key], tag_unscored[tag][key], custom_labels) for key in keys]
        for tag in sorted(set(tag_values) | set(tag_unscored))
    }
    reviews = JudgeReview.objects.filter(score__sample__run=run).aggregate(
        n=Count("pk"), agreed=Count("pk", filter=Q(agrees=True))
    )
    return RunResults(
        metrics=summaries,
        headline=headline,
        by_tag=by_tag,
        samples=SampleResult.objects.filter(run=run).count(),
        reviewed=reviews["n"],
        agreed=reviews["agreed"],
    )


def tags_include(tags, tag: str) -> bool:
    """Whether a row's tags hold ``tag``, ignoring case (Korean tags are compared as they are)."""
    wanted = tag.strip().casefold()
    return any(str(t).casefold() == wanted for t in tags or [])


def row_ids_with_tag(*, version_id: int, tag: str) -> list[int]:
    """Rows of a version carrying ``tag`` (exact, case-insensitive). Matched here rather than with a JSON
    lookup: SQLite stores Korean tags \\u-escaped, so a text search in the database would miss them."""
    return [
        pk
        for pk, tags in DatasetRow.objects.filter(version_id=version_id).values_list("pk", "tags")
        if tags_include(tags, tag)
    ]


def run_tags(*, run) -> list[str]:
    """The tags of the run's dataset rows, for the filter."""
    tags = set()
    for row_tags in DatasetRow.objects.filter(version_id=run.evaluator.dataset_version_id).values_list(
        "tags", flat=True
    ):
        tags.update(row_tags or [])
    return sorted(tags)


def sample_results_page(
    *, run, tag: str = "", metric: str = "", only_unscored: bool = False, page: int = 1, per_page: int = 25
):
    """A page of the per-sample table with its scores and their reviews prefetched: a handful of queries,
    whatever the page size."""
    samples = SampleResult.objects.filter(run=run).select_related("row").order_by("row__position")
    if tag:
        samples = samples.filter(row_id__in=row_ids_with_tag(version_id=run.evaluator.dataset_version_id, tag=tag))
    if only_unscored:
        unscored = MetricScore.objects.filter(sample__run=run).filter(Q(value__isnull=True) | ~Q(unscored_reason=""))
        if metric:
            unscored = unscored.filter(metric=metric)
        samples = samples.filter(pk__in=unscored.values("sample_id"))
    scores = MetricScore.objects.order_by("metric").prefetch_related("reviews")
    if metric:
        scores = scores.filter(metric=metric)
    samples = samples.prefetch_related(Prefetch("metric_scores", queryset=scores))
    return Paginator(samples, per_page).get_page(page)


def dataset_rows_page(*, version, query: str = "", tag: str = "", page=1, per_page: int = 25):
    """A page of a version's rows matching a search (question, reference, tags) and a tag; and the tag counts."""
    rows = version.rows.all()
    tag_counts: dict[str, int] = defaultdict(int)
    folded = query.casefold()
    with_query_tag, with_tag = [], []
    for pk, tags in version.rows.values_list("pk", "tags"):
        for name in tags or []:
            tag_counts[name] += 1
        if folded and any(folded in str(t).casefold() for t in tags or []):
            with_query_tag.append(pk)
        if tag and tags_include(tags, tag):
            with_tag.append(pk)
    if query:
        rows = rows.filter(Q(question__icontains=query) | Q(reference__icontains=query) | Q(pk__in=with_query_tag))
    if tag:
        rows = rows.filter(pk__in=with_tag)
    counts = sorted(tag_counts.items(), key=lambda item: (-item[1], item[0]))
    return Paginator(rows.order_by("position"), per_page).get_page(page), counts


def dataset_can_edit(*, dataset, user) -> bool:
    """Adding versions is for the dataset's owner, its group and staff (an unowned dataset: anyone)."""
    if user.is_staff or user.is_superuser or dataset.owner_id is None or dataset.owner_id == user.pk:
        return True
    return dataset.group_id is not None and user.groups.filter(pk=dataset.group_id).exists()


# Hangul syllables, jamo and compatibility jamo: enough to tell a Korean row from an English one.
HANGUL_PATTERN = "[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]"


def hangul_version_ids(*, version_ids) -> set[int]:
    """The versions among ``version_ids`` with Korean text in a question, reference or response: the texts that
    the embedding metrics embed (answer relevance compares questions, semantic similarity answers). One query."""
    korean = Q(question__regex=HANGUL_PATTERN) | Q(reference__regex=HANGUL_PATTERN) | Q(response__regex=HANGUL_PATTERN)
    return set(
        DatasetRow.objects.filter(korean, version_id__in=version_ids).values_list("version_id", flat=True).distinct()
    )


def embedder_is_english_only(embedding) -> bool:
    """The packaged default (all-MiniLM-L6-v2, trained on English only): no EmbeddingModel chosen, or one
    registered without a folder of its own."""
    return embedding is None or not embedding.path


def run_korean_embedder_warning(*, run) -> bool:
    """The run embedded Korean text with the English-only default model: its embedding metrics mean little."""
    from evaluator.metrics import metric_needs_embeddings

    evaluator = run.evaluator
    if not any(metric_needs_embeddings(key) for key in run.spec.get("metrics", [])):
        return False
    if not embedder_is_english_only(evaluator.embedding):
        return False
    return bool(hangul_version_ids(version_ids=[evaluator.dataset_version_id]))


def dataset_can_delete(*, dataset, user) -> bool:
    """Deleting is for the owner, the owner's group and staff; an unowned dataset: staff only (it is everyone's)."""
    if dataset.owner_id is None:
        return user.is_staff or user.is_superuser
    return dataset_can_edit(dataset=dataset, user=user)


def datasets_visible_to(user):
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    return (
        GoldenDataset.objects.visible_to(user)
        .annotate(
            version_count=Count("versions"),
            latest_number=Subquery(latest.values("number")[:1]),
            latest_rows=Subquery(latest.values("row_count")[:1]),
        )
        .order_by("name")
    )


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
    deltas = [
        MetricDelta(key=s.key, label=s.label, a=s, b=b_by_key[s.key]) for s in results_a.metrics if s.key in b_by_key
    ]
    values: dict[tuple[int, str], dict[int, float]] = defaultdict(dict)
    for run_id, position, metric, value in MetricScore.objects.filter(
        sample__run__in=[run_a, run_b],
        value__isnull=False,
        unscored_reason="",
    ).values_list("sample__run_id", "sample__row__position", "metric", "value"):
        values[(position, metric)][run_id] = value
    changed = sorted(
        (position, metric, pair[run_a.pk], pair[run_b.pk])
        for (position, metric), pair in values.items()
        if run_a.pk in pair and run_b.pk in pair and abs(pair[run_a.pk] - pair[run_b.pk]) > 1e-9
    )
    return deltas, changed


def runs_comparable_with(*, run, user):
    """What *Compare with* offers: the user's visible runs that succeeded on the same dataset version (none
    unless ``run`` itself succeeded), newest first."""
    if run.status != RunStatus.SUCCEEDED:
        return EvaluationRun.objects.none()
    return (
        evaluator_runs_visible_to(user)
        .filter(
            evaluator__dataset_version_id=run.evaluator.dataset_version_id,
            status=RunStatus.SUCCEEDED,
        )
        .exclude(pk=run.pk)
        .order_by("-queued_at", "-pk")
    )


def runs_compare_refusal(*, run_a, run_b) -> str:
    """Why two (visible) runs cannot be compared, as a sentence for the page; "" when they can."""
    if run_a.evaluator.dataset_version_id != run_b.evaluator.dataset_version_id:
        return _(
            "Only runs on the same dataset version can be compared: run #%(a)s used %(va)s, run #%(b)s used %(vb)s."
        ) % {"a": run_a.pk, "b": run_b.pk, "va": run_a.evaluator.dataset_version, "vb": run_b.evaluator.dataset_version}
    unfinished = [run.pk for run in (run_a, run_b) if run.status != RunStatus.SUCCEEDED]
    if unfinished:
        return _("Only succeeded runs can be compared; run #%(id)s has no results to compare.") % {"id": unfinished[0]}
    if run_a.pk == run_b.pk:
        return _("Pick two different runs to compare.")
    return ""


def evaluator_runs_visible_to(user):
    """Evaluator runs the user may see: their dataset is visible to them (a private dataset's runs stay with
    its team), and so is the registered model under test, if any."""
    runs = EvaluationRun.objects.filter(kind=RunKind.EVALUATOR).select_related(
        "submitted_by", "model", "evaluator__dataset_version__dataset"
    )
    if user.is_staff or user.is_superuser:
        return runs
    return runs.filter(
        evaluator__dataset_version__dataset__in=GoldenDataset.objects.visible_to(user).values("pk")
    ).filter(Q(model__isnull=True) | Q(model__in=RegisteredModel.objects.visible_to(user).values("pk")))


def endpoint_can_edit(*, endpoint, user) -> bool:
    """Editing an endpoint (its URL, its key) is for its owner, its group and staff; an unowned one: staff only,
    since whoever edits it decides where the runs that use it send their prompts."""
    if user.is_staff or user.is_superuser:
        return True
    if endpoint.owner_id is not None and endpoint.owner_id == user.pk:
        return True
    return endpoint.group_id is not None and user.groups.filter(pk=endpoint.group_id).exists()


def endpoints_editable_ids(*, endpoints, user) -> set[int]:
    """The ids among ``endpoints`` that ``user`` may edit (endpoint_can_edit), in one query."""
    if user.is_staff or user.is_superuser:
        return {e.pk for e in endpoints}
    groups = set(user.groups.values_list("pk", flat=True))
    return {e.pk for e in endpoints if (e.owner_id is not None and e.owner_id == user.pk) or e.group_id in groups}


def _spec_endpoints(spec) -> list[dict]:
    """The endpoint dicts a run spec holds (evaluator runs: the judge and an endpoint under test)."""
    if not isinstance(spec, dict):
        return []
    target = spec.get("target")
    found = [spec.get("judge"), target.get("endpoint") if isinstance(target, dict) else None]
    return [e for e in found if isinstance(e, dict)]


def run_spec_visible(*, run, user) -> dict:
    """``run.spec`` as ``user`` may read it: the base URL, key reference and local folder of every endpoint the
    user cannot see (LLMEndpoint.objects.visible_to) are left out. Every page and export showing a spec uses this."""
    from evaluator.endpoints import ENDPOINT_PRIVATE_FIELDS

    spec = copy.deepcopy(run.spec)
    endpoints = _spec_endpoints(spec)
    if not endpoints:
        return spec
    ids = {e.get("id") for e in endpoints if isinstance(e.get("id"), int)}
    visible = (
        set(LLMEndpoint.objects.visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    )
    for endpoint in endpoints:
        if endpoint.get("id") not in visible:
            for name in ENDPOINT_PRIVATE_FIELDS:
                endpoint.pop(name, None)
            endpoint["hidden"] = True
    return spec


@dataclass(frozen=True)
class EvaluatorRunLabel:
    """What the queue shows of an evaluator run: its dataset version and what was evaluated."""

    dataset: str
    target: str


def evaluator_run_labels(*, run_ids, user) -> dict[int, EvaluatorRunLabel]:
    """``{run id: label}`` for the evaluator runs among ``run_ids``, in two queries. A dataset or endpoint the
    user may not see is named only as private (the queue lists runs by the runs app's rule, not the dataset's)."""
    links = list(
        EvaluatorRun.objects.filter(run_id__in=list(run_ids)).select_related(
            "dataset_version__dataset", "target_model", "target_endpoint"
        )
    )
    dataset_ids = {link.dataset_version.dataset_id for link in links}
    endpoint_ids = {link.target_endpoint_id for link in links if link.target_endpoint_id}
    datasets_seen = set(GoldenDataset.objects.visible_to(user).filter(pk__in=dataset_ids).values_list("pk", flat=True))
    endpoints_seen = (
        set(LLMEndpoint.objects.visible_to(user).filter(pk__in=endpoint_ids).values_list("pk", flat=True))
        if endpoint_ids
        else set()
    )
    models_seen = set(
        RegisteredModel.objects.visible_to(user)
        .filter(pk__in={link.target_model_id for link in links if link.target_model_id})
        .values_list("pk", flat=True)
    )
    labels = {}
    for link in links:
        version = link.dataset_version
        dataset = (
            _("%(name)s v%(number)s") % {"name": version.dataset.name, "number": version.number}
            if version.dataset_id in datasets_seen
            else _("a private dataset")
        )
        if link.target_kind == TargetKind.REGISTERED_MODEL and link.target_model_id:
            target = link.target_model.display_name if link.target_model_id in models_seen else _("a private model")
        elif link.target_kind == TargetKind.ENDPOINT and link.target_endpoint_id:
            target = link.target_endpoint.name if link.target_endpoint_id in endpoints_seen else _("a private endpoint")
        else:
            target = _("responses in the dataset")
        labels[link.run_id] = EvaluatorRunLabel(dataset=dataset, target=target)
    return labels
