"""Helpers for the fleet poller's tests: loopback emulators, collecting results, the CLI."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio
import support
from support import NO_RETRY
from support import TOKEN as TOKEN  # importable from here too, as it always was
from support import assert_no_leftover_tasks as assert_no_leftover_tasks

from smartcar_async import Client
from smartcar_async._poller import FleetPoller, PollResult

# Guards against hangs only; no assertion is ever made about elapsed time.
HANG_GUARD = 20.0


def make_client(origin: str, **overrides: Any) -> Client:
    """`support.make_client` with retries off (each test looks at single attempts)."""
    return support.make_client(origin, **{"timeout": HANG_GUARD, **NO_RETRY, **overrides})


def vehicles(client: Client, ids: Iterable[str], **kwargs: Any) -> list[Any]:
    return [client.vehicle(vid, access_token=f"{TOKEN}-{n}", **kwargs) for n, vid in enumerate(ids)]


async def collect(poller: FleetPoller) -> list[PollResult]:
    """Every result until the poller's rounds are done (bounded by HANG_GUARD)."""
    results: list[PollResult] = []
    with anyio.fail_after(HANG_GUARD):
        async for result in poller.results():
            results.append(result)
    return results


def by_vehicle(results: Iterable[PollResult]) -> dict[str, list[PollResult]]:
    grouped: dict[str, list[PollResult]] = {}
    for result in results:
        grouped.setdefault(result.vehicle_id, []).append(result)
    return grouped


def assert_every_round(results: Iterable[PollResult], ids: Iterable[str], rounds: int) -> None:
    """Exactly one result per vehicle per round, none extra."""
    seen = [(r.vehicle_id, r.round) for r in results]
    assert len(seen) == len(set(seen)), "a vehicle got two results for one round"
    assert set(seen) == {(vid, n) for vid in ids for n in range(1, rounds + 1)}


# ------------------------------------------------------------------------ CLI

CLI = [sys.executable, "-m", "smartcar_async"]


def run_cli(
    args: Sequence[str], *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_cli_in_pty(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, stdout_to_pipe: bool = False
) -> tuple[int, str, str]:
    """Run the CLI on a pseudo-terminal; return (status, terminal output, piped stdout).

    The terminal is stdin and stderr, and stdout too unless ``stdout_to_pipe``.
    """
    import fcntl
    import struct
    import termios

    leader, follower = os.openpty()
    # 120 columns, so rich lays the summary table out without wrapping.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [*CLI, *args],
        stdin=follower,
        stdout=subprocess.PIPE if stdout_to_pipe else follower,
        stderr=follower,
        close_fds=True,
        env={**os.environ, "TERM": "xterm-256color", **(env or {})},
    )
    os.close(follower)
    streams = {leader: bytearray()}
    streams_done: dict[int, bytearray] = {}
    if process.stdout is not None:
        streams[process.stdout.fileno()] = bytearray()
    deadline = time.monotonic() + 60
    try:
        while streams and time.monotonic() < deadline:
            ready, _, _ = select.select(list(streams), [], [], 0.5)
            if not ready and process.poll() is not None:
                break
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if chunk:
                    streams[fd] += chunk
                else:
                    finished = streams.pop(fd)
                    streams_done[fd] = finished
        status = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
        if process.stdout is not None:
            process.stdout.close()
    collected = {**streams_done, **streams}
    terminal = bytes(collected[leader]).decode("utf-8", errors="replace")
    piped = b""
    if stdout_to_pipe:
        piped = bytes(collected[next(fd for fd in collected if fd != leader)])
    return status, terminal, piped.decode()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def requested(emu: Any, vehicle_id: str, path: str) -> int:
    """How many times the emulator was asked for ``path`` of a vehicle: batch items and GETs."""
    prefix = f"/v2.0/vehicles/{vehicle_id}"
    count = 0
    for request in emu.requests:
        if request.path == f"{prefix}/batch" and isinstance(request.body, dict):
            count += sum(item.get("path") == path for item in request.body.get("requests", []))
        elif request.method == "GET" and request.path == prefix + path:
            count += 1
    return count
