"""The ``--make-limits FILE`` of ``smartcar-async poll``: per-make limits as TOML.

The format, in full::

    # one table per make, named as the attributes endpoint says it (any case)
    [hyundai]
    max_polls = 20        # polls per window...
    window = 86400        # ...of this many seconds

    [chevrolet]
    min_interval = 1800   # seconds between two polls

    [kia]                 # an empty table lifts the built-in limit of a make

The file's tables go on top of the built-in table (``DEFAULT_MAKE_LIMITS``);
``--make-limits default`` uses the built-in table alone. Every problem names
the file and the line of the make's table, like the vehicles file's errors.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from .._quota import MakeLimit

__all__ = ["MakeLimitsError", "parse_make_limits", "read_make_limits"]

_KEYS = ("min_interval", "max_polls", "window")


class MakeLimitsError(ValueError):
    """A problem in the make limits file, with the line where it is (None: the whole file)."""

    def __init__(self, path: str, problem: str, *, line: int | None = None) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        where = path if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {problem}")


def read_make_limits(path: str) -> dict[str, MakeLimit | None]:
    try:
        with open(path, encoding="utf-8-sig") as file:
            text = file.read()
    except OSError as exc:
        raise MakeLimitsError(path, f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise MakeLimitsError(path, "not UTF-8 text") from None
    return parse_make_limits(text, path)


def parse_make_limits(text: str, path: str = "<make limits>") -> dict[str, MakeLimit | None]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found[1]) if found else None
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise MakeLimitsError(path, f"not valid TOML: {message}", line=line) from None
    if not data:
        raise MakeLimitsError(path, "no make tables (e.g. [hyundai] with max_polls and window)")
    limits: dict[str, MakeLimit | None] = {}
    for make, table in data.items():
        line = _line_of(text, make)
        if not isinstance(table, Mapping):
            raise MakeLimitsError(
                path, f"{make!r} must be a table ([{make}] with its limits)", line=line
            )
        limits[make] = _limit(path, make, table, line)
    return limits


def _limit(path: str, make: str, table: Mapping[str, Any], line: int | None) -> MakeLimit | None:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise MakeLimitsError(
            path,
            f"[{make}]: unknown key {unknown[0]!r}; keys: {', '.join(_KEYS)}",
            line=line,
        )
    if not table:
        return None
    try:
        return MakeLimit(
            min_interval=table.get("min_interval"),
            max_polls=table.get("max_polls"),
            window=table.get("window"),
            source=f"{path} [{make}]",
        )
    except (TypeError, ValueError) as exc:
        raise MakeLimitsError(path, f"[{make}]: {exc}", line=line) from None


def _line_of(text: str, make: str) -> int | None:
    pattern = re.compile(
        rf"^\s*(\[\s*[\"']?{re.escape(make)}[\"']?\s*\]|[\"']?{re.escape(make)}[\"']?\s*=)"
    )
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None
