"""Plotly figures for the "Metrics through time" tab, as JSON for plotly.js (served from our static files).

Each family keeps one colour whatever else is drawn: its colour comes from its place among *all* the families
the viewer may pick (ranked by their latest average, as in the picker), not among the ticked ones, so ticking
or unticking a model, or choosing another metric, repaints nothing; and the top families differ in colour.
"""

from __future__ import annotations

import plotly.graph_objects as go
from django.utils import timezone
from django.utils.translation import gettext as _
from plotly.colors import qualitative

from leaderboard.history import ScoreHistory

PALETTE = qualitative.Dark24  # 24 colours that stay apart on white


def scores_over_time_layout(*, height: int, top: int, bottom: int, legend_y: float) -> dict:
    """The layout shared by the charts of scores (in %) against the time they were evaluated."""
    return {
        "xaxis": {"title": _("Evaluated")},
        "yaxis": {"title": _("Score (%)"), "rangemode": "tozero"},
        "hovermode": "closest",
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 60, "r": 20, "t": top, "b": bottom},
        "legend": {"orientation": "h", "y": legend_y},
    }


def family_colours(history: ScoreHistory) -> dict[str, str]:
    """``{family key: colour}`` from each family's place in ``history.families`` (see the module doc)."""
    return {family.key: PALETTE[index % len(PALETTE)] for index, family in enumerate(history.families)}


def _hover(points) -> list[str]:
    revision = _("revision")  # outside the f-strings, where makemessages can find them
    evaluated = _("evaluated")
    lines = []
    for p in points:
        score = f"{p.value * 100:.2f}" + (f" ± {p.stderr * 100:.2f}" if p.stderr is not None else "")
        when = timezone.localtime(p.at).strftime("%Y-%m-%d %H:%M")
        lines.append(f"{p.display_name}<br>{revision} {p.revision[:10]}<br>{evaluated} {when}<br>{score}")
    return lines


def history_figure(history: ScoreHistory, *, metric_label: str) -> str:
    """The best score so far (a step line) and a line per model family across its revisions."""
    figure = go.Figure()
    if history.best:
        # Extend the best line to now, so the current record holder's step reaches the right edge.
        best = [*history.best, history.best[-1]]
        figure.add_trace(
            go.Scatter(
                x=[p.at for p in history.best] + [timezone.now()],
                y=[p.value * 100 for p in best],
                mode="lines+markers",
                line={"shape": "hv", "width": 3, "color": "#1f2933"},
                name=_("Best so far"),
                marker={"size": [7] * len(history.best) + [0]},  # no dot on the "now" end
                text=_hover(best),
                hovertemplate="%{text}<extra>" + _("best") + "</extra>",
            )
        )
    colours = family_colours(history)
    for family in history.shown:
        figure.add_trace(
            go.Scatter(
                x=[p.at for p in family.points],
                y=[p.value * 100 for p in family.points],
                mode="lines+markers",
                name=family.label,
                text=_hover(family.points),
                hovertemplate="%{text}<extra></extra>",
                line={"color": colours[family.key]},
                marker={"color": colours[family.key]},
            )
        )
    figure.update_layout(
        title={"text": _("%(metric)s through time") % {"metric": metric_label}},
        **scores_over_time_layout(height=520, top=60, bottom=50, legend_y=-0.18),
    )
    return figure.to_json()
