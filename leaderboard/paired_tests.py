"""Is run B's score really different from run A's? Paired tests on the samples both runs scored.

Two runs of a benchmark answer the same documents, so their per-sample scores are paired: a test that
uses the pairing is far more sensitive than comparing the two reported stderrs as if independent
(most documents are right, or wrong, in both runs, and only the flips carry information).

- 0/1 metrics (accuracy, exact match): McNemar's exact test, the two-sided binomial test of the
  discordant pairs (``b`` right in A only, ``c`` right in B only) against p = 1/2.
- Continuous metrics (truthfulqa_mc2, judge scores): the paired t-test on the per-sample differences.
- Without per-sample data on both sides (an imported result, a log that was removed): the unpaired
  z-test on the two stderrs, said so by ``test``.

The interval is the 95% interval of the mean difference B − A. Holm's step-down correction is applied
across the rows of one comparison (``holm_adjust``), so ten columns do not give ten chances of a false
alarm. SciPy computes the distributions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
MCNEMAR = "mcnemar-exact"
PAIRED_T = "paired-t"
STDERR_Z = "stderr-z"


@dataclass(frozen=True)
class PairedResult:
    test: str  # MCNEMAR, PAIRED_T or STDERR_Z
    delta: float  # mean of B − A
    low: float | None  # 95% interval of the delta
    high: float | None
    p_value: float | None
    pairs: int = 0  # samples scored in both runs (0 for STDERR_Z)
    became_worse: int = 0  # 0/1 metrics: right in A, wrong in B
    became_better: int = 0


def is_binary(values: Sequence[float]) -> bool:
    return all(value in (0.0, 1.0) for value in values)


def mcnemar_exact(*, became_worse: int, became_better: int, pairs: int) -> PairedResult:
    """McNemar's exact test from the discordant counts of ``pairs`` paired 0/1 scores."""
    from scipy.stats import binomtest

    discordant = became_worse + became_better
    delta = (became_better - became_worse) / pairs if pairs else 0.0
    p_value = binomtest(min(became_worse, became_better), discordant, 0.5).pvalue if discordant else 1.0
    # Wald interval of a paired difference of proportions (Agresti, Categorical Data Analysis, 10.1).
    spread = math.sqrt(max(discordant - pairs * delta**2, 0.0)) / pairs if pairs else 0.0
    return PairedResult(
        test=MCNEMAR,
        delta=delta,
        low=delta - 1.96 * spread,
        high=delta + 1.96 * spread,
        p_value=float(min(p_value, 1.0)),
        pairs=pairs,
        became_worse=became_worse,
        became_better=became_better,
    )


def paired_t(values_a: Sequence[float], values_b: Sequence[float]) -> PairedResult:
    """The paired t-test of B − A over matched samples (continuous scores)."""
    from scipy.stats import t as student_t

    differences = [b - a for a, b in zip(values_a, values_b, strict=True)]
    n = len(differences)
    delta = sum(differences) / n if n else 0.0
    if n < 2:
        return PairedResult(test=PAIRED_T, delta=delta, low=None, high=None, p_value=None, pairs=n)
    variance = sum((d - delta) ** 2 for d in differences) / (n - 1)
    spread = math.sqrt(variance / n)
    if spread == 0:  # every sample moved by the same amount (or none moved)
        return PairedResult(test=PAIRED_T, delta=delta, low=delta, high=delta, p_value=float(delta == 0), pairs=n)
    statistic = delta / spread
    half = student_t.ppf(0.975, n - 1) * spread
    p_value = 2 * student_t.sf(abs(statistic), n - 1)
    return PairedResult(
        test=PAIRED_T, delta=delta, low=delta - half, high=delta + half, p_value=float(p_value), pairs=n
    )


def paired_compare(values_a: Sequence[float], values_b: Sequence[float]) -> PairedResult:
    """McNemar's exact test for 0/1 scores, else the paired t-test; ``values_*`` are matched pairwise."""
    if is_binary(values_a) and is_binary(values_b):
        worse = sum(1 for a, b in zip(values_a, values_b, strict=True) if a > b)
        better = sum(1 for a, b in zip(values_a, values_b, strict=True) if b > a)
        return mcnemar_exact(became_worse=worse, became_better=better, pairs=len(values_a))
    return paired_t(values_a, values_b)


def stderr_z(*, value_a: float, value_b: float, stderr_a: float, stderr_b: float) -> PairedResult:
    """The fallback without samples: B − A against √(se_A² + se_B²), the runs taken as independent."""
    from scipy.stats import norm

    delta = value_b - value_a
    spread = math.sqrt(stderr_a**2 + stderr_b**2)
    p_value = 2 * norm.sf(abs(delta) / spread) if spread else float(delta == 0)
    return PairedResult(
        test=STDERR_Z, delta=delta, low=delta - 1.96 * spread, high=delta + 1.96 * spread, p_value=float(p_value)
    )


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None): reject where adjusted < alpha."""
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p_value, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_value))
        adjusted[index] = running
    return adjusted
