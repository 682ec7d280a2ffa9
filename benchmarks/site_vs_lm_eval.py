"""The site's end-to-end time for a suite run against the same evaluation with the bare lm-eval CLI.

(a) Site: the tiny model is registered and submitted with ``benchmark_submit``; a real Celery worker
    process (already started and idle, as on a running site) takes the run from the broker; the
    clock runs from the submit until the run is SUCCEEDED (its scores stored).
(b) Direct: one ``lm_eval`` CLI subprocess on the same model, tasks, shots, seeds, batch size and
    limit, reading the same task YAML pointed at the same mirror, writing results and samples.

Both read a warm `datasets` cache (built once before either clock starts), so neither pays the
one-off parquet-to-Arrow conversion. The ratio site/direct should be <= 1.05.

    .venv/bin/python benchmarks/site_vs_lm_eval.py [--limit N] [--mirror PATH] [--suite openllm_v1]

Everything (SQLite database, SQLite broker, artefacts, model, datasets cache) lives in a temp folder;
the site's own database and broker are never touched. When the mirror has no Rowan/hellaswag (the
shared one has none), a temp mirror links the real repos (real row counts) and adds a SYNTHETIC
HellaSwag (tests/mirror_fixtures.py): its timings stand for the site's overhead, not for HellaSwag.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
TARGET_RATIO = 1.05


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=10, help="samples per task (default 10)")
    parser.add_argument("--mirror", default=None, help="dataset mirror (default settings.DATASET_MIRROR)")
    from leaderboard.harness.suites import DEFAULT_SUITE  # reads no settings: fine before Django is set up

    parser.add_argument("--suite", default=DEFAULT_SUITE)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, results) afterwards")
    return parser.parse_args()


def _isolated_environment(work: Path) -> None:
    """Settings of a fresh embedded install inside ``work``; must run before django.setup()."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DB": "sqlite",
            "DB_NAME": str(work / "site.sqlite3"),
            "CELERY_BROKER_URL": f"sqla+sqlite:///{work / 'broker.sqlite3'}",
            "ARTIFACTS_DIR": str(work / "artifacts"),
            "MODEL_ROOTS": str(work / "models"),
            "HF_DATASETS_CACHE": str(work / "hf_datasets"),
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
    )
    (work / "models").mkdir(parents=True)


def _wait(predicate, timeout: float, what: str, log: Path | None = None, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _compare(run, results_json: Path) -> tuple[int, float]:
    """How many leaf-task metrics both produced, and their largest difference."""
    from runs.models import Score

    direct = json.loads(results_json.read_text())["results"]
    count, worst = 0, 0.0
    for score in Score.objects.filter(run=run, task__in=list(direct)):
        value = direct[score.task].get(f"{score.metric},{score.filter}")
        if isinstance(value, (int, float)) and score.value is not None:
            count += 1
            worst = max(worst, abs(score.value - value))
    return count, worst


def main() -> int:
    args = _arguments()
    work = Path(tempfile.mkdtemp(prefix="site-vs-lm-eval-"))
    _isolated_environment(work)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from leaderboard.harness.model_loading import model_arguments, resolve_batch_size, resolve_device
    from leaderboard.harness.suites import suite_get
    from leaderboard.harness.task_plan import build_task_plan, reproduce_command, write_task_overrides
    from leaderboard.services import benchmark_submit, model_register
    from leaderboard.tiny_model import build_tiny_model
    from runs.choices import ACTIVE_STATUSES, RunStatus
    from runs.models import EvaluationRun
    from tests.lm_eval_cli import lm_eval_cli_run
    from tests.mirror_fixtures import mirror_build
    from tests.workers import WorkerProcess

    worker = None
    try:
        print(f"Working in {work}")
        call_command("migrate", verbosity=0)
        source = Path(args.mirror or settings.DATASET_MIRROR).resolve()
        mirror = source
        if not (source / "Rowan" / "hellaswag").is_dir():
            mirror = mirror_build(work / "mirror", source=source)
            print(f"Mirror: {source} (linked, real row counts) + a SYNTHETIC Rowan/hellaswag, in {mirror}")
        settings.DATASET_MIRROR = mirror

        model_path = build_tiny_model(work / "models" / "tiny-llama")
        model = model_register(storage_path=str(model_path), display_name="tiny-llama (benchmark)", precision="float32")
        suite = suite_get(args.suite)
        requests = suite.task_requests()
        device = resolve_device(args.device)
        batch_size = resolve_batch_size("auto", device)  # what the site's executor resolves "auto" to

        # The direct run's task folder: the same override YAML the worker writes for its run.
        direct = work / "direct"
        plan = build_task_plan(requests, include_path=settings.HARNESS_TASKS_DIR)
        write_task_overrides(plan, mirror_dir=mirror, tasks_dir=direct / "tasks")
        command = reproduce_command(
            model_args=model_arguments(model_path=model_path, dtype="float32"),
            tasks=[r.task for r in requests],
            tasks_dir=direct / "tasks",
            device=device,
            batch_size=batch_size,
            limit=args.limit,
        )

        print("Warming the datasets cache (parquet -> Arrow, once, outside both clocks) ...")
        clock = time.monotonic()
        import datasets
        from lm_eval.tasks import TaskManager

        datasets.disable_progress_bars()
        logging.getLogger("lm_eval").setLevel(logging.ERROR)  # the overrides' "overrides existing task" lines
        TaskManager(include_path=[str(settings.HARNESS_TASKS_DIR), str(direct / "tasks")]).load(
            [r.task for r in requests]
        )
        print(f"  {time.monotonic() - clock:.1f} s")

        clock = time.monotonic()
        worker = WorkerProcess("benchmark-worker", extra_env={"RUN_HEARTBEAT_S": str(15)})
        _wait(lambda: " ready." in worker.output(), 120, "the worker to start", worker.log_path, interval=0.1)
        worker_start_s = time.monotonic() - clock
        print(f"Worker ready after {worker_start_s:.1f} s (not counted: a site's workers are already up)")

        # (a) The site.
        print(f"(a) Site: {suite.name} v{suite.version}, limit {args.limit}, device {device}, batch {batch_size} ...")
        clock = time.monotonic()
        run = benchmark_submit(model=model, suite_name=suite.name, limit=args.limit, device=args.device, force=True).run
        _wait(
            lambda: EvaluationRun.objects.values_list("status", flat=True).get(pk=run.pk) not in ACTIVE_STATUSES,
            3600,
            "the site's run",
            worker.log_path,
        )
        site_s = time.monotonic() - clock
        run.refresh_from_db()
        if run.status != RunStatus.SUCCEEDED:
            print(f"The site's run {run.status}: {run.error_message}\n{run.log[-3000:]}")
            return 1
        timing = run.details.get("timing", {})
        pickup_s = (run.started_at - run.queued_at).total_seconds()
        stored_s = (run.finished_at - run.queued_at).total_seconds()
        print(f"  {site_s:.1f} s submit -> SUCCEEDED seen ({stored_s:.1f} s queued_at -> finished_at)")
        print(
            f"    broker pickup {pickup_s:.1f} s; in the executor: prepare {timing.get('prepare_s')} s "
            f"(imports, task index, mirror check, task data), model load {timing.get('model_load_s')} s, "
            f"evaluate {timing.get('evaluate_s')} s; around it "
            f"{stored_s - pickup_s - (timing.get('total_s') or 0):.1f} s (claim, samples file, scores)"
        )

        # (b) lm-eval directly.
        print(f"(b) Direct: {command} ...")
        clock = time.monotonic()
        results_json, _samples = lm_eval_cli_run(command, direct / "out", cwd=direct, timeout=3600)
        direct_s = time.monotonic() - clock
        evaluation_s = json.loads(results_json.read_text()).get("total_evaluation_time_seconds")
        print(f"  {direct_s:.1f} s process start -> exit (lm-eval's own evaluation clock: {evaluation_s} s)")

        compared, worst = _compare(run, results_json)
        print(f"Same numbers? {compared} leaf-task metrics in both, largest difference {worst:.2g}")
        ratio = site_s / direct_s
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(f"\nsite {site_s:.1f} s / direct {direct_s:.1f} s = {ratio:.3f} (target <= {TARGET_RATIO}): {verdict}")
        return 0
    finally:
        if worker is not None:
            worker.kill(signal.SIGTERM)
        if args.keep:
            print(f"Kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
