"""``--log-format`` and ``--verbose``: what reaches stderr, in which shape, and never a token."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cli_support import against, run_cli, write
from support import TOKEN

from smartcar_async._cli._logs import REDACTED, Scrubber, install_logging
from smartcar_async.testing import Emulator

FILE_TOKEN = f"{TOKEN}-from-the-file"


def _faults(emu: Emulator) -> None:
    # A failed batch (retried: an info record) and a rate-limited one (a warning).
    emu.inject(status=500, path="/batch", times=1)
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=1, path="/batch")


def _args(emu: Emulator, tmp_path: Path, *more: str) -> list[str]:
    first, second, third = emu.fleet.ids
    listing = write(tmp_path / "fleet.csv", f"{first},{FILE_TOKEN}\n{second}\n{third}\n")
    return against(
        emu,
        "--vehicles-file",
        str(listing),
        "--token",
        TOKEN,
        "--reads",
        "odometer,location",
        "--jitter",
        "0",
        *more,
    )


def _records(stderr: str) -> list[dict[str, Any]]:
    lines = stderr.splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_logs_are_one_object_per_line_with_fields_and_no_token(
    emu: Emulator, tmp_path: Path
) -> None:
    _faults(emu)
    summary = tmp_path / "summary.json"
    done = run_cli(
        _args(emu, tmp_path, "--log-format", "json", "-v", "--summary-json", str(summary))
    )
    assert done.returncode == 0, done.stderr
    records = _records(done.stderr)
    for record in records:
        assert {"time", "level", "logger", "event", "message"} <= set(record)
        assert record["time"].endswith("Z")
        assert dt.datetime.fromisoformat(record["time"]).utcoffset() == dt.timedelta(0)
        assert record["logger"].startswith("smartcar_async")
    events = [r["event"] for r in records]
    assert events[0] == "poll_started"
    assert "round_finished" in events
    assert events[-1] == "summary"

    (retry,) = [r for r in records if r["event"] == "retry"]
    assert retry["level"] == "INFO"
    assert retry["vehicle_id"] in emu.fleet.ids
    assert retry["request_id"]
    assert (retry["error"], retry["attempt"]) == ("ServerError", 1)
    (limited,) = [r for r in records if r["event"] == "rate_limited"]
    assert limited["level"] == "WARNING"
    assert limited["vehicle_id"] in emu.fleet.ids
    assert limited["code"] == "VEHICLE"

    # The summary event carries the same figures as --summary-json.
    assert records[-1]["summary"] == json.loads(summary.read_text())
    for token in (TOKEN, FILE_TOKEN):
        assert token not in done.stdout + done.stderr


def test_without_verbose_only_warnings_reach_stderr(emu: Emulator, tmp_path: Path) -> None:
    _faults(emu)
    done = run_cli(_args(emu, tmp_path, "--log-format", "json"))
    assert done.returncode == 0, done.stderr
    library = [r for r in _records(done.stderr) if r["logger"] == "smartcar_async"]
    assert [r["event"] for r in library] == ["rate_limited"]
    assert all(r["level"] in ("WARNING", "ERROR") for r in library)


def test_text_logs_show_retries_only_with_verbose(emu: Emulator, tmp_path: Path) -> None:
    _faults(emu)
    quiet = run_cli(_args(emu, tmp_path))
    assert quiet.returncode == 0, quiet.stderr
    assert "WARNING smartcar_async: rate limited (VEHICLE)" in quiet.stderr
    assert "retry 1" not in quiet.stderr

    _faults(emu)
    verbose = run_cli(_args(emu, tmp_path, "--verbose"))
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO smartcar_async: POST /batch for vehicle" in verbose.stderr
    assert "retry 1 in" in verbose.stderr
    assert "smartcar-async poll: summary" in verbose.stderr  # the plain summary, as before
    for done in (quiet, verbose):
        assert TOKEN not in done.stderr
        assert FILE_TOKEN not in done.stderr


def test_a_usage_error_in_json_mode_is_a_json_line_without_the_token() -> None:
    done = run_cli(["poll", "--log-format", "json", "--token", TOKEN, "--rounds", TOKEN])
    assert done.returncode == 2
    (record,) = _records(done.stderr)
    assert (record["level"], record["event"], record["exit_status"]) == ("ERROR", "usage_error", 2)
    assert "invalid int value" in record["message"]
    assert TOKEN not in done.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_line_is_scrubbed_of_the_known_secrets(
    fmt: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = f'{TOKEN}/with"quote'
    library = logging.getLogger("smartcar_async")
    before = (library.level, library.propagate, list(library.handlers))
    undo = install_logging(fmt, 0, Scrubber([TOKEN, secret, "short"]))
    try:
        library.warning(
            "echoed %s and %s", TOKEN, secret, extra={"event": "echo", "detail": {"t": [TOKEN]}}
        )
        library.info("not shown without -v: %s", TOKEN)
        logging.getLogger("smartcar_async.cli").info("the command's own line, short stays")
    finally:
        undo()
    assert (library.level, library.propagate, list(library.handlers)) == before
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert REDACTED in err
    assert "not shown" not in err
    assert "short stays" in err  # too short to be a token: left alone
    if fmt == "json":
        echo, own = (json.loads(line) for line in err.splitlines())
        assert echo["message"] == f"echoed {REDACTED} and {REDACTED}"
        assert echo["detail"] == {"t": [REDACTED]}
        assert echo["event"] == "echo"
        assert own["logger"] == "smartcar_async.cli"
