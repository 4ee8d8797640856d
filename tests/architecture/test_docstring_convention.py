"""One docstring convention: every public class and function says when it was added.

The plain sentence ("Added in 0.1.0.") is the convention; Sphinx's
``versionadded`` directive is not used alongside it.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

PUBLIC_MODULES = (
    "smartcar_async",
    "smartcar_async.metrics",
    "smartcar_async.redis",
    "smartcar_async.testing",
)
ADDED = re.compile(r"(^|\s)Added in \d+\.\d+\.\d+\.(\s|$)")


def _public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names: list[str] = module.__all__
    return [
        (f"{module_name}.{name}", getattr(module, name))
        for name in names
        if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
    ]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_class_and_function_says_when_it_was_added(module_name: str) -> None:
    missing = [name for name, obj in _public(module_name) if not ADDED.search(obj.__doc__ or "")]
    assert missing == []


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_no_versionadded_directives(module_name: str) -> None:
    directive = [
        name for name, obj in _public(module_name) if "versionadded" in (obj.__doc__ or "")
    ]
    assert directive == []
