"""Run the real lm-eval CLI in a subprocess, as someone reproducing a run (or a cluster job) would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path


def lm_eval_cli_run(
    command: str, output_dir: Path, *, cwd: Path | None = None, timeout: float = 600
) -> tuple[Path, list[Path]]:
    """Run an lm-eval CLI command line (``adapter.reproduce_command``'s) with ``--output_path output_dir
    --log_samples``; returns its results JSON and its per-task samples files.

    Raises:
        RuntimeError: the command failed (its stderr's tail in the message).
    """
    # The venv's bin first, so the command's `lm_eval` is this venv's (the same lm-eval as the site).
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    completed = subprocess.run(
        f"{command} --output_path {shlex.quote(str(output_dir))} --log_samples",
        shell=True,
        cwd=cwd or output_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"lm_eval exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    [results_json] = output_dir.rglob("results_*.json")
    return results_json, sorted(output_dir.rglob("samples_*.jsonl"))
