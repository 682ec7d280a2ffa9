"""Judge throughput of the evaluator: does score_samples keep max_concurrency calls in flight?

Runs ``evaluator.scoring.score_samples`` on N samples x 3 single-call LLM metrics against the loopback
judge (tests/evaluator/loopback_judge.py) started as a separate process, so that the server's threads do
not compete with the scorer for the interpreter lock, answering each call after a fixed delay. The ideal
wall time is calls x delay / concurrency; the ratio wall / ideal shows the scorer's own overhead
(ragas, instructor, openai, pydantic) on top of waiting for the judge.

    .venv/bin/python benchmarks/evaluator_judge.py [--samples 200] [--delay 0.05] [--concurrency 8]
        [--metrics coherence,context_recall,context_precision] [--profile]

Judge calls per sample of each LLM metric (ragas 0.4.3, the loopback's counter confirms them):
coherence 1, context_recall 1, context_precision 1 per retrieved context (the samples here have one),
custom criteria 1, faithfulness 2, answer_accuracy 2, response_groundedness 2, answer_correctness 3,
answer_relevancy 3 (strictness 3). Re-asks on an invalid rating add calls (answer_accuracy,
response_groundedness); the loopback always answers schema-valid JSON, so there are none here.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from evaluator.scoring import score_samples  # noqa: E402
from evaluator.scoring_types import EvalSample, LLMConfig  # noqa: E402


def make_samples(n: int) -> list[EvalSample]:
    samples = []
    for i in range(n):
        if i % 2:
            samples.append(
                EvalSample(
                    sample_id=str(i),
                    question=f"What is the capital of country {i}?",
                    reference=f"The capital of country {i} is City {i}.",
                    contexts=(f"Country {i} has City {i} as its capital and a population of {i * 1000}.",),
                    response=f"City {i} is the capital of country {i}.",
                )
            )
        else:
            samples.append(
                EvalSample(
                    sample_id=str(i),
                    question=f"{i}번 나라의 수도는 어디인가요?",
                    reference=f"{i}번 나라의 수도는 {i}시입니다.",
                    contexts=(f"{i}번 나라의 수도는 {i}시이며 인구는 {i * 1000}명이다.",),
                    response=f"수도는 {i}시입니다.",
                )
            )
    return samples


def start_judge(delay: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.evaluator.loopback_judge", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http"):
        process.kill()
        raise SystemExit("the loopback judge did not start")
    return process, base_url


def judge_stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_stats", timeout=5) as response:
        return json.loads(response.read())


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--metrics", default="coherence,context_recall,context_precision")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the run; prints the top functions by cumulative time"
    )
    args = parser.parse_args()
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    samples = make_samples(args.samples)

    process, base_url = start_judge(args.delay)
    try:
        judge = LLMConfig(
            kind="openai",
            model_name="loopback-judge",
            base_url=base_url,
            timeout_s=30,
            max_concurrency=args.concurrency,
            max_retries=2,
        )
        # Warm-up outside the clock: imports of ragas/openai and the first connections.
        score_samples(make_samples(2), metrics, judge=judge, embedding_path=None)
        before = judge_stats(base_url)["calls"]

        profiler = None
        if args.profile:
            # The scorer's event loop runs on a worker thread (evaluator/async_jobs.py): profile there.
            import asyncio
            import cProfile

            from evaluator import async_jobs

            profiler = cProfile.Profile()

            def profiled_run(coroutine):
                profiler.enable()
                try:
                    return asyncio.run(coroutine)
                finally:
                    profiler.disable()

            # async_jobs uses asyncio for more than run(): a stand-in module with only run() replaced.
            import types

            profiled = types.ModuleType("asyncio_profiled")
            profiled.__dict__.update(vars(asyncio))
            profiled.run = profiled_run
            async_jobs.asyncio = profiled
        gc_pauses: list[float] = []
        gc_started: list[float] = []

        def gc_watch(phase, info):
            if info["generation"] == 2:
                if phase == "start":
                    gc_started.append(time.perf_counter())
                elif gc_started:
                    gc_pauses.append(time.perf_counter() - gc_started.pop())

        gc.callbacks.append(gc_watch)
        judge_cpu_started = process_cpu_s(process.pid)
        cpu_started = time.process_time()
        started = time.perf_counter()
        scores = score_samples(samples, metrics, judge=judge, embedding_path=None)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        judge_cpu = process_cpu_s(process.pid) - judge_cpu_started
        gc.callbacks.remove(gc_watch)
        stats = judge_stats(base_url)
    finally:
        process.terminate()
        process.wait(timeout=10)

    calls = stats["calls"] - before
    unscored = sum(1 for s in scores if s.value is None)
    ideal = calls * args.delay / args.concurrency
    print(
        f"samples x metrics   {args.samples} x {len(metrics)} ({', '.join(metrics)}) = {len(scores)} scores, "
        f"{unscored} unscored"
    )
    print(
        f"judge calls         {calls} ({calls / max(1, args.samples):.2f} per sample), "
        f"peak in flight {stats['peak_in_flight']}"
    )
    print(f"delay / concurrency {args.delay:g} s / {args.concurrency}")
    print(f"wall time           {wall:.2f} s")
    print(f"ideal               {ideal:.2f} s  (calls x delay / concurrency)")
    print(f"ratio               {wall / ideal:.2f}  (target <= 1.2)")
    print(
        f"scorer CPU          {cpu:.2f} s = {1000 * cpu / max(1, calls):.1f} ms per call (all threads of this process)"
    )
    print(
        f"loopback judge CPU  {judge_cpu:.2f} s = {1000 * judge_cpu / max(1, calls):.1f} ms per call (its own process)"
    )
    print(f"full GC pauses      {len(gc_pauses)}, {sum(gc_pauses):.2f} s in all")
    print(f"load average        {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if profiler is not None:
        import pstats

        pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(
            int(os.environ.get("TOP", "30"))
        )


if __name__ == "__main__":
    main()
