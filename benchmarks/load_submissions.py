"""A bounded load test of the site as deployed, on loopback: many model submissions (with duplicates) and
evaluator runs at once, processed by two real workers; every run must be processed exactly once.

    .venv/bin/python benchmarks/load_submissions.py [--folders 40] [--evaluator-runs 20] [--executor real|scripted]
        [--suite kobest] [--limit N] [--chaos] [--threads 32] [--timeout 900] [--keep]

The site: its own PostgreSQL database (created and dropped here) on the configured server (DB_HOST, DB_PORT,
DB_USER, DB_PASSWORD; default 127.0.0.1:5432, postgres), its own redis-server with deploy/redis.conf on a free
port, migrations applied, gunicorn with deploy/gunicorn.conf.py (DEBUG off, production settings without TLS),
two `celery -A config worker -Q gpu,cpu --concurrency 1` workers, and the reaper run here every few seconds
as beat would. Users in two groups log in through the login form; each form is loaded first (its CSRF token
and hidden submission_token), then every post goes out at once from a bounded thread pool.

The load (benchmarks/load_plan.py): 5 submissions of each of --folders tiny random models, in patterns that
must collapse (the same user again, the group's users, a form double-posted, forced re-runs double-posted),
plus --evaluator-runs evaluator runs (every fourth form double-posted) on golden datasets with responses,
scored with text metrics only. Executor: the real one (lm-eval on --suite, whose datasets are cut to 3 test
and 30 other rows from DATASET_MIRROR, so a full, ranked run takes seconds) or `scripted`
(tests/worker_settings.py: benchmark runs end at once) for a quick run. --chaos kills -9 a worker that is
executing a run once a quarter of the runs have ended, and starts another.

Exits non-zero when a check fails: 0 HTTP 5xx; model rows and runs = distinct (folder, precision) and forms;
every run ended in the time bound and succeeded; claimed once (twice only for the run the chaos kill
interrupted), finished once, scores stored once; every ranked model has its ranking row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from benchmarks.load_http import SiteClient, Timings  # noqa: E402
from benchmarks.load_plan import (  # noqa: E402
    GROUPS,
    Form,
    PostResult,
    evaluator_forms,
    expected_counts,
    folder_forms,
    post_order,
    user_names,
)
from benchmarks.load_site import Site  # noqa: E402

PASSWORD = "load-bench-not-a-secret"
GOLDEN_CSV = """question,reference,response,tags
What is the capital of France?,Paris,Paris,geo
How many legs has a spider?,Eight,Eight legs,bio
Which planet is known as the red planet?,Mars,mars,astro
Who wrote Hamlet?,William Shakespeare,Shakespeare,lit
What is 12 + 30?,42,42,math
What gas do plants take in?,Carbon dioxide,Oxygen,bio
대한민국의 수도는?,서울,서울입니다,geo
물의 끓는점은 몇 도인가?,섭씨 100도,100도,science
한글을 만든 왕은?,세종대왕,세종대왕,history
가장 큰 바다는?,태평양,대서양,geo
"""


def _arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folders", type=int, default=40, help="model folders, each submitted 5 times (default 40)")
    parser.add_argument("--evaluator-runs", type=int, default=20, help="evaluator runs (default 20)")
    parser.add_argument("--executor", choices=["real", "scripted"], default="real")
    parser.add_argument("--suite", default="kobest")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="submit smoke runs with this per-task limit on the whole mirror (default: full runs, cut mirror)",
    )
    parser.add_argument("--mirror", default=os.getenv("DATASET_MIRROR", str(BASE_DIR.parent / "shared" / "benchmarks")))
    parser.add_argument("--chaos", action="store_true", help="kill -9 a busy worker mid-way and start another")
    parser.add_argument("--threads", type=int, default=32, help="client threads (default 32)")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--reaper-interval", type=float, default=10.0)
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds from the first post until every run must have ended (default 900, scripted 180)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) afterwards")
    args = parser.parse_args(argv)
    args.timeout = args.timeout or (180.0 if args.executor == "scripted" else 900.0)
    return args


def _mirror_prepare(site: Site, *, source: Path, suite_name: str, cut: bool) -> None:
    """The suite's dataset repos, cut to a few rows (full runs then take seconds), or linked whole for --limit."""
    from leaderboard.harness.suites import suite_get
    from tests.mirror_fixtures import mirror_build

    target = Path(site.env["DATASET_MIRROR"])
    if not cut:
        target.symlink_to(source.resolve(), target_is_directory=True)
        return
    from django.conf import settings

    from leaderboard.harness.task_plan import task_data_sources

    sources = task_data_sources(suite_get(suite_name).task_requests(), include_path=settings.HARNESS_TASKS_DIR)
    subset = site.work / "mirror-source"
    for dataset_path in {ref.dataset_path for ref in sources.values()}:
        if (source / dataset_path / "README.md").is_file():
            (subset / dataset_path).parent.mkdir(parents=True, exist_ok=True)
            (subset / dataset_path).symlink_to((source / dataset_path).resolve(), target_is_directory=True)
    mirror_build(target, source=subset, rows=lambda parquet: 3 if parquet.name.startswith("test") else 30)


def _models_build(site: Site, count: int) -> list[str]:
    from leaderboard.tiny_model import build_tiny_model

    root = Path(site.env["MODEL_ROOTS"])
    return [str(build_tiny_model(root / f"tiny-{index:03d}", seed=index)) for index in range(count)]


def _users_create() -> dict[str, int]:
    from django.contrib.auth.models import Group, User

    group_ids = {}
    for name in GROUPS:
        group = Group.objects.create(name=name)
        group_ids[name] = group.pk
        for username in user_names(name):
            User.objects.create_user(username=username, password=PASSWORD).groups.add(group)
    return group_ids


def _datasets_upload(clients: dict[str, SiteClient]) -> dict[str, int]:
    """Each group's golden dataset, uploaded through the page by its first user, private to the group."""
    import requests

    from evaluator.models import DatasetVersion

    version_ids = {}
    for group in GROUPS:
        client = clients[user_names(group)[0]]
        inputs = client.form_load("dataset", "/evaluator/datasets/new/")
        response = requests.post(
            client.base_url + "/evaluator/datasets/new/",
            cookies=client.cookies,
            timeout=60,
            allow_redirects=False,
            headers={"Referer": client.base_url + "/evaluator/datasets/new/"},
            data={"csrfmiddlewaretoken": inputs["csrfmiddlewaretoken"], "name": f"golden {group}", "private": "on"},
            files={"file": ("golden.csv", GOLDEN_CSV.encode(), "text/csv")},
        )
        client.timings.add("dataset upload", response.status_code, response.elapsed.total_seconds())
        if response.status_code != 302:
            raise RuntimeError(f"dataset upload: HTTP {response.status_code}")
        version_ids[group] = DatasetVersion.objects.get(dataset__name=f"golden {group}").pk
    return version_ids


class Reaper(threading.Thread):
    """`runs_reap` every few seconds, as beat sends it; what it did is summed up for the report."""

    def __init__(self, interval: float):
        super().__init__(name="reaper", daemon=True)
        self.interval = interval
        self.totals = {"passes": 0, "requeued": 0, "errored": 0, "kept": 0, "resent": 0, "failures": 0}
        self._stop_event = threading.Event()

    def run(self) -> None:
        from django.db import connection

        from runs.services import runs_reap

        while not self._stop_event.wait(self.interval):
            try:
                report = runs_reap()
            except Exception as exc:  # the next pass tries again, as beat would
                self.totals["failures"] += 1
                print(f"  reaper pass failed: {exc!r}")
                continue
            self.totals["passes"] += 1
            for key, ids in report.items():
                self.totals[key] += len(ids)
        connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)


def _kind(form: Form) -> str:
    return "submit" if form.kind == "submit" else "evaluator"


def _form_load(clients: dict[str, SiteClient], form: Form) -> None:
    """The form as a browser shows it; for a submission also the folder check the page makes when the
    path is typed (htmx), which is where the web process first loads transformers."""
    client = clients[form.user]
    inputs = client.form_load(_kind(form), form.path)
    form.csrf, form.token = inputs["csrfmiddlewaretoken"], inputs.get("submission_token", "")
    if not form.token:
        raise RuntimeError(f"{form.path} has no submission_token field")
    if form.kind == "submit":
        query = urlencode({"storage_path": form.fields["storage_path"], "weight_type": form.fields["weight_type"]})
        client.get("submit inspect", f"/submit/inspect/?{query}")


def _post(clients: dict[str, SiteClient], form: Form) -> None:
    status, seconds, run_id, error = clients[form.user].form_post(
        _kind(form), form.path, {**form.fields, "csrfmiddlewaretoken": form.csrf, "submission_token": form.token}
    )
    form.results.append(PostResult(status=status, seconds=seconds, run_id=run_id, error=error))


def _runs_ended() -> tuple[int, int]:
    from runs.choices import TERMINAL_STATUSES
    from runs.models import EvaluationRun

    runs = EvaluationRun.objects.all()
    return runs.filter(status__in=TERMINAL_STATUSES).count(), runs.count()


class Chaos:
    """kill -9 one worker while it executes a run (once a quarter of the runs have ended), then start another."""

    def __init__(self, site: Site):
        self.site = site
        self.hit_run_ids: set[int] = set()
        self.done = False
        self.note = "not triggered"

    def maybe_strike(self, ended: int, expected_runs: int) -> None:
        if self.done or ended < expected_runs // 4:
            return
        from config.celery import app

        for worker in list(self.site.workers.values()):
            node = self.site.node_name(worker)
            active = (app.control.inspect(destination=[node], timeout=2).active() or {}).get(node) or []
            run_ids = [int(task["args"][0]) for task in active if task.get("name") == "runs.execute_run"]
            if worker.alive() and run_ids:
                worker.stop(signal.SIGKILL)
                self.hit_run_ids.update(run_ids)
                replacement = self.site.start_worker()
                self.done = True
                self.note = f"killed {worker.name} (-9) while it executed run {run_ids}; started {replacement.name}"
                print(f"  chaos: {self.note}")
                return


def _wait_for_runs(*, deadline: float, expected_runs: int, chaos: Chaos | None) -> float:
    """Poll until every run has ended or the deadline passed; the time the last one ended."""
    last_report = 0.0
    while time.monotonic() < deadline:
        ended, total = _runs_ended()
        if chaos is not None:
            chaos.maybe_strike(ended, expected_runs)
        if time.monotonic() - last_report > 15:
            print(f"  {ended}/{total} runs ended")
            last_report = time.monotonic()
        if total >= expected_runs and ended == total:
            return time.monotonic()
        time.sleep(0.5)
    return time.monotonic()


def _pages_visit(clients: dict[str, SiteClient], forms: list[Form], pool: ThreadPoolExecutor, suite: str) -> None:
    """Every run's page by a user who got it, and the leaderboard by every user: production pages, no 5xx."""
    seen: dict[int, Form] = {}
    for form in forms:
        for result in form.results:
            if result.run_id:
                seen.setdefault(result.run_id, form)
    visits = [(clients[form.user], "run page", f"/runs/{run_id}/") for run_id, form in seen.items()]
    visits += [(client, "leaderboard", f"/?suite={suite}") for client in clients.values()]
    list(pool.map(lambda visit: visit[0].get(visit[1], visit[2]), visits))


def _load(
    args, site: Site, clients: dict[str, SiteClient], forms: list[Form], expected: dict[str, int], timings: Timings
) -> dict:
    """Load every form, fire every post at once, wait for the runs; the clocks for the report."""
    chaos = Chaos(site) if args.chaos else None
    reaper = Reaper(args.reaper_interval)
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(lambda form: _form_load(clients, form), forms))
        posts = post_order(forms)
        print(f"Firing {len(posts)} posts from {args.threads} threads ...")
        reaper.start()
        started = time.monotonic()
        list(pool.map(lambda post: _post(clients, post[0]), posts))
        posted = time.monotonic()
        print(f"  posted in {posted - started:.1f} s; waiting for {expected['runs']} runs (bound {args.timeout:.0f} s)")
        ended = _wait_for_runs(deadline=started + args.timeout, expected_runs=expected["runs"], chaos=chaos)
        _pages_visit(clients, forms, pool, args.suite)
    reaper.stop()
    return {
        "posts": len(posts),
        "post_s": posted - started,
        "ended_s": ended - started,
        "reaper": reaper.totals,
        "chaos": chaos,
    }


def _setup(args, site: Site) -> tuple[dict[str, SiteClient], list[Form], Timings]:
    import django

    os.environ.update(site.env)
    print(f"Work folder {site.work}; database {site.database.name}; redis :{site.redis_port}; web {site.base_url}")
    site.start_services()
    django.setup()
    from runs.services import runs_reap

    group_ids = _users_create()
    clock = time.monotonic()
    folders = _models_build(site, args.folders)
    # The scripted executor reads no data, but the submit form checks the suite against the mirror either way.
    _mirror_prepare(site, source=Path(args.mirror), suite_name=args.suite, cut=args.limit is None)
    site.mirror_verify(suite_name=args.suite)  # as deploy/upgrade.sh does before the site opens
    print(f"{len(folders)} tiny models and the mirror ready in {time.monotonic() - clock:.1f} s")
    site.start_web()
    site.start_worker()
    site.start_worker()
    site.wait_workers_ready()
    runs_reap()  # as beat's first pass would: plants the broker sentinel before any run
    timings = Timings()
    clients = {}
    for group in GROUPS:
        for username in user_names(group):
            clients[username] = SiteClient(site.base_url, timings)
            clients[username].login(username, PASSWORD)
    version_ids = _datasets_upload(clients)
    forms = [
        form
        for index, folder in enumerate(folders)
        for form in folder_forms(index, folder, suite=args.suite, limit=args.limit, group_ids=group_ids)
    ]
    forms += evaluator_forms(args.evaluator_runs, version_ids=version_ids)
    return clients, forms, timings


def _report(clock: dict, expected: dict[str, int], forms: list[Form], timings: Timings, site: Site) -> None:
    submit_posts = sum(len(form.results) for form in forms if form.kind == "submit")
    evaluator_posts = sum(len(form.results) for form in forms if form.kind == "evaluate")
    print("\nFigures")
    print(
        f"  posts: {submit_posts} submissions + {evaluator_posts} evaluator runs in {clock['post_s']:.1f} s "
        f"= {clock['posts'] / clock['post_s']:.1f} posts/s"
    )
    for kind, row in sorted(timings.summary().items()):
        print(
            f"  HTTP {kind:<18} n={row['count']:<4} p50 {row['p50'] * 1000:7.0f} ms  p95 {row['p95'] * 1000:7.0f} ms  "
            f"max {row['max'] * 1000:7.0f} ms"
        )
    print(
        f"  all {expected['runs']} runs ended {clock['ended_s']:.1f} s after the first post: "
        f"{expected['runs'] / clock['ended_s'] * 60:.1f} runs/min"
    )
    print(
        f"  duplicates collapsed: {submit_posts} submissions -> {expected['models']} model rows and "
        f"{expected['benchmark_runs']} runs; {evaluator_posts} evaluator posts -> {expected['evaluator_runs']} runs"
    )
    _run_times_print()
    print("  reaper: " + ", ".join(f"{key} {value}" for key, value in clock["reaper"].items()))
    absorbed = sum(worker.output().count("not claimed") for worker in site.workers.values())
    print(f"  deliveries the claim turned away (a second message of a run): {absorbed}")
    if clock["chaos"] is not None:
        print(f"  chaos: {clock['chaos'].note}")


def _run_times_print() -> None:
    from benchmarks.load_http import percentile
    from runs.models import EvaluationRun

    for kind in ("benchmark", "evaluator"):
        rows = EvaluationRun.objects.filter(kind=kind, finished_at__isnull=False, started_at__isnull=False)
        times = list(rows.values_list("queued_at", "started_at", "finished_at"))
        if times:
            waits = [(started - queued).total_seconds() for queued, started, _finished in times]
            runs = [(finished - started).total_seconds() for _queued, started, finished in times]
            print(
                f"  {kind} runs: queued -> started p50 {percentile(waits, 50):.1f} s, max {max(waits):.1f} s; "
                f"started -> finished p50 {percentile(runs, 50):.1f} s, max {max(runs):.1f} s"
            )


def _checks(clock: dict, expected: dict[str, int], forms: list[Form], timings: Timings) -> list:
    from benchmarks.load_checks import answers_check, database_check, lifecycle_check, ranking_check, scores_check

    chaos_ids = clock["chaos"].hit_run_ids if clock["chaos"] is not None else set()
    checks = [
        *answers_check(forms, timings.server_errors()),
        *database_check(forms, expected),
        *lifecycle_check(chaos_run_ids=chaos_ids),
        *scores_check(),
        *ranking_check(),
    ]
    if clock["chaos"] is not None:
        checks.append(("--chaos killed a worker in the middle of a run", bool(chaos_ids), clock["chaos"].note))
    return checks


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = _arguments(argv)
    # Stopped by a signal (also when started in the background, where SIGINT is ignored), it still stops
    # its servers and drops its database.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    work = Path(tempfile.mkdtemp(prefix="load-submissions-"))
    site = Site(work, web_workers=args.web_workers, web_threads=args.web_threads, executor=args.executor)
    failed = True
    try:
        clients, forms, timings = _setup(args, site)
        expected = expected_counts(forms)
        print(
            f"Expecting {expected['models']} model rows, {expected['benchmark_runs']} benchmark and "
            f"{expected['evaluator_runs']} evaluator runs (executor: {args.executor}, suite {args.suite})"
        )
        clock = _load(args, site, clients, forms, expected, timings)
        _report(clock, expected, forms, timings, site)
        checks = _checks(clock, expected, forms, timings)
        print("\nChecks")
        for name, ok, detail in checks:
            print(f"  {'OK  ' if ok else 'FAIL'} {name}: {detail}")
        failed = not all(ok for _name, ok, _detail in checks)
        print("\nFAILED" if failed else "\nAll checks passed.")
    finally:
        from django.db import connections

        connections.close_all()
        site.stop()
        if args.keep or failed:
            print(f"Logs kept in {work / 'logs'}")
        if not args.keep:
            shutil.rmtree(work / "models", ignore_errors=True)
            if not failed:
                shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
