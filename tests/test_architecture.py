"""The layering of docs/architecture.md, checked on the code: imports point one way (services -> pipeline ->
omnisift_core), no module imports itself back through others, each layer keeps out the frameworks it must
not know, and configuration and the CLI client load without torch or Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("omnisift_core", "pipeline", "services")  # lowest first
FORBIDDEN = {"omnisift_core": {"ray", "redis", "fastapi", "starlette"}, "pipeline": {"ray"}}


def module_files() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path) -> Iterator[str]:
    """Every module name an import statement names, top-level or inside a function."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (a name resolves to its longest known prefix)."""
    files = module_files()
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(path):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(f"{name}."):
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_imports_point_down_the_layers_only():
    layer = {name: rank for rank, name in enumerate(LAYERS)}
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if layer[target.split(".")[0]] > layer[module.split(".")[0]]
    ]
    assert upward == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_keeps_out_the_frameworks_it_must_not_know(layer):
    offending = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] in FORBIDDEN[layer]
    )
    assert offending == []


def test_nothing_imports_torchvision():
    files = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts]
    assert [str(p) for p in files if any(n.split(".")[0] == "torchvision" for n in imported_names(p))] == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_settings_api_models_and_the_cli_client_load_without_torch_or_ray():
    probe = (
        "import sys, services.settings, services.http.schemas, services.cli.main; "
        "print(sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
