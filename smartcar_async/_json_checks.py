"""Checks for JSON kept as received, and the failure every reader raises.

Raw JSON (`Response.body`, ``raw`` fields, webhook ``data``) is walked once:
no NaN or Infinity, no int too long to print, at most `MAX_JSON_DEPTH`
levels of nesting, so that nothing downstream (repr, json.dumps, a JSONL
writer) can fail or recurse without bound. A value of the wrong kind is a
`Mismatch`, which names JSON types and the wire path, never the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from math import isfinite
from typing import Final

__all__ = ["MAX_JSON_DEPTH", "TIMESTAMP", "Mismatch", "Path", "Step", "check_json", "json_type"]

# A path step: ("attr", wire name), ("index", n) or ("key", mapping key).
Step = tuple[str, str | int]
Path = tuple[Step, ...]

MAX_JSON_DEPTH: Final = 64
"""Deepest nesting accepted in raw JSON; Smartcar's bodies nest fewer than ten levels."""
_RAW_INT_BITS: Final = 14_000
"""Longer ints than this (about 4,200 digits) could not be printed or re-serialised."""
TIMESTAMP: Final = "an ISO-8601 date-time string or epoch time"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, float) and not isfinite(value):
        # Names the JSON token, not a value: it cannot carry anything secret.
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class Mismatch(Exception):
    """A value of the wrong JSON type. Keeps only type names, never the value."""

    def __init__(self, expected: str, value: object, path: Path = ()) -> None:
        super().__init__(expected)
        self.expected = expected
        self.got = json_type(value)
        # Set by adapters, which look inside the body before cattrs does.
        self.path = path


def _check_raw_leaf(value: object, path: Path) -> None:
    kind = type(value)
    if kind is float:
        if not isfinite(value):  # type: ignore[arg-type]
            raise Mismatch("a finite number", value, path)
    elif kind is int and value.bit_length() > _RAW_INT_BITS:  # type: ignore[attr-defined]
        raise Mismatch("an integer of at most 4,000 digits", value, path)


def check_json(value: object) -> None:
    """Reject what raw JSON kept as received must not hold (see the module notes).

    Iterative, so no body can exhaust the stack; the depth bound also ends
    the walk of a self-containing container handed in by a caller.
    """
    _check_raw_leaf(value, ())
    stack: list[tuple[object, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        steps: Iterable[tuple[str | int, object]]
        if type(node) is dict:
            kind, steps = "key", node.items()
        elif type(node) is list or type(node) is tuple:
            kind, steps = "index", enumerate(node)
        else:
            continue
        if len(path) >= MAX_JSON_DEPTH:
            raise Mismatch(f"at most {MAX_JSON_DEPTH} levels of nesting", node, path)
        for where, item in steps:
            child = type(item)
            if child is dict or child is list or child is tuple:
                stack.append((item, (*path, (kind, where))))
            elif child is float or child is int:
                _check_raw_leaf(item, (*path, (kind, where)))
