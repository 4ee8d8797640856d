"""Where the results go: JSON Lines or CSV on stdout or a file, and the summary's JSON file."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

from .._converter import unstructure
from .._poller import PollResult


class _Writer:
    """Writes results as JSON Lines or CSV; stops quietly when the reader goes away.

    A write that fails otherwise (a full disk) stops the run too, and is kept
    in ``failure`` for the run to end with status 1.
    """

    CSV_FIELDS: Final = (
        "vehicle_id",
        "round",
        "started_at",
        "read",
        "status",
        "field",
        "value",
        "data_age",
        "error",
        "code",
        "read_seconds",
    )

    def __init__(self, stream: Callable[[], IO[str]], fmt: str, where: str) -> None:
        # The stream is looked up on every write, so that rich can redirect
        # stdout above its progress bars.
        self._stream = stream
        self._format = fmt
        self.format_name = "CSV" if fmt == "csv" else "JSON Lines"
        self.where = where
        self.written = 0
        self.broken = False
        self.failure: OSError | None = None
        if fmt == "csv":
            self._emit([list(self.CSV_FIELDS)])

    def write(self, result: PollResult) -> None:
        if self.broken:
            return
        if self._format == "jsonl":
            line = json.dumps(result.to_dict(), separators=(",", ":"))
            self._raw(line + "\n")
        else:
            self._emit(_csv_rows(result))
        if not self.broken:
            self.written += 1

    def _emit(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        out = _LineBuffer()
        csv.writer(out, lineterminator="\n").writerows(rows)
        self._raw(out.text())

    def close(self) -> None:
        if self.where != "stdout":
            with contextlib.suppress(OSError):
                self._stream().close()

    def _raw(self, text: str) -> None:
        try:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        except OSError as exc:
            self.broken = True
            if not isinstance(exc, BrokenPipeError):
                self.failure = exc
            if self.where == "stdout":
                # Later flushes (at exit too) must not raise again on the dead stream.
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())


class _LineBuffer:
    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def text(self) -> str:
        return "".join(self._parts)


def _csv_rows(result: PollResult) -> list[list[Any]]:
    head = [result.vehicle_id, result.round, result.started_at.isoformat()]
    if result.skipped is not None:
        return [[*head, "", f"skipped:{result.skipped}", "", "", "", "", "", ""]]
    rows = []
    for name, value in result.values.items():
        data = unstructure(value)
        meta = data.pop("meta", None) or {}
        seconds = f"{result.timings[name]:.6f}" if name in result.timings else ""
        for field, leaf in _leaves(data):
            rows.append(
                [*head, name, "ok", field, _cell(leaf), meta.get("data_age") or "", "", "", seconds]
            )
    for name, error in result.errors.items():
        seconds = f"{result.timings[name]:.6f}" if name in result.timings else ""
        rows.append(
            [*head, name, "error", "", "", "", type(error).__name__, error.code or "", seconds]
        )
    for name, reason in result.parked.items():
        rows.append([*head, name, "parked", "", "", "", reason, "", ""])
    return rows


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _writer(args: argparse.Namespace) -> _Writer | None:
    target = args.output
    if target is None and sys.stdout.isatty():
        return None
    fmt = args.format or ("csv" if target and target.lower().endswith(".csv") else "jsonl")
    if target is None or target == "-":
        return _Writer(lambda: sys.stdout, fmt, "stdout")
    handle = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by main
    return _Writer(lambda: handle, fmt, target)


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Write whole or not at all: a reader never sees half a summary."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.replace(partial, path)
