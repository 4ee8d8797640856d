"""Folder rules of the package, read with ``ast``: who may import the CLI and the emulator.

Only the command line (``smartcar_async/_cli/``) may import the emulator
(``smartcar_async.testing``) from outside it, for the demo; nothing but the
entry point (``smartcar_async/__main__.py``) imports the command line; and
the command line's modules import one another without a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import smartcar_async

PACKAGE = Path(smartcar_async.__file__).parent
NAME = "smartcar_async"
CLI = f"{NAME}._cli"
EMULATOR = f"{NAME}.testing"


def _module_name(path: Path) -> tuple[str, bool]:
    """The dotted name of the module at ``path``, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _modules() -> Iterator[tuple[str, bool, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name, is_package = _module_name(path)
        yield name, is_package, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of import nodes under ``if TYPE_CHECKING:``: annotations, never run."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def _imports(
    name: str, is_package: bool, tree: ast.Module, *, runtime_only: bool = False
) -> set[str]:
    """Every module ``tree`` imports (lazily, in functions, too), as absolute dotted names.

    ``from x import y`` counts as importing ``x`` and ``x.y``: ``y`` may be a submodule.
    """
    skipped = _type_checking_only(tree) if runtime_only else set()
    here = name.split(".") if is_package else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_only_the_cli_imports_the_emulator() -> None:
    offenders = {
        name: sorted(m for m in _imports(name, is_package, tree) if _within(m, EMULATOR))
        for name, is_package, tree in _modules()
        if not _within(name, CLI) and not _within(name, EMULATOR)
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_core_never_imports_the_cli() -> None:
    offenders = {
        name: sorted(m for m in _imports(name, is_package, tree) if _within(m, CLI))
        for name, is_package, tree in _modules()
        if not _within(name, CLI) and name != f"{NAME}.__main__"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_rules_see_the_imports_they_allow() -> None:
    """The walk is not vacuous: it finds the imports the two rules above let through."""
    seen = {name: _imports(name, is_package, tree) for name, is_package, tree in _modules()}
    assert CLI in seen[f"{NAME}.__main__"]
    assert any(
        _within(m, EMULATOR) for name, found in seen.items() if _within(name, CLI) for m in found
    )


def test_the_cli_modules_import_one_another_without_a_cycle() -> None:
    edges = {
        name: {m for m in _imports(name, is_package, tree, runtime_only=True) if _within(m, CLI)}
        for name, is_package, tree in _modules()
        if _within(name, CLI)
    }
    modules = set(edges)
    # `from . import x` names x both as a module and as an attribute: keep real modules.
    graph = {name: (found & modules) - {name, CLI} for name, found in edges.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join([*path, name])}"
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, (*path, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())
    assert len(graph) > 5  # the walk found the package's modules
