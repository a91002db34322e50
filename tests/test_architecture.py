"""The shape of the code (docs/architecture.md): no import circle, no function over 100 lines, and an import inside a
function only where the laziness is deliberate (an optional extra, or a command's work kept off `--help`)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nsptask"

# Imports made inside functions on purpose, by module: optional extras (or a platform-dependent dependency), the
# command line's per-command imports, and `datasets` where the corpus readers make or recognise a Dataset.
DELIBERATE = {
    "arguments": {"tensorboard"},  # the optional tensorboard extra, probed for report_to's default
    "cli": {
        ".publishing",
        ".tokenization",
        ".training",
        ".finetuning",
        ".pipelines",
        ".study",
        ".report",
        "datasets",
        "transformers",
    },
    "collator": {"jieba"},  # the chinese extra
    "corpus": {"datasets"},  # reading files needs none of it; option parsing imports this module
    "engine": {"distributed"},  # the dask extra
    "publishing": {".engine"},  # the Dask engine needs the dask extra
    "report": {"matplotlib", "matplotlib.pyplot"},  # the plotting backend is chosen only when a report draws
    "segmentation": {"pysbd"},  # the pysbd extra
    "tokenization": {"tokie"},  # installed only where it ships wheels
    "wikipedia": {"mwparserfromhell", "mwparserfromhell.nodes"},  # the wikipedia extra
}


def _modules():
    for path in sorted(PACKAGE.glob("*.py")):
        yield path.stem, ast.parse(path.read_text())


def _imported_name(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return ["." * node.level + (node.module or "")]
    return []


def test_no_module_of_the_package_imports_itself_in_a_circle():
    graph: dict[str, set[str]] = {}
    for name, tree in _modules():
        targets = set()
        for node in ast.walk(tree):
            for imported in _imported_name(node):
                if imported.startswith(".") and imported.strip("."):
                    targets.add(imported.lstrip(".").split(".")[0])
                elif imported == "." and isinstance(node, ast.ImportFrom):
                    targets.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists())
        graph[name] = targets - {name}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in graph.get(node, ()):
            assert state.get(target) != 1, f"import circle: {' -> '.join([*path, node, target])}"
            if state.get(target) is None:
                visit(target, [*path, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_no_function_is_longer_than_100_lines():
    long = [
        f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 100
    ]
    assert not long, long


def test_imports_inside_functions_are_the_deliberate_ones():
    found = []
    for name, tree in _modules():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                for imported in _imported_name(node):
                    if imported not in DELIBERATE.get(name, set()):
                        found.append(f"{name}.{function.name}: {imported}")
    assert not found, found
