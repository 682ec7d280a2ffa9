"""The model page, the per-sample browser and the comparison of two runs (as on the Open LLM Leaderboard)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from config.htmx import render_page_or_fragment
from config.params import choice_param, int_param
from leaderboard.comparison import run_suite_columns, runs_compare
from leaderboard.harness.suites import DEFAULT_SUITE, SHIPPED_SUITE_TITLES, mean_stderr, suite_column_stderrs
from leaderboard.model_card import model_card_get
from leaderboard.model_history import model_history, model_history_figure
from leaderboard.models import RegisteredModel
from leaderboard.reproduce import column_leaves, reproduce_with_value
from leaderboard.samples import CORRECT_CHOICES, DEFAULT_PER_PAGE, SamplesUnavailable, samples_page
from runs.choices import RunKind, RunStatus
from runs.formatting import duration_text
from runs.models import EvaluationRun, Score

COMPARE_CHOICES_LIMIT = 200


def _visible_runs(user):
    """Runs of models the user may see (runs without a model are not shown here)."""
    return EvaluationRun.objects.filter(model__in=RegisteredModel.objects.visible_to(user).values("pk"))


def run_label(run) -> str:
    spec = run.spec or {}
    suite = spec.get("suite") or run.get_kind_display()
    version = f" v{spec['suite_version']}" if spec.get("suite_version") else ""
    when = run.finished_at.strftime("%Y-%m-%d %H:%M") if run.finished_at else ""
    # Outside the f-string, where makemessages can find them.
    kind = _("partial run") if spec.get("missing_columns") else _("smoke run")
    partial = f" ({kind})" if run.is_partial else ""
    return f"#{run.pk} · {suite}{version} · {when}{partial}"


@dataclass
class ScoreLine:
    score: Score
    first_of_task: bool = False
    reproduce: str = ""
    config_json: str = ""
    has_samples: bool = False


@dataclass
class ColumnLine:
    key: str
    label: str
    task: str
    metric: str
    filter: str
    score: Score | None
    # Left out of a partial run: the dataset mirror lacked its data (spec["missing_columns"]).
    missing: bool = False
    # The command that re-runs the column and prints its value in full (leaderboard.reproduce).
    reproduce: str = ""

    @property
    def value(self) -> float | None:
        return self.score.value if self.score else None

    @property
    def stderr(self) -> float | None:
        return self.score.stderr if self.score else None


@dataclass
class SuiteScores:
    """The scores of one run shown on the model page: the suite's columns, then every Score row."""

    run: EvaluationRun
    title: str
    columns: list[ColumnLine] = field(default_factory=list)
    lines: list[ScoreLine] = field(default_factory=list)
    average: Score | None = None
    reproduce_problem: str = ""


def _reproduce_by_task(details: dict[str, Any], columns: list[Any]) -> dict[str, str]:
    """Score-row task -> the lm-eval command that re-runs it (a group's command for its leaves and plain mean)."""
    commands = details.get("reproduce_commands") or {}
    leaf_tasks = details.get("leaf_tasks") or {}
    by_task: dict[str, str] = {}
    for request, command in commands.items():
        for task in [request, *leaf_tasks.get(request, [])]:
            by_task.setdefault(task, command)
    for column in columns:
        command = next((commands[name] for name in column.lm_eval_names if name in commands), "")
        if command:
            by_task.setdefault(column.score_task, command)
    return by_task


def _suite_scores(run: EvaluationRun, details: dict[str, Any], scores: list[Score]) -> SuiteScores:
    spec = run.spec or {}
    columns = run_suite_columns(run)
    by_key = {(s.task, s.metric, s.filter): s for s in scores}
    reproduce = _reproduce_by_task(details, columns)
    configs = (details.get("lm_eval") or {}).get("configs") or {}
    sampled = set((details.get("lm_eval") or {}).get("n-samples") or {}) if run.samples_path else set()
    title = spec.get("suite_title") or ""
    title = (
        _(title) if title in SHIPPED_SUITE_TITLES else title
    )  # a shipped suite's title reads in the reader's language
    result = SuiteScores(
        run=run,
        title=title or spec.get("suite") or run.get_kind_display(),
        reproduce_problem=details.get("reproduce_problem", ""),
    )
    leaf_tasks = details.get("leaf_tasks") or {}
    for column in columns:
        result.columns.append(
            ColumnLine(
                key=column.key,
                label=column.label,
                task=column.score_task,
                metric=column.metric,
                filter=column.filter,
                score=by_key.get((column.score_task, column.metric, column.filter)),
                missing=column.key in (spec.get("missing_columns") or ()),
                reproduce=_column_reproduce(column, reproduce, leaf_tasks),
            )
        )
    _stderrs_fill(result, columns, scores, leaf_tasks)
    previous = None
    for score in scores:
        if score.metric == "average" and score.task.endswith("_average"):
            result.average = score
        first = score.task != previous
        previous = score.task
        config = configs.get(score.task) if first else None
        result.lines.append(
            ScoreLine(
                score=score,
                first_of_task=first,
                reproduce=reproduce.get(score.task, "") if first else "",
                config_json=json.dumps(config, indent=1, ensure_ascii=False, default=str) if config else "",
                has_samples=score.task in sampled,
            )
        )
    return result


def _column_reproduce(column, reproduce_by_task: dict[str, str], leaf_tasks: dict) -> str:
    command = reproduce_by_task.get(column.score_task, "")
    if len(column.lm_eval_names) != 1:  # one command per name: no single command prints the column's value
        return command
    return reproduce_with_value(
        command=command, leaves=column_leaves(column, leaf_tasks), metric=column.metric, filter=column.filter
    )


def _stderrs_fill(result: SuiteScores, columns: list[Any], scores: list[Score], leaf_tasks: dict) -> None:
    """Runs stored before plain means had a stderr: compute it from the leaves' (and the Average's from the
    columns'), for the page only; the stored rows stay as they are."""
    from_leaves = suite_column_stderrs(columns, scores, leaf_tasks)
    for line in result.columns:
        if line.score is not None and line.score.stderr is None:
            line.score.stderr = from_leaves.get(line.key)
    if result.average is not None and result.average.stderr is None:
        result.average.stderr = mean_stderr([line.stderr for line in result.columns])


def _latest_per_suite(runs: list[EvaluationRun]) -> dict[str, EvaluationRun]:
    """Per suite, the newest full succeeded run (a smoke run only when the suite has no full run)."""
    latest: dict[str, EvaluationRun] = {}
    ordered = sorted(runs, key=lambda r: (r.is_partial, -(r.finished_at.timestamp() if r.finished_at else 0), -r.pk))
    for run in ordered:
        latest.setdefault((run.spec or {}).get("suite", ""), run)
    return latest


@require_GET
def model_detail(request, model_id: int):
    """A registered model: what it is, its scores per suite with how to reproduce them, its runs."""
    model = get_object_or_404(
        RegisteredModel.objects.visible_to(request.user).select_related("owner", "group"), pk=model_id
    )
    history = list(model.runs.defer("details", "log", "error_message").order_by("-queued_at", "-pk"))
    succeeded = [r for r in history if r.status == RunStatus.SUCCEEDED and r.kind == RunKind.BENCHMARK]
    shown = _latest_per_suite(succeeded)
    picked = int_param(request.GET, "run")
    picked_run = next((r for r in succeeded if r.pk == picked), None)
    if picked_run is not None:
        shown[(picked_run.spec or {}).get("suite", "")] = picked_run
    shown_runs = sorted(shown.values(), key=lambda r: (r.spec or {}).get("suite", ""))
    details = dict(EvaluationRun.objects.filter(pk__in=[r.pk for r in shown_runs]).values_list("pk", "details"))
    scores_by_run: dict[int, list[Score]] = {}
    for score in Score.objects.filter(run__in=[r.pk for r in shown_runs]).order_by("task", "metric", "filter"):
        scores_by_run.setdefault(score.run_id, []).append(score)
    sections = [_suite_scores(run, details.get(run.pk) or {}, scores_by_run.get(run.pk, [])) for run in shown_runs]

    others = list(
        _visible_runs(request.user)
        .filter(kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED)
        .exclude(model=model)
        .select_related("model")
        .defer("details", "log", "error_message")
        .order_by("-finished_at", "-pk")[:COMPARE_CHOICES_LIMIT]
    )
    default_a = sections[0].run.pk if sections else None
    compare_b = [(r, f"{model.display_name} {run_label(r)}") for r in succeeded] + [
        (r, f"{r.model.display_name} {run_label(r)}") for r in others
    ]
    succeeded_labels = [(r, run_label(r)) for r in succeeded]
    history_suite = DEFAULT_SUITE if DEFAULT_SUITE in shown else next(iter(sorted(shown)), "")
    chart = model_history(runs=succeeded, suite=history_suite) if history_suite else None
    return render(
        request,
        "leaderboard/model_detail.html",
        {
            "card": model_card_get(storage_path=model.storage_path),
            "history_chart": model_history_figure(chart) if chart else "",
            "history_suite": history_suite,
            "model": model,
            "sections": sections,
            "picked": picked_run,
            "succeeded": succeeded_labels,
            "history": [(run, duration_text(run.duration)) for run in history],
            "compare_a": succeeded_labels,
            "compare_b": compare_b,
            "default_a": default_a,
            "default_b": next((r.pk for r, _label in compare_b if r.pk != default_a), None),
        },
    )


@require_GET
def run_samples(request, run_id: int):
    """The per-sample browser of a run: filter by task and correct/incorrect; htmx swaps only the table."""
    run = get_object_or_404(_visible_runs(request.user).select_related("model"), pk=run_id)
    error = ""
    page = None
    try:
        page = samples_page(
            run=run,
            task=request.GET.get("task") or None,
            correct=choice_param(request.GET, "correct", CORRECT_CHOICES, "all"),
            page=int_param(request.GET, "page", 1),
            filter=request.GET.get("filter", ""),
            per_page=int_param(request.GET, "per_page", DEFAULT_PER_PAGE),
            doc_id=int_param(request.GET, "doc", minimum=0),
        )
    except SamplesUnavailable as exc:
        error = str(exc)
    context = {
        "run": run,
        "page": page,
        "error": error,
        "correct_choices": [("all", _("All")), ("yes", _("Correct")), ("no", _("Incorrect"))],
    }
    return render_page_or_fragment(
        request, page="leaderboard/run_samples.html", fragment="leaderboard/_samples_table.html", context=context
    )


@require_GET
def compare(request):
    """Two runs side by side: score deltas with their uncertainty, and the samples that flipped."""
    visible = _visible_runs(request.user).filter(kind=RunKind.BENCHMARK, status=RunStatus.SUCCEEDED)
    a_id, b_id = int_param(request.GET, "a"), int_param(request.GET, "b")
    if a_id is None or b_id is None:
        raise Http404(_("Pick two succeeded runs to compare."))
    run_a = get_object_or_404(visible.select_related("model"), pk=a_id)
    run_b = get_object_or_404(visible.select_related("model"), pk=b_id)
    # ``task`` and ``filter`` pick whose flipped samples are shown side by side (matched against the runs' tasks).
    comparison = runs_compare(
        run_a=run_a, run_b=run_b, task=request.GET.get("task", ""), filter=request.GET.get("filter", "")
    )
    return render(
        request,
        "leaderboard/compare.html",
        {
            "comparison": comparison,
            "run_a": run_a,
            "run_b": run_b,
            "label_a": run_label(run_a),
            "label_b": run_label(run_b),
        },
    )
