"""Folder checks from many threads at once, as gunicorn's threads make them (found by
benchmarks/load_submissions.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

# A fresh process: the race is in transformers' first imports, which the test process may have done already.
_CHILD = """
import json, os, sys, threading
import django
django.setup()
from leaderboard.model_inspection import model_folder_inspect

threads = 16
barrier = threading.Barrier(threads)
errors = []

def inspect():
    barrier.wait()
    try:
        model_folder_inspect(sys.argv[1])
    except Exception as exc:
        errors.append(repr(exc)[:300])

workers = [threading.Thread(target=inspect) for _ in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_concurrent_first_inspections_all_load_the_folder(tiny_model, model_root):
    # Without the lock in model_inspection, most of the 16 threads got "cannot import name 'AutoConfig'
    # from 'transformers'" (its lazy module is not thread-safe), which the submit page answered with a 500.
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MODEL_ROOTS": str(model_root)}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tiny_model)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    assert json.loads(child.stdout.strip().splitlines()[-1]) == []
