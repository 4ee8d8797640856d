"""Helpers for the command-line tests: the CLI as a real process, files, the emulator's log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support import TOKEN as TOKEN  # importable from here too, as it always was

from smartcar_async.testing import Emulator, RecordedRequest

#: The worktree's root: children import this tree's code, whatever is installed.
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "smartcar_async"]
# Guards against hangs only; no assertion is ever made about elapsed time.
HANG_GUARD = 60.0
V2 = "/v2.0/vehicles/"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTCAR_ACCESS_TOKEN"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_env(env),
        check=False,
        cwd=ROOT,
    )


def start_cli(args: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )


def against(emu: Emulator, *args: str) -> list[str]:
    """``poll`` arguments for one quick round against ``emu`` with no retries unless asked."""
    return ["poll", "--origin", emu.url, "--rounds", "1", "--interval", "0.5", *args]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def vehicle_requests(emu: Emulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.path.startswith(V2)]


def vehicle_of(req: RecordedRequest) -> str:
    return req.path[len(V2) :].partition("/")[0]


def summary_value(stderr: str, row: str) -> str:
    """The value of one ``  Row: value`` line of the plain summary."""
    for line in stderr.splitlines():
        name, sep, value = line.strip().partition(": ")
        if sep and name == row:
            return value.strip()
    raise AssertionError(f"no {row!r} row in:\n{stderr}")
