"""A model's scores through its own runs, for the history chart on the model page.

Its full succeeded benchmark runs of one suite (smoke runs never rank, so they are left out), oldest
first: the Average and each column over time, with their stderrs as error bars. Two queries: the runs
are the model page's own list, then the score rows of their columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from leaderboard.charts import scores_over_time_layout
from leaderboard.comparison import run_suite_columns
from leaderboard.harness.suites import mean_stderr
from runs.models import EvaluationRun, Score


@dataclass
class HistorySeries:
    label: str
    values: list[float | None] = field(default_factory=list)
    stderrs: list[float | None] = field(default_factory=list)


@dataclass
class ModelHistory:
    suite: str
    runs: list[EvaluationRun]
    series: list[HistorySeries]  # the Average first, then the suite's columns


def model_history(*, runs: list[EvaluationRun], suite: str) -> ModelHistory | None:
    """The history of ``runs`` (a model's succeeded benchmark runs) for one suite; None when no full run has it."""
    full = sorted(
        (r for r in runs if not r.is_partial and r.finished_at and (r.spec or {}).get("suite") == suite),
        key=lambda r: (r.finished_at, r.pk),
    )
    if not full:
        return None
    columns = run_suite_columns(full[-1])
    stored = {
        (s.run_id, s.task, s.metric, s.filter): s
        for s in Score.objects.filter(run__in=[r.pk for r in full], task__in={c.score_task for c in columns})
    }
    average = HistorySeries(label=str(_("Average")))
    series = [HistorySeries(label=c.label) for c in columns]
    for run in full:
        found = [stored.get((run.pk, c.score_task, c.metric, c.filter)) for c in columns]
        values = [s.value if s else None for s in found]
        stderrs = [s.stderr if s else None for s in found]
        for line, value, stderr in zip(series, values, stderrs, strict=True):
            line.values.append(value)
            line.stderrs.append(stderr)
        whole = values and all(v is not None for v in values)
        average.values.append(sum(values) / len(values) if whole else None)
        average.stderrs.append(mean_stderr(stderrs) if whole else None)
    return ModelHistory(suite=suite, runs=full, series=[average, *series])


def model_history_figure(history: ModelHistory) -> str:
    """Plotly JSON: a line per series (percent), ± stderr as error bars, the run and date on hover."""
    figure = go.Figure()
    run_word = _("run")  # outside the f-string, where makemessages can find it
    when = [run.finished_at for run in history.runs]
    hover = [f"{run_word} #{run.pk}<br>{run.finished_at:%Y-%m-%d %H:%M}" for run in history.runs]
    for index, line in enumerate(history.series):
        figure.add_trace(
            go.Scatter(
                x=when,
                y=[None if v is None else v * 100 for v in line.values],
                mode="lines+markers",
                name=line.label,
                error_y={
                    "type": "data",
                    "array": [0 if se is None else se * 100 for se in line.stderrs],
                    "visible": True,
                    "thickness": 1,
                },
                line={"width": 3 if index == 0 else 1.5},
                text=hover,
                hovertemplate="%{text}<br>" + line.label + ": %{y:.2f} ± %{error_y.array:.2f}<extra></extra>",
            )
        )
    figure.update_layout(**scores_over_time_layout(height=380, top=20, bottom=40, legend_y=-0.2))
    if len(set(when)) == 1:  # one run: a day either side, not an axis of milliseconds around it
        figure.update_xaxes(range=[when[0] - timedelta(days=1), when[0] + timedelta(days=1)])
    return figure.to_json()
