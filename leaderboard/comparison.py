"""Comparing two benchmark runs: score deltas with their uncertainty, and the samples that flipped.

A delta is ``b - a``. When both runs have per-sample logs, it is judged by a *paired* test on the
documents both scored (``leaderboard.paired_tests``: McNemar's exact test for 0/1 metrics, the paired
t-test for continuous ones), else by the two stderrs taken as independent (``|delta| > 1.96 *
sqrt(se_a**2 + se_b**2)``), and the row says which. P-values are Holm-adjusted across the column rows
(and, separately, across the score rows) of one comparison; *significant* means adjusted p < 0.05.

A sample *flipped* when it is correct in one run and incorrect in the other (``leaderboard.samples``
decides "correct"), matched by task, lm-eval filter and ``doc_id``. Both runs use run a's
correctness metric for a task (run b's when run a's suite does not score it), so a task is judged
the same way on both sides.

Most tasks of a large suite flip nothing (57 MMLU subjects of zeros): the page lists the tasks that
flipped and folds the others away; the flipped samples of one task are shown side by side (the
prompt, both runs' outputs and both scores), a few at a time (``FLIPS_SIDE_BY_SIDE``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy

from leaderboard.harness.suites import SuiteError
from leaderboard.paired_tests import (
    ALPHA,
    MCNEMAR,
    PAIRED_T,
    STDERR_Z,
    PairedResult,
    holm_adjust,
    paired_compare,
    stderr_z,
)
from leaderboard.samples import (
    SamplesUnavailable,
    SampleView,
    correctness_metrics,
    outcomes_from_values,
    sample_values,
    samples_of_docs,
)

SIGNIFICANCE_Z = 1.96
TEST_LABELS = {
    MCNEMAR: gettext_lazy("McNemar exact (paired samples)"),
    PAIRED_T: gettext_lazy("paired t (samples)"),
    STDERR_Z: gettext_lazy("stderrs only (no per-sample data)"),
}
FLIPS_SHOWN = 200  # doc ids listed per task and direction; the counts are always complete
FLIPS_SIDE_BY_SIDE = 10  # flipped samples shown in full per direction


@dataclass
class ScoreDelta:
    task: str
    metric: str
    filter: str
    value_a: float | None
    value_b: float | None
    stderr_a: float | None = None
    stderr_b: float | None = None
    label: str = ""  # the suite column's label, for column rows
    delta: float | None = None
    delta_stderr: float | None = None
    significant: bool | None = None
    # The test that judged it (leaderboard.paired_tests), with its Holm-adjusted p-value.
    paired: PairedResult | None = None
    p_adjusted: float | None = None
    leaves: tuple[str, ...] = ()  # the lm-eval tasks whose samples the row's value averages

    @property
    def test_label(self) -> str:
        return str(TEST_LABELS.get(self.paired.test, self.paired.test)) if self.paired else ""


@dataclass
class TaskFlips:
    task: str
    filter: str
    compared: int = 0  # documents judged in both runs
    became_incorrect: list[Any] = field(default_factory=list)  # correct in a, incorrect in b
    became_correct: list[Any] = field(default_factory=list)  # incorrect in a, correct in b
    became_incorrect_count: int = 0
    became_correct_count: int = 0

    @property
    def flipped(self) -> int:
        return self.became_incorrect_count + self.became_correct_count


@dataclass
class FlippedSample:
    doc_id: Any
    a: SampleView
    b: SampleView
    became_correct: bool  # incorrect in a, correct in b

    @property
    def score_a(self) -> Any:
        return self.a.metrics.get(self.a.correctness_metric) if self.a.correctness_metric else None

    @property
    def score_b(self) -> Any:
        return self.b.metrics.get(self.b.correctness_metric) if self.b.correctness_metric else None


@dataclass
class SideBySide:
    """The flipped samples of one task and filter, both runs' views of each document."""

    flips: TaskFlips
    samples: list[FlippedSample]


@dataclass
class RunComparison:
    run_a: Any
    run_b: Any
    columns: list[ScoreDelta]
    scores: list[ScoreDelta]
    flips: list[TaskFlips]
    samples_problem: str = ""
    side_by_side: SideBySide | None = None

    @property
    def tasks_flipped(self) -> list[TaskFlips]:
        return [flip for flip in self.flips if flip.flipped]

    @property
    def tasks_unflipped(self) -> list[TaskFlips]:
        return [flip for flip in self.flips if not flip.flipped]


def score_delta(
    *, value_a: float | None, value_b: float | None, stderr_a: float | None, stderr_b: float | None
) -> tuple[float | None, float | None, bool | None]:
    """``(delta, its stderr, significant)``; see the module doc."""
    if value_a is None or value_b is None:
        return None, None, None
    delta = value_b - value_a
    if stderr_a is None or stderr_b is None:
        return delta, None, None
    delta_stderr = math.sqrt(stderr_a**2 + stderr_b**2)
    return delta, delta_stderr, abs(delta) > SIGNIFICANCE_Z * delta_stderr


def _delta(task: str, metric: str, filter: str, a: Any, b: Any, label: str = "") -> ScoreDelta:
    delta, delta_stderr, significant = score_delta(
        value_a=a.value, value_b=b.value, stderr_a=a.stderr, stderr_b=b.stderr
    )
    return ScoreDelta(
        task=task,
        metric=metric,
        filter=filter,
        value_a=a.value,
        value_b=b.value,
        stderr_a=a.stderr,
        stderr_b=b.stderr,
        label=label,
        delta=delta,
        delta_stderr=delta_stderr,
        significant=significant,
    )


def score_deltas(
    *,
    scores_a: Iterable[Any],
    scores_b: Iterable[Any],
    columns: Iterable[Any] = (),
    leaf_tasks: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[ScoreDelta], list[ScoreDelta]]:
    """Column rows (suite columns scored in both runs) and rows for every score present in both runs.

    ``scores_*`` are Score rows (or anything with task, metric, filter, value, stderr); ``columns`` are
    suite columns (key, label, score_task, metric, filter).
    """
    by_key_a = {(s.task, s.metric, s.filter): s for s in scores_a}
    by_key_b = {(s.task, s.metric, s.filter): s for s in scores_b}
    column_rows = []
    for column in columns:
        key = (column.score_task, column.metric, column.filter)
        if key in by_key_a and key in by_key_b:
            row = _delta(*key, by_key_a[key], by_key_b[key], label=column.label)
            names = list(getattr(column, "lm_eval_names", ()) or (column.score_task,))
            row.leaves = tuple(leaf for name in names for leaf in (leaf_tasks or {}).get(name, [name]))
            column_rows.append(row)
    rows = [_delta(*key, score, by_key_b[key]) for key, score in sorted(by_key_a.items()) if key in by_key_b]
    for row in rows:
        row.leaves = (row.task,)
    return column_rows, rows


def rows_judge(
    rows: list[ScoreDelta],
    *,
    values_a: Mapping[tuple[str, str, Any], float | None] | None,
    values_b: Mapping[tuple[str, str, Any], float | None] | None,
    metrics: Mapping[str, str],
) -> None:
    """Judge each row by a paired test on the samples both runs scored with the row's metric (else by the
    stderrs), then Holm-adjust the rows' p-values together; sets ``paired``, ``p_adjusted`` and ``significant``."""
    by_task = _values_by_task_filter(values_a or {}), _values_by_task_filter(values_b or {})
    for row in rows:
        row.paired = _row_test(row, by_task=by_task, metrics=metrics)
    adjusted = holm_adjust([row.paired.p_value if row.paired else None for row in rows])
    for row, p_adjusted in zip(rows, adjusted, strict=True):
        row.p_adjusted = p_adjusted
        row.significant = None if p_adjusted is None else p_adjusted < ALPHA


def _values_by_task_filter(values: Mapping[tuple[str, str, Any], float | None]) -> dict[tuple[str, str], dict]:
    grouped: dict[tuple[str, str], dict] = {}
    for (task, filter_name, doc_id), value in values.items():
        if value is not None:
            grouped.setdefault((task, filter_name), {})[doc_id] = value
    return grouped


def _row_test(row: ScoreDelta, *, by_task, metrics: Mapping[str, str]) -> PairedResult | None:
    if row.value_a is None or row.value_b is None:
        return None
    # The samples carry each task's correctness metric: they judge a row only when it is that metric.
    if row.leaves and all(metrics.get(leaf) == row.metric for leaf in row.leaves):
        pairs_a, pairs_b = [], []
        for leaf in row.leaves:
            docs_a, docs_b = by_task[0].get((leaf, row.filter), {}), by_task[1].get((leaf, row.filter), {})
            for doc_id in docs_a.keys() & docs_b.keys():
                pairs_a.append(docs_a[doc_id])
                pairs_b.append(docs_b[doc_id])
        if pairs_a:
            return paired_compare(pairs_a, pairs_b)
    if row.stderr_a is None or row.stderr_b is None:
        return None
    return stderr_z(value_a=row.value_a, value_b=row.value_b, stderr_a=row.stderr_a, stderr_b=row.stderr_b)


def sample_flips(*, run_a, run_b, shown: int = FLIPS_SHOWN) -> list[TaskFlips]:
    """Per (task, filter) present in both runs' sample logs: the documents whose correctness flipped.

    Raises:
        SamplesUnavailable: a run has no readable per-sample log.
    """
    preferred = shared_correctness_metrics(run_a=run_a, run_b=run_b)
    outcomes_a = outcomes_from_values(sample_values(run_a, preferred=preferred))
    outcomes_b = outcomes_from_values(sample_values(run_b, preferred=preferred))
    return flips_from_outcomes(outcomes_a, outcomes_b, shown=shown)


def shared_correctness_metrics(*, run_a, run_b) -> dict[str, str]:
    """``{task: metric}`` judging both runs alike: run a's correctness metric, else run b's."""
    return {**correctness_metrics(run_b), **correctness_metrics(run_a)}


def flips_from_outcomes(outcomes_a: Mapping, outcomes_b: Mapping, *, shown: int = FLIPS_SHOWN) -> list[TaskFlips]:
    """Per (task, filter): the documents correct in one run and incorrect in the other."""
    flips: dict[tuple[str, str], TaskFlips] = {}
    for key, correct_a in outcomes_a.items():
        if key not in outcomes_b:
            continue
        task, filter_name, doc_id = key
        entry = flips.setdefault((task, filter_name), TaskFlips(task=task, filter=filter_name))
        correct_b = outcomes_b[key]
        if correct_a is None or correct_b is None:
            continue
        entry.compared += 1
        if correct_a and not correct_b:
            entry.became_incorrect_count += 1
            if len(entry.became_incorrect) < shown:
                entry.became_incorrect.append(doc_id)
        elif correct_b and not correct_a:
            entry.became_correct_count += 1
            if len(entry.became_correct) < shown:
                entry.became_correct.append(doc_id)
    return list(flips.values())


def run_suite_columns(run) -> list[Any]:
    """The suite columns a run is read with: frozen in its spec, else the suite file of its name and version."""
    from leaderboard.harness.executor import suite_from_spec
    from leaderboard.harness.suites import suite_get

    spec = run.spec or {}
    try:
        return list(suite_from_spec(spec).columns)
    except (KeyError, TypeError, ValueError, SuiteError):
        pass
    try:
        return list(suite_get(spec["suite"], version=spec.get("suite_version")).columns)
    except (KeyError, TypeError, ValueError, SuiteError):
        return []


def flipped_side_by_side(*, run_a, run_b, flips: TaskFlips, shown: int = FLIPS_SIDE_BY_SIDE) -> SideBySide:
    """Both runs' views of the first ``shown`` documents that flipped each way in one task and filter.

    Raises:
        SamplesUnavailable: a run has no readable per-sample log.
    """
    preferred = {**correctness_metrics(run_b), **correctness_metrics(run_a)}.get(flips.task)
    picked = [(doc, False) for doc in flips.became_incorrect[:shown]] + [
        (doc, True) for doc in flips.became_correct[:shown]
    ]
    doc_ids = [doc for doc, _became_correct in picked]
    views_a, views_b = (
        samples_of_docs(run, task=flips.task, filter=flips.filter, doc_ids=doc_ids, preferred=preferred)
        for run in (run_a, run_b)
    )
    samples = [
        FlippedSample(doc_id=doc, a=views_a[doc], b=views_b[doc], became_correct=became_correct)
        for doc, became_correct in picked
        if doc in views_a and doc in views_b
    ]
    return SideBySide(flips=flips, samples=samples)


def runs_compare(*, run_a, run_b, task: str = "", filter: str = "") -> RunComparison:
    """Scores and flipped samples of two runs (Score rows are read from the database, samples from the logs).

    ``task`` and ``filter`` pick the task whose flipped samples are shown side by side; by default the first
    task that flipped."""
    column_rows, rows = score_deltas(
        scores_a=run_a.scores.all(),
        scores_b=run_b.scores.all(),
        columns=run_suite_columns(run_a),
        leaf_tasks=(run_a.details or {}).get("leaf_tasks") or {},
    )
    comparison = RunComparison(run_a=run_a, run_b=run_b, columns=column_rows, scores=rows, flips=[])
    metrics = shared_correctness_metrics(run_a=run_a, run_b=run_b)
    values_a = values_b = None
    try:
        values_a, values_b = sample_values(run_a, preferred=metrics), sample_values(run_b, preferred=metrics)
        comparison.flips = flips_from_outcomes(outcomes_from_values(values_a), outcomes_from_values(values_b))
        flipped = comparison.tasks_flipped
        chosen = next((f for f in flipped if f.task == task and (not filter or f.filter == filter)), None)
        chosen = chosen or (flipped[0] if flipped else None)
        if chosen:
            comparison.side_by_side = flipped_side_by_side(run_a=run_a, run_b=run_b, flips=chosen)
    except SamplesUnavailable as exc:
        comparison.samples_problem = str(exc)
    for group in (column_rows, rows):  # Holm within the columns, and within the score rows
        rows_judge(group, values_a=values_a, values_b=values_b, metrics=metrics)
    return comparison
