"""The load test of benchmarks/load_submissions.py, reduced so that CI keeps its property checked: the site as
deployed (gunicorn, DEBUG off, its own PostgreSQL database and Redis, two real workers) takes 40 submissions
with duplicates and 5 evaluator runs (6 posts) at once; every run is processed exactly once, none lost, no 5xx."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.services]


def test_submissions_at_once_are_each_processed_exactly_once():
    # The scripted executor (tests/worker_settings.py) for benchmark runs; evaluator runs are real (text
    # metrics). The script fails on any 5xx, lost run, duplicated model/run/claim/score or missing ranking row.
    env = {key: value for key, value in os.environ.items() if key not in ("DB_NAME", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/load_submissions.py",
            "--folders",
            "8",
            "--evaluator-runs",
            "5",
            "--executor",
            "scripted",
            "--timeout",
            "120",
        ],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert "All checks passed." in result.stdout, report
    assert "FAIL" not in result.stdout, report
    # 8 folders in every pattern: 9 model rows (one folder in two precisions), 11 runs (one folder's three
    # forced forms are three runs), from 40 posts.
    assert "40 submissions -> 9 model rows and 11 runs; 6 evaluator posts -> 5 runs" in result.stdout, report
