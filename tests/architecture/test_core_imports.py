"""The package's import graph: no cycle, and the seams of issue 13 stay narrow.

Read from the source with `ast`, so the test sees every import a module makes
when it runs (at the top or inside a function). Imports for annotations only,
under ``if TYPE_CHECKING:``, may close a cycle; they still count for the seams
(a vehicle must not even name the client).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smartcar_async

pytestmark = pytest.mark.timeout(60)

PACKAGE = Path(smartcar_async.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, package: str, annotations: bool) -> set[str]:
    """Modules of the package that ``tree`` imports at run time (and for annotations)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if (
            not annotations
            and isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test)
        ):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
            if node.module:
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("smartcar_async"))
        for sub in ast.iter_child_nodes(node):
            visit(sub)

    visit(tree)
    return found


def _graph(*, annotations: bool = False) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = _imports(tree, package, annotations)
        graph[name] = {m for m in imports if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)) is not None:
            return found
    return None


def _without_init(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # ``from . import _models as m`` names the package, but the package's
    # __init__ re-exports everything: what matters is the module it names.
    return {k: {m for m in v if m != "smartcar_async"} for k, v in graph.items()}


def test_the_package_has_no_import_cycle() -> None:
    assert _cycle(_without_init(_graph())) is None


def test_the_client_imports_its_vehicles_at_the_top() -> None:
    # Not inside a function, the way to dodge a cycle.
    tree = ast.parse((PACKAGE / "_client.py").read_text(encoding="utf-8"))
    top = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert "_vehicle" in {node.module for node in top}


def test_vehicles_and_make_groups_do_not_import_the_client() -> None:
    graph = _graph(annotations=True)
    for name in ("_vehicle", "_makes", "_io", "_coalescer", "_batch", "_policy"):
        assert "smartcar_async._client" not in graph[f"smartcar_async.{name}"], name


def test_errors_do_not_import_models() -> None:
    assert "smartcar_async._models" not in _graph(annotations=True)["smartcar_async._exceptions"]


def test_the_library_never_imports_its_emulator() -> None:
    graph = _graph()
    for name, imports in graph.items():
        if name.startswith(("smartcar_async.testing", "smartcar_async._cli")):
            continue  # the emulator itself, and the CLI that can start it
        assert not any(m.startswith("smartcar_async.testing") for m in imports), name
