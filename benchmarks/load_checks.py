"""What benchmarks/load_submissions.py checks once the load is over, read from the database and the answers:
nothing lost, nothing duplicated, every answer a success. Each check gives (name, ok, detail)."""

from __future__ import annotations

from collections import Counter, defaultdict

from benchmarks.load_plan import EVALUATOR_METRICS, Form

Check = tuple[str, bool, str]


def _short(items, limit: int = 8) -> str:
    items = list(items)
    return ", ".join(map(str, items[:limit])) + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def answers_check(forms: list[Form], server_errors: list) -> list[Check]:
    """Every post answered by a redirect to its run; a form posted twice got one run; duplicates of a
    spec got the same run, forced re-runs one each."""
    checks: list[Check] = [("0 HTTP 5xx", not server_errors, _short(server_errors) or "none")]
    refused = [
        (form.pattern, form.user, result.status, result.error)
        for form in forms
        for result in form.results
        if result.run_id is None
    ]
    checks.append(("every post queued or got its run (302 to the run)", not refused, _short(refused, 4) or "all"))
    split = [form.token[:8] for form in forms if len({r.run_id for r in form.results}) > 1]
    checks.append(
        (
            "a form posted twice at once made one run",
            not split,
            _short(split) or f"{sum(1 for f in forms if f.posts == 2)} double posts, each one run",
        )
    )
    by_spec: dict[tuple, list[Form]] = defaultdict(list)
    for form in forms:
        if form.kind == "submit":
            by_spec[form.spec].append(form)
    wrong = []
    for spec, spec_forms in by_spec.items():
        run_ids = [form.results[0].run_id for form in spec_forms]
        expected_distinct = len(spec_forms) if spec_forms[0].forced else 1
        if len(set(run_ids)) != expected_distinct:
            wrong.append((spec[0].rsplit("/", 1)[-1], spec[1], run_ids))
    checks.append(("duplicates of a spec got one run; each forced form its own", not wrong, _short(wrong, 3) or "yes"))
    return checks


def database_check(forms: list[Form], expected: dict[str, int]) -> list[Check]:
    from leaderboard.models import RegisteredModel
    from runs.models import EvaluationRun

    checks: list[Check] = []
    specs = {form.spec for form in forms if form.kind == "submit"}
    rows = Counter(RegisteredModel.objects.values_list("storage_path", "precision"))
    extra = {key: n for key, n in rows.items() if n != 1 or key not in specs}
    checks.append(
        (
            f"model rows = distinct (folder, precision) = {expected['models']}",
            sum(rows.values()) == expected["models"] and not extra and set(rows) == specs,
            f"{sum(rows.values())} rows" + (f"; unexpected {_short(extra.items(), 3)}" if extra else ""),
        )
    )
    counted = Counter(EvaluationRun.objects.values_list("kind", flat=True))
    checks.append(
        (
            f"benchmark runs = {expected['benchmark_runs']}, evaluator runs = {expected['evaluator_runs']}",
            counted.get("benchmark", 0) == expected["benchmark_runs"]
            and counted.get("evaluator", 0) == expected["evaluator_runs"],
            dict(counted).__repr__(),
        )
    )
    answered = {result.run_id for form in forms for result in form.results if result.run_id}
    stored = set(EvaluationRun.objects.values_list("pk", flat=True))
    checks.append(
        (
            "every stored run is one a post was answered with",
            stored == answered,
            f"stored-only {_short(stored - answered)}; answered-only {_short(answered - stored)}"
            if stored != answered
            else f"{len(stored)} runs",
        )
    )
    private = {form.spec for form in forms if form.fields.get("private")}
    mismatched = [
        path
        for path, precision, is_private, group in RegisteredModel.objects.values_list(
            "storage_path", "precision", "private", "group__name"
        )
        if ((path, precision) in private) != is_private or (is_private and group is None)
    ]
    checks.append(("models private to a group exactly where submitted so", not mismatched, _short(mismatched) or "yes"))
    return checks


def lifecycle_check(*, chaos_run_ids: set[int]) -> list[Check]:
    """0 lost (every run ended, and succeeded), 0 duplicated (claimed once, finished once, scores once)."""
    from runs.choices import TERMINAL_STATUSES, RunStatus
    from runs.models import EvaluationRun, RunEvent

    checks: list[Check] = []
    runs = list(EvaluationRun.objects.values("pk", "status", "error_message"))
    open_runs = [run["pk"] for run in runs if run["status"] not in TERMINAL_STATUSES]
    checks.append(
        ("every run ended within the time bound (0 lost)", not open_runs, _short(open_runs) or f"{len(runs)}")
    )
    unsuccessful = [
        (run["pk"], run["status"], run["error_message"][:200])
        for run in runs
        if run["status"] in TERMINAL_STATUSES and run["status"] != RunStatus.SUCCEEDED
    ]
    checks.append(("every run succeeded", not unsuccessful, _short(unsuccessful, 3) or "yes"))
    claims = Counter(RunEvent.objects.filter(to_status=RunStatus.RUNNING).values_list("run_id", flat=True))
    requeued = set(
        RunEvent.objects.filter(
            from_status=RunStatus.RUNNING, to_status=RunStatus.QUEUED, message__contains="re-queued"
        ).values_list("run_id", flat=True)
    )
    twice = {run_id for run_id, n in claims.items() if n == 2}
    bad_claims = {
        run["pk"]: claims.get(run["pk"], 0)
        for run in runs
        if claims.get(run["pk"], 0) != 1 and not (run["pk"] in twice and run["pk"] in requeued & chaos_run_ids)
    }
    checks.append(
        (
            "every run claimed once (twice only for the run a killed worker held, after the reaper re-queued it)",
            not bad_claims,
            _short(bad_claims.items()) or f"twice: {sorted(twice) or 'none'}",
        )
    )
    submitted = Counter(
        RunEvent.objects.filter(from_status="", to_status=RunStatus.QUEUED).values_list("run_id", flat=True)
    )
    ended = Counter(RunEvent.objects.filter(to_status__in=TERMINAL_STATUSES).values_list("run_id", flat=True))
    bad_events = [run["pk"] for run in runs if submitted.get(run["pk"]) != 1 or ended.get(run["pk"]) != 1]
    checks.append(
        ("every run submitted once and finished once (RunEvent)", not bad_events, _short(bad_events) or "yes")
    )
    return checks


def scores_check() -> list[Check]:
    """Scores stored once per run: the same score rows for every benchmark run of a suite, one row per
    metric of an evaluator run, one sample result per dataset row and one metric score per sample and metric."""
    from django.db.models import Count

    from evaluator.models import EvaluatorRun, MetricScore, SampleResult
    from runs.choices import RunStatus
    from runs.models import EvaluationRun

    checks: list[Check] = []
    succeeded = EvaluationRun.objects.filter(status=RunStatus.SUCCEEDED)
    per_suite: dict[str, Counter] = defaultdict(Counter)
    for suite, n in succeeded.filter(kind="benchmark").annotate(n=Count("scores")).values_list("spec__suite", "n"):
        per_suite[suite][n] += 1
    uneven = {suite: dict(counts) for suite, counts in per_suite.items() if len(counts) != 1 or 0 in counts}
    checks.append(
        (
            "benchmark runs: the same score rows in every run of a suite",
            not uneven,
            _short(uneven.items()) or _short(f"{suite}: {next(iter(c))} rows" for suite, c in per_suite.items()),
        )
    )
    samples = Counter(SampleResult.objects.values_list("run_id", flat=True))
    metric_rows = Counter(MetricScore.objects.values_list("sample__run_id", flat=True))
    wrong = []
    for run_id, row_count, n_scores in (
        succeeded.filter(kind="evaluator")
        .annotate(n=Count("scores"))
        .values_list("pk", "evaluator__dataset_version__row_count", "n")
    ):
        if (n_scores, samples[run_id], metric_rows[run_id]) != (
            len(EVALUATOR_METRICS),
            row_count,
            row_count * len(EVALUATOR_METRICS),
        ):
            wrong.append((run_id, n_scores, samples[run_id], metric_rows[run_id]))
    checks.append(
        (
            "evaluator runs: scores, sample results and metric scores stored once",
            not wrong,
            _short(wrong, 3) or f"{EvaluatorRun.objects.count()} runs",
        )
    )
    return checks


def ranking_check() -> list[Check]:
    """Every model with a succeeded full run has its ranking row, pointing at its newest such run."""
    from leaderboard.models import LeaderboardEntry
    from runs.choices import RunStatus
    from runs.models import EvaluationRun

    newest: dict[tuple[int, str], int] = {}
    for run_id, model_id, suite in (
        EvaluationRun.objects.filter(kind="benchmark", status=RunStatus.SUCCEEDED, is_partial=False)
        .order_by("finished_at", "pk")
        .values_list("pk", "model_id", "spec__suite")
    ):
        newest[(model_id, suite)] = run_id
    entries = {
        (model_id, suite): run_id
        for model_id, suite, run_id in LeaderboardEntry.objects.values_list("model_id", "suite", "run_id")
    }
    ok = entries == newest
    problems = {
        "missing": set(newest) - set(entries),
        "extra": set(entries) - set(newest),
        "on an older run": {key for key in newest if key in entries and entries[key] != newest[key]},
    }
    detail = (
        f"{len(entries)} ranking rows"
        if ok
        else "; ".join(f"{what} {_short(sorted(keys))}" for what, keys in problems.items() if keys)
    )
    return [("every succeeded full benchmark run's model has its ranking row (the newest run)", ok, detail)]


__all__ = ["answers_check", "database_check", "lifecycle_check", "ranking_check", "scores_check"]
