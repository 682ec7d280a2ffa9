"""Per-metric aggregates of an evaluator run, computed in this one place.

The executor turns them into the run's Score rows (mean, stderr, count) and the results page shows them
with a 95% interval; both call ``metric_summary`` on the scored values, so the two never disagree.
Unscored samples are counted, never averaged as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.96


@dataclass
class MetricSummary:
    key: str
    label: str
    description: str
    scored: int = 0
    unscored: int = 0
    mean: float | None = None
    stderr: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_method: str = ""  # "wilson" (yes/no metrics) or "t" (graded), see confidence_interval

    @property
    def total(self) -> int:
        return self.scored + self.unscored

    @property
    def none_scored(self) -> bool:
        """Asked of some samples, scored on none: the page warns rather than show an empty mean."""
        return self.total > 0 and self.scored == 0


def confidence_interval(values: list[float]) -> tuple[float | None, float | None, str]:
    """A 95% interval for the mean of 0..1 scores, and the method's name for the page.

    Yes/no metrics (every value 0 or 1) get the Wilson score interval, which stays sensible near 0% and
    100% and for small n; graded metrics get Student's t interval of the mean, clipped to 0..1. Under two
    samples there is no interval.
    """
    n = len(values)
    if n == 0:
        return None, None, ""
    mean = sum(values) / n
    if all(v in (0.0, 1.0) for v in values):
        centre = (mean + Z_95**2 / (2 * n)) / (1 + Z_95**2 / n)
        half = Z_95 * math.sqrt(mean * (1 - mean) / n + Z_95**2 / (4 * n * n)) / (1 + Z_95**2 / n)
        return max(0.0, centre - half), min(1.0, centre + half), "wilson"
    if n < 2:
        return None, None, ""
    from scipy.stats import t

    half = float(t.ppf(0.975, n - 1)) * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return max(0.0, mean - half), min(1.0, mean + half), "t"


def metric_summary(
    *, key: str, values: list[float], unscored: int, label: str = "", description: str = ""
) -> MetricSummary:
    """Mean, standard error of the mean and 95% interval over the scored ``values`` (None when there are none)."""
    summary = MetricSummary(key=key, label=label or key, description=description, scored=len(values), unscored=unscored)
    if not values:
        return summary
    n = len(values)
    summary.mean = sum(values) / n
    if n >= 2:
        summary.stderr = math.sqrt(sum((v - summary.mean) ** 2 for v in values) / (n - 1) / n)
    summary.ci_low, summary.ci_high, summary.ci_method = confidence_interval(values)
    return summary
