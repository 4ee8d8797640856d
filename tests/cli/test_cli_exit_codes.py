"""Exit statuses of ``smartcar-async poll``, each from a real process, and ``--version``."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cli_support import (
    HANG_GUARD,
    against,
    json_lines,
    run_cli,
    start_cli,
    summary_value,
    vehicle_requests,
    write,
)
from support import TOKEN

from smartcar_async import __version__
from smartcar_async._cli._run import _Outcome, _stop_on_signals
from smartcar_async.testing import Emulator

GOOD, BAD = f"{TOKEN}-good", f"{TOKEN}-bad"


@pytest.fixture
def strict_emu() -> Iterator[Emulator]:
    """An emulator that answers 401 to every token it was not given."""
    with Emulator(vehicles=3, seed=7, accept_any_token=False).in_thread() as emulator:
        emulator.register_token(GOOD)
        yield emulator


def test_every_read_refused_with_401_exits_1(strict_emu: Emulator, tmp_path: Path) -> None:
    listing = write(tmp_path / "fleet.csv", "".join(f"{v},{BAD}\n" for v in strict_emu.fleet.ids))
    summary = tmp_path / "summary.json"
    done = run_cli(
        against(strict_emu, "--vehicles-file", str(listing), "--summary-json", str(summary))
    )
    assert done.returncode == 1, done.stderr
    assert len(vehicle_requests(strict_emu)) == 3  # it did poll: every answer was a 401
    figures = json.loads(summary.read_text())
    assert figures["exit_status"] == 1
    assert figures["reads"]["ok"] == 0
    assert figures["reads"]["failed_by_type"] == {"AuthenticationError": 3 * 4}
    assert summary_value(done.stderr, "Exit status").startswith("1 (no read succeeded")
    assert BAD not in done.stdout + done.stderr


def test_an_unreachable_api_exits_1() -> None:
    # A port that was just free: every connection is refused.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_cli(
        [
            "poll",
            "--origin",
            f"http://127.0.0.1:{port}",
            "--vehicle",
            "v1",
            "--token",
            TOKEN,
            "--max-retries",
            "0",
            "--reads",
            "odometer",
        ]
    )
    assert done.returncode == 1, done.stderr
    assert "APIConnectionError" in summary_value(done.stderr, "Errors by type")
    assert TOKEN not in done.stdout + done.stderr


def test_some_polls_ok_and_some_failed_exits_0(strict_emu: Emulator, tmp_path: Path) -> None:
    first, second, third = strict_emu.fleet.ids
    listing = write(tmp_path / "fleet.csv", f"{first},{GOOD}\n{second},{BAD}\n{third},{BAD}\n")
    done = run_cli(against(strict_emu, "--vehicles-file", str(listing), "--reads", "odometer"))
    assert done.returncode == 0, done.stderr
    results = {line["vehicle_id"]: line for line in json_lines(done.stdout)}
    assert set(results[first]["values"]) == {"odometer"}
    assert results[second]["errors"]["odometer"]["error"] == "AuthenticationError"
    assert summary_value(done.stderr, "Polls (vehicle-rounds)").startswith("3: 1 ok, 2 with errors")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_results_that_cannot_be_written_stop_the_run_with_1(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    options = ["--fleet-size", "3", "--rounds", "1", "--output", "/dev/full"]
    done = run_cli(["poll", *options, "--summary-json", str(summary)])
    assert done.returncode == 1, done.stderr
    message = "cannot write --output: No space left on device (/dev/full)"
    assert f"smartcar-async: error: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    figures = json.loads(summary.read_text())
    assert (figures["exit_status"], figures["error"]) == (1, message)
    assert figures["results_written"] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["poll", "--no-such-option"],
        ["poll", "--rounds", "-1"],
        ["poll", "--interval", "0"],
        ["poll", "--interval", "inf"],
        ["poll", "--interval", "nan"],
        ["poll", "--timeout", "0"],
        ["poll", "--timeout", "1e400"],
        ["poll", "--reads", "odometer,speed"],
        ["poll", "--log-format", "xml"],
        ["poll", "--summary-json", "/no/such/folder/summary.json"],
        ["poll", "--vehicles-file", "/no/such/fleet.csv"],
        ["pol"],
    ],
)
def test_bad_arguments_exit_2_before_anything_runs(argv: list[str]) -> None:
    done = run_cli(argv)
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr
    assert "Polling" not in done.stderr
    assert done.stdout == ""


def test_version() -> None:
    done = run_cli(["--version"])
    assert done.returncode == 0
    assert done.stdout == f"smartcar-async {__version__}\n"


def _wait_for_a_line(path: Path, process: subprocess.Popen[str]) -> None:
    """Until the output file holds a whole line (within the hang guard)."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and b"\n" in path.read_bytes():
            return
        time.sleep(0.02)
    raise AssertionError("no output line in time")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_cleanly_flushing_results_and_summary(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    summary, output = tmp_path / "summary.json", tmp_path / "results.jsonl"
    process = start_cli(
        [
            "poll",
            "--fleet-size",
            "6",
            "--interval",
            "0.2",
            "--rounds",
            "0",
            "--output",
            str(output),
            "--summary-json",
            str(summary),
        ]
    )
    try:
        _wait_for_a_line(output, process)
        process.send_signal(signum)
        _, err = process.communicate(timeout=HANG_GUARD)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status, err
    text = output.read_text()
    assert text.endswith("\n")
    lines = json_lines(text)  # every line whole: nothing cut off mid-write
    assert lines
    figures = json.loads(summary.read_text())
    assert figures["stopped_by"] == signum.name
    assert figures["exit_status"] == status
    assert figures["results_written"] == len(lines)
    assert figures["rounds"]["planned"] is None
    assert f"interrupted by {signum.name} in round" in err
    assert summary_value(err, "Exit status").startswith(f"{status} (stopped by {signum.name}")
    assert "Traceback" not in err


async def test_the_signal_handlers_are_put_back_after_the_run() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    outcome = _Outcome()
    scope = anyio.CancelScope()
    restore = _stop_on_signals(outcome, scope)
    try:
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
        # A real SIGTERM to this process: the loop's handler asks for a clean stop.
        signal.raise_signal(signal.SIGTERM)
        deadline = time.monotonic() + HANG_GUARD
        while not scope.cancel_called and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        restore()
    assert outcome.stopped_by == "SIGTERM"
    assert scope.cancel_called
    assert {s: signal.getsignal(s) for s in before} == before
