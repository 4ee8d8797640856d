"""``smartcar-async poll --state PATH --recheck SECONDS``: parked reads across two processes."""

from __future__ import annotations

import csv
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from poller_support import json_lines, requested, run_cli
from support import TOKEN

from smartcar_async.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
# The CLI imports this worktree's package, whatever is installed.
ENV = {"PYTHONPATH": str(ROOT)}
NARROW = "tok-SECRET-narrow-0ddba11"


@pytest.fixture
def emu_thread() -> Iterator[Emulator]:
    """An emulator on its own thread, so the CLI processes can poll it while the test waits."""
    with Emulator(vehicles=3, seed=11, max_recorded=5000).in_thread() as emulator:
        yield emulator


def fleet_file(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["vehicle_id", "access_token"])
        writer.writerows(rows)
    return path


def poll(
    emu: Emulator, listing: Path, tmp_path: Path, run: int, *extra: str
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    out, summary = tmp_path / f"out{run}.jsonl", tmp_path / f"summary{run}.json"
    done = run_cli(
        [
            "poll",
            "--origin",
            emu.url,
            "--vehicles-file",
            str(listing),
            "--reads",
            "odometer,location",
            "--rounds",
            "2",
            "--interval",
            "0.3",
            "--output",
            str(out),
            "--summary-json",
            str(summary),
            "--plain",
            *extra,
        ],
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stderr
    assert NARROW not in done.stderr
    return json_lines(out.read_text()), json.loads(summary.read_text()), done.stderr


def check_arithmetic(figures: dict[str, Any], lines: list[dict[str, Any]], reads: int) -> None:
    polls, counted = figures["polls"], figures["reads"]
    assert polls["total"] == polls["ok"] + polls["error"] + polls["parked"] + polls["skipped"]
    assert polls["total"] == len(lines)
    polled = [line for line in lines if line["skipped"] is None]
    assert counted["ok"] + counted["failed"] + counted["parked"] == len(polled) * reads
    assert counted["parked"] == sum(len(line["parked"]) for line in lines)
    assert counted["parked"] == sum(counted["parked_by_reason"].values())
    http = figures["http_requests"]
    assert http["total"] == http["batches"] + http["single_gets"] + http["writes"]


def test_a_parked_read_is_not_asked_again_by_the_next_run(
    emu_thread: Emulator, tmp_path: Path
) -> None:
    emu = emu_thread
    compat, narrow, fine = emu.fleet.ids
    vehicle = emu.fleet.get(compat)
    assert vehicle is not None
    vehicle.capabilities.discard("/odometer")
    emu.register_token(NARROW, scopes=["read_location"])
    listing = fleet_file(tmp_path / "fleet.csv", [(compat, TOKEN), (narrow, NARROW), (fine, TOKEN)])
    state = tmp_path / "state.db"

    lines, figures, err = poll(emu, listing, tmp_path, 1, "--state", str(state))
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert requested(emu, compat, "/odometer") == requested(emu, narrow, "/odometer") == 1
    second = {line["vehicle_id"]: line for line in lines if line["round"] == 2}
    assert second[compat]["parked"] == {"odometer": "COMPATIBILITY"}
    assert second[narrow]["parked"] == {"odometer": "PERMISSION"}
    assert second[fine]["parked"] == {}
    assert figures["reads"]["parked"] == 2
    assert figures["reads"]["parked_by_reason"] == {"COMPATIBILITY": 1, "PERMISSION": 1}
    check_arithmetic(figures, lines, 2)
    assert "Parked reads:" in err
    assert "2 not requested (COMPATIBILITY 1, PERMISSION 1)" in err

    # A second process with the same --state: not one request for the parked reads.
    emu.clear_requests()
    lines, figures, _ = poll(emu, listing, tmp_path, 2, "--state", str(state))
    assert requested(emu, compat, "/odometer") == requested(emu, narrow, "/odometer") == 0
    assert requested(emu, compat, "/location") == requested(emu, fine, "/odometer") == 2
    assert all(
        line["parked"] == {"odometer": "COMPATIBILITY"}
        for line in lines
        if line["vehicle_id"] == compat
    )
    assert figures["reads"]["parked"] == 4
    check_arithmetic(figures, lines, 2)
    assert TOKEN.encode() not in state.read_bytes()

    # Without --state, parking lasts for the run only: the read is asked again, once.
    emu.clear_requests()
    lines, figures, _ = poll(emu, listing, tmp_path, 3, "--recheck", "3600")
    assert requested(emu, compat, "/odometer") == 1
    check_arithmetic(figures, lines, 2)


def test_a_vehicle_whose_every_read_is_parked_counts_as_a_parked_poll(
    emu_thread: Emulator, tmp_path: Path
) -> None:
    emu = emu_thread
    car, fine = emu.fleet.ids[:2]
    emu.revoke_token(NARROW)
    listing = fleet_file(tmp_path / "fleet.csv", [(car, NARROW), (fine, TOKEN)])
    lines, figures, err = poll(emu, listing, tmp_path, 1)
    mine = sorted((line for line in lines if line["vehicle_id"] == car), key=lambda x: x["round"])
    assert [line["round"] for line in mine] == [1, 2]
    assert set(mine[0]["errors"]) == {"odometer", "location"}
    assert mine[1]["parked"] == {"odometer": "AUTHENTICATION", "location": "AUTHENTICATION"}
    assert mine[1]["values"] == mine[1]["errors"] == {}
    assert figures["polls"]["parked"] == 1
    assert figures["polls"]["error"] == 1
    assert figures["polls"]["ok"] == 2
    assert requested(emu, car, "/odometer") == 1
    check_arithmetic(figures, lines, 2)
    assert "1 all parked" in err


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_a_bad_recheck_is_refused_before_polling(
    emu_thread: Emulator, tmp_path: Path, value: str
) -> None:
    listing = fleet_file(tmp_path / "fleet.csv", [(emu_thread.fleet.ids[0], TOKEN)])
    done = run_cli(
        ["poll", "--origin", emu_thread.url, "--vehicles-file", str(listing), "--recheck", value],
        env=ENV,
    )
    assert done.returncode == 2
    assert "--recheck" in done.stderr
    assert emu_thread.requests == []


def test_refresh_tokens_without_client_credentials_are_refused(
    emu_thread: Emulator, tmp_path: Path
) -> None:
    listing = tmp_path / "fleet.csv"
    listing.write_text(
        f"vehicle_id,access_token,refresh_token\n{emu_thread.fleet.ids[0]},{TOKEN},{NARROW}\n"
    )
    done = run_cli(
        [
            "poll",
            "--origin",
            emu_thread.url,
            "--vehicles-file",
            str(listing),
            "--state",
            str(tmp_path / "state.db"),
        ],
        env={**ENV, "SMARTCAR_CLIENT_ID": "", "SMARTCAR_CLIENT_SECRET": ""},
    )
    assert done.returncode == 2
    assert "set SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET" in done.stderr
    assert TOKEN not in done.stderr
    assert NARROW not in done.stderr
    assert emu_thread.requests == []
