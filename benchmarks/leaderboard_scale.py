"""Leaderboard page server time at realistic scale: does it stay flat as models and runs grow?

Builds N models with R succeeded runs each (every run with the six column scores plus extra
per-task rows, as real runs have), then times the "LLM Benchmark" page through Django's test
client (the whole request: middleware, queries, template) and counts its queries.

    .venv/bin/python benchmarks/leaderboard_scale.py                 # 500 and 5000 models x 20 runs
    DB=postgres .venv/bin/python benchmarks/leaderboard_scale.py     # the same on PostgreSQL

It uses a throw-away test database (``test_<name>``), never the site's own.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault(
    "DB_TEST_NAME",
    str(Path(__file__).resolve().parents[1] / "var" / "bench-leaderboard.sqlite3")
    if os.getenv("DB", "sqlite") == "sqlite"
    else "test_bench_leaderboard",
)

import django  # noqa: E402

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.factories import OPENLLM_V1_SCORE_ROWS  # noqa: E402

EXTRA_TASKS_PER_RUN = 10  # stand-ins for per-subject and group rows a real run also stores


def populate(n_models: int, runs_per_model: int, start: int) -> None:
    from leaderboard.models import RegisteredModel
    from runs.models import EvaluationRun, Score

    rng = random.Random(start)
    now = timezone.now()
    models = RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(
                display_name=f"org{i % 50}/model-{i}",
                storage_path=f"/models/m{i}",
                revision=f"{i:040x}",
                architecture=rng.choice(["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"]),
                num_params=rng.choice([1, 3, 7, 13, 34, 70]) * 10**9,
                precision=rng.choice(["bfloat16", "float16"]),
                merged=rng.random() < 0.1,
                moe=rng.random() < 0.05,
                license="apache-2.0",
            )
            for i in range(start, start + n_models)
        ],
        batch_size=2000,
    )
    for chunk_start in range(0, len(models), 250):
        runs = []
        for model in models[chunk_start : chunk_start + 250]:
            for r in range(runs_per_model):
                finished = now - timedelta(days=runs_per_model - r, minutes=rng.randrange(1000))
                runs.append(
                    EvaluationRun(
                        kind="benchmark",
                        model=model,
                        spec={"suite": "openllm_v1"},
                        status="succeeded",
                        is_partial=r % 5 == 4,
                        queued_at=finished,
                        finished_at=finished,
                    )
                )
        runs = EvaluationRun.objects.bulk_create(runs, batch_size=2000)
        scores = []
        for run in runs:
            for task, metric, filter_name in OPENLLM_V1_SCORE_ROWS.values():
                scores.append(
                    Score(run=run, task=task, metric=metric, filter=filter_name, value=rng.random(), stderr=0.01)
                )
            for extra in range(EXTRA_TASKS_PER_RUN):
                scores.append(Score(run=run, task=f"mmlu_subject_{extra}", metric="acc", value=rng.random()))
        Score.objects.bulk_create(scores, batch_size=5000)
    # What the finish hook of each run would have done.
    from leaderboard.ranking import leaderboard_entry_refresh

    for model in models:
        leaderboard_entry_refresh(model_id=model.pk, suite_name="openllm_v1")


def time_page(client: Client, params: dict, repeats: int) -> tuple[float, int]:
    timings, queries = [], 0
    for _ in range(repeats):
        reset_queries()
        started = time.perf_counter()
        response = client.get("/", params)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
        queries = len(connection.queries)
    return statistics.median(timings), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[500, 5000], help="model counts to measure, ascending")
    parser.add_argument("--runs", type=int, default=20, help="runs per model")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    from django.conf import settings
    from django.contrib.auth import get_user_model

    setup_test_environment()
    settings.DEBUG = True  # count queries
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        user = get_user_model().objects.create_user("bench", password="x")
        client = Client()
        client.force_login(user)
        views = {
            "default view": {},
            "search + filters": {"q": "model-1; @architecture:mistral", "size": ["7", "13"], "show_merged": "1"},
            "sorted by GSM8K, page 3": {"sort": "-gsm8k", "page": "3", "stderr": "1"},
        }
        print(
            f"database: {connection.vendor}; {args.runs} runs per model (1 in 5 a smoke run); "
            f"{len(OPENLLM_V1_SCORE_ROWS) + EXTRA_TASKS_PER_RUN} score rows per run"
        )
        built = 0
        results = {}
        for target in args.models:
            started = time.perf_counter()
            populate(target - built, args.runs, built)
            built = target
            with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum/ANALYZE would give
                cursor.execute("ANALYZE")
            print(f"\n{target} models, {target * args.runs} runs (built in {time.perf_counter() - started:.0f} s)")
            for name, params in views.items():
                client.get("/", params)  # warm caches
                median, queries = time_page(client, params, args.repeats)
                results[(target, name)] = median
                print(f"  {name:28s} median {median * 1000:7.1f} ms   {queries} queries")
        if len(args.models) > 1:
            small, large = args.models[0], args.models[-1]
            print(f"\nratio {large} / {small} models (x{large / small:.0f} data):")
            for name in views:
                print(f"  {name:28s} {results[(large, name)] / results[(small, name)]:.2f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
