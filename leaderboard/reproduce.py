"""The command shown beside a score on the model page: the run's own lm-eval command, then a line of Python
that prints the value it reproduces with every digit (lm-eval's CLI table rounds to four).

lm-eval writes its results JSON under ``--output_path``; the Python reads the newest one and prints the
column's value as the site computed it: the task's metric, or the plain mean over the column's leaf
tasks in the same order (``leaderboard.harness.suites.suite_column_values``), so the same floats are
summed in the same order and the digits match.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence

REPRODUCE_OUTPUT = "lm-eval-reproduce"


def column_leaves(column, leaf_tasks: Mapping[str, Sequence[str]]) -> list[str]:
    """The leaf tasks whose metric the column's value is the plain mean of."""
    return [leaf for name in column.lm_eval_names for leaf in leaf_tasks.get(name, [name])]


def value_print_script(*, leaves: Sequence[str], metric: str, filter: str, output: str = REPRODUCE_OUTPUT) -> str:
    """One line of Python printing repr() of the plain mean of ``metric,filter`` over ``leaves`` (a single
    leaf: its value, since x / 1 is x exactly) from the newest results JSON under ``output``."""
    # Double quotes only (JSON strings are Python strings), so the shell's single quotes wrap it cleanly.
    pattern = json.dumps(f"{output}/**/results_*.json")
    return (
        "import glob,json,os;"
        f"p=max(glob.glob({pattern},recursive=True),key=os.path.getmtime);"
        'r=json.load(open(p))["results"];'
        f"v=[r[t][{json.dumps(f'{metric},{filter}')}] for t in {json.dumps(list(leaves))}];"
        "print(repr(sum(v)/len(v)))"
    )


def reproduce_with_value(*, command: str, leaves: Sequence[str], metric: str, filter: str) -> str:
    """``command`` writing its results under REPRODUCE_OUTPUT, then printing the full-precision value."""
    if not command or not leaves:
        return command
    script = value_print_script(leaves=leaves, metric=metric, filter=filter)
    return f"{command} --output_path {REPRODUCE_OUTPUT} && python3 -c {shlex.quote(script)}"
