"""The speedups extra in tests: skip without it, unless CI's speedups stage demands it."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from smartcar_async import _json

#: Set by .ci/run's speedups stage, where a missing orjson or uvloop is a failure, not a skip.
REQUIRED = os.environ.get("SMARTCAR_ASYNC_REQUIRE_SPEEDUPS") == "1"

Loads = Callable[[bytes | str], Any]
Dumps = Callable[[Any], bytes]


def need(module: str) -> ModuleType:
    """``module`` imported; a skip (a failure under CI's speedups stage) without it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if REQUIRED:
            pytest.fail(f"SMARTCAR_ASYNC_REQUIRE_SPEEDUPS=1 but {module} is not installed")
        pytest.skip(f"{module} is not installed (pip install 'smartcar-async[speedups]')")


def orjson_codec() -> tuple[Loads, Dumps]:
    """The orjson codec, built whatever SMARTCAR_ASYNC_JSON chose for this process."""
    return _json._make_orjson_codec(need("orjson"))


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a codec call gave, comparable across codecs: JSON text of the value, or the error.

    The value goes through ``json.dumps`` (which writes NaN, Infinity and every int) with
    each float's repr, so 1.0 and 1, or 0.0 and -0.0, stay apart.
    """
    try:
        value = call()
    except Exception as exc:  # the comparison is the point: any exception is an outcome
        return ("raised", (type(exc), str(exc)))
    if isinstance(value, bytes):
        return ("bytes", value)
    return ("value", _typed(value))


def _typed(value: Any) -> list[Any]:
    """``value`` as a flat list of tokens (iterative: the nesting can be deep)."""
    tokens: list[Any] = []
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            tokens.append("{")
            stack.append(_END)
            for key, item in reversed(node.items()):
                stack.extend((item, _Key(key)))
        elif isinstance(node, list):
            tokens.append("[")
            stack.append(_END)
            stack.extend(reversed(node))
        elif node is _END:
            tokens.append("end")
        elif isinstance(node, _Key):
            tokens.append(("key", node.key))
        else:
            tokens.append((type(node).__name__, repr(node)))
    return tokens


class _Key:
    def __init__(self, key: str) -> None:
        self.key = key


_END = object()
