"""The harness package's seams, read from its source: the adapter's parts import one another one way
only (no cycle, the mirror included), only they import lm-eval and the model libraries, and no module or
function grows past what one reads at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS_DIR = Path(__file__).resolve().parents[2] / "leaderboard" / "harness"
PACKAGE = "leaderboard.harness"
# The lm-eval adapter: evaluate_suite and its three parts. Only these may import what loads models.
ADAPTER_MODULES = {"adapter", "task_plan", "model_loading", "results"}
MODEL_LIBRARIES = {"lm_eval", "transformers", "torch", "peft", "accelerate"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60  # of code, below the signature and the docstring


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(HARNESS_DIR.glob("*.py"))}


def _imported(tree: ast.Module) -> set[str]:
    """Every module a file imports, at its top or inside a function (a lazy import still ties the two)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == PACKAGE:  # from leaderboard.harness import adapter
                names.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
    return names


def _harness_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {
            imported.removeprefix(f"{PACKAGE}.")
            for imported in _imported(tree)
            if imported.startswith(f"{PACKAGE}.") and imported.removeprefix(f"{PACKAGE}.") in modules
        }
        for name, tree in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :] + [name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            if found := visit(target, path + [name]):
                return found
        done.add(name)
        return None

    for start in sorted(graph):
        if found := visit(start, []):
            return found
    return None


def test_the_harness_modules_import_each_other_one_way():
    graph = _harness_graph()
    assert {"adapter", "task_plan", "model_loading", "results", "mirror", "mirror_layout"} <= set(graph)
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph))}"
    assert "adapter" not in graph["mirror"] and "mirror" not in graph["adapter"]


def test_the_cycle_check_finds_a_cycle():
    # The check itself can fail: the tree before the split had adapter -> mirror -> adapter.
    assert _cycle({"adapter": {"mirror"}, "mirror": {"adapter"}}) == ["adapter", "mirror", "adapter"]
    assert _cycle({"adapter": {"task_plan"}, "mirror": {"task_plan"}, "task_plan": set()}) is None


def test_only_the_adapter_imports_lm_eval_and_the_model_libraries():
    offenders = {
        name: sorted(
            root for root in {imported.split(".")[0] for imported in _imported(tree)} if root in MODEL_LIBRARIES
        )
        for name, tree in _modules().items()
        if name not in ADAPTER_MODULES
    }
    assert {name: libs for name, libs in offenders.items() if libs} == {}


def test_the_adapter_imports_lm_eval_only_inside_functions():
    # A web process imports the harness package (suites, the executor's spec) without loading torch.
    for name in ADAPTER_MODULES:
        tree = _modules()[name]
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        assert not top & MODEL_LIBRARIES, name


@pytest.mark.parametrize("path", sorted(HARNESS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_modules_and_functions_stay_readable(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            first = body[1] if has_docstring and len(body) > 1 else body[0]
            if node.end_lineno - first.lineno + 1 > MAX_FUNCTION_LINES:
                long.append(node.name)
    assert long == []


def test_the_default_suite_is_named_in_one_place():
    from leaderboard.harness.suites import DEFAULT_SUITE

    repo = HARNESS_DIR.parents[1]
    named = [
        str(path.relative_to(repo))
        for folder in ("config", "leaderboard", "runs", "evaluator", "audit")
        for path in (repo / folder).rglob("*.py")
        if "migrations" not in path.parts and f'"{DEFAULT_SUITE}"' in path.read_text(encoding="utf-8")
    ]
    assert named == ["leaderboard/harness/suites.py"]
