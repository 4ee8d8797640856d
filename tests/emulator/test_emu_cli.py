"""The emulator as a target for ``smartcar-async poll``: token life, minted pairs, the command.

Process tests start ``python -m smartcar_async.testing`` for real, read what it
prints, and always stop it. Waits are bounded; no assertion is about elapsed time.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import os
import queue
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smartcar_async._cli._vehicles_file import read_vehicles_file
from smartcar_async.testing import Emulator, TokenPair
from smartcar_async.testing.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD = 30.0
CLIENT = ("emulator-client", "emulator-secret")


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "error"}


# ----------------------------------------------------------------- HTTP helpers


def call(
    url: str,
    *,
    token: str | None = None,
    form: dict[str, str] | None = None,
    client: tuple[str, str] = CLIENT,
) -> tuple[int, Any]:
    """GET with a Bearer token, or POST a form with Basic client credentials."""
    headers: dict[str, str] = {}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def refresh(origin: str, refresh_token: str, client: tuple[str, str] = CLIENT) -> tuple[int, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return call(f"{origin}/oauth/token", form=form, client=client)


def odometer(origin: str, vehicle_id: str, token: str) -> tuple[int, Any]:
    return call(f"{origin}/v2.0/vehicles/{vehicle_id}/odometer", token=token)


# -------------------------------------------------------- the Python interface


def code_exchange(emu: Emulator, vehicle_ids: list[str]) -> tuple[int, Any]:
    form = {"grant_type": "authorization_code", "code": emu.issue_code(vehicle_ids=vehicle_ids)}
    return call(f"{emu.url}/oauth/token", form=form)


def test_token_ttl_is_the_life_of_issued_access_tokens() -> None:
    with Emulator(vehicles=2, token_ttl=30).in_thread() as emu:
        vid = emu.fleet.ids[0]
        status, body = code_exchange(emu, [vid])
        assert status == 200
        assert body["expires_in"] == 30
        pair = emu.issue_tokens([vid])
        assert pair.expires_in == 30
        assert odometer(emu.url, vid, body["access_token"])[0] == 200
        assert odometer(emu.url, vid, pair.access_token)[0] == 200
        emu.advance_clock(31)
        for token in (body["access_token"], pair.access_token):
            status, error = odometer(emu.url, vid, token)
            assert (status, error["type"]) == (401, "AUTHENTICATION")
        # accept_any_token still admits a made-up token: only issued ones expire.
        assert odometer(emu.url, vid, "made-up")[0] == 200
        # The refresh token outlives the access token and gives a fresh one.
        status, renewed = refresh(emu.url, pair.refresh_token)
        assert (status, renewed["expires_in"]) == (200, 30)
        assert odometer(emu.url, vid, renewed["access_token"])[0] == 200


def test_ttl_mode_refresh_token_works_once() -> None:
    with Emulator(vehicles=1, token_ttl=60).in_thread() as emu:
        emu.freeze_clock()  # the same instant: no grace window could explain a refusal
        pair = emu.issue_tokens()
        status, first = refresh(emu.url, pair.refresh_token)
        assert status == 200
        status, again = refresh(emu.url, pair.refresh_token)
        assert (status, again["error"]) == (400, "invalid_grant")
        # The rotated token is the one that works, once.
        assert refresh(emu.url, first["refresh_token"])[0] == 200
        assert refresh(emu.url, first["refresh_token"])[0] == 400
    # Without token_ttl, Smartcar's grace window still lets a used token work again.
    with Emulator(vehicles=1).in_thread() as emu:
        pair = emu.issue_tokens()
        assert refresh(emu.url, pair.refresh_token)[0] == 200
        assert refresh(emu.url, pair.refresh_token)[0] == 200


def test_issue_tokens() -> None:
    with Emulator(vehicles=3, seed=2).in_thread() as emu:
        mine, other = emu.fleet.ids[0], emu.fleet.ids[1]
        before = dt.datetime.now(dt.UTC)
        pair = emu.issue_tokens([mine])
        assert isinstance(pair, TokenPair)
        assert pair.expires_in == 7200
        assert pair.expires_at.tzinfo is not None
        delta = (pair.expires_at - before).total_seconds()
        assert 7190 < delta <= 7210
        assert pair.access_token not in repr(pair)
        assert pair.refresh_token not in repr(pair)
        assert odometer(emu.url, mine, pair.access_token)[0] == 200
        status, error = odometer(emu.url, other, pair.access_token)
        assert (status, error["type"]) == (403, "PERMISSION")
        short = emu.issue_tokens([mine], expires_in=5)
        assert short.expires_in == 5
        emu.advance_clock(6)
        assert odometer(emu.url, mine, short.access_token)[0] == 401
        # Usable with the client credentials the emulator knows, and only those once set.
        emu.register_client(*CLIENT)
        assert refresh(emu.url, pair.refresh_token, ("someone", "else"))[0] == 401
        assert refresh(emu.url, pair.refresh_token)[0] == 200
        with pytest.raises(ValueError, match="not vehicles of this fleet"):
            emu.issue_tokens(["no-such-car"])
        with pytest.raises(TypeError):
            emu.issue_tokens(mine)
        for bad in (0, -1, float("nan"), float("inf")):
            with pytest.raises(ValueError):
                emu.issue_tokens([mine], expires_in=bad)


@pytest.mark.parametrize("ttl", [0, -5, 1.5, True, "10"])
def test_token_ttl_must_be_whole_seconds(ttl: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="token_ttl"):
        Emulator(token_ttl=ttl)


# ------------------------------------------------------------- the shell command


class Served:
    """A running ``python -m smartcar_async.testing`` and the lines it printed."""

    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines
        match = re.fullmatch(r"Smartcar emulator serving \d+ vehicles at (http://\S+)", lines[0])
        assert match, lines[0]
        self.url = match.group(1)


@pytest.fixture
def serve() -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Served:
        proc = subprocess.Popen(
            [sys.executable, "-m", "smartcar_async.testing", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=ROOT,
        )
        procs.append(proc)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + HANG_GUARD
        while not seen or not seen[-1].startswith("Stop with"):
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, (seen, proc.wait(HANG_GUARD), proc.stderr)
            seen.append(line)
        return Served(proc, seen)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=HANG_GUARD)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            # A clean stop: status 0 and nothing on stderr.
            assert proc.returncode == 0, err
            assert err == ""


def test_prints_how_to_poll_and_writes_a_fleet_file(serve: Any, tmp_path: Path) -> None:
    fleet = tmp_path / "my fleet.csv"
    served = serve(
        "--vehicles",
        "5",
        "--seed",
        "3",
        "--vehicles-per-user",
        "2",
        "--write-fleet",
        str(fleet),
    )
    url, text = served.url, "\n".join(served.lines)
    assert "  export SMARTCAR_CLIENT_ID=emulator-client" in served.lines
    assert "  export SMARTCAR_CLIENT_SECRET=emulator-secret" in served.lines
    [command] = [
        line
        for line in served.lines
        if "smartcar-async poll --origin" in line and "--vehicles-file" in line
    ]
    argv = shlex.split(command)
    assert argv[:3] == ["smartcar-async", "poll", "--origin"]
    assert argv[argv.index("--origin") + 1] == url
    assert argv[argv.index("--auth-origin") + 1] == url
    assert argv[argv.index("--vehicles-file") + 1] == str(fleet)
    assert f"{url}/oauth/token" in text

    # Owner-only: the file holds tokens.
    assert stat.S_IMODE(fleet.stat().st_mode) == 0o600
    raw = fleet.read_text()
    header = next(line for line in raw.splitlines() if not line.startswith("#"))
    assert header == "vehicle_id,access_token,refresh_token,expires_at"
    # The CLI's own parser accepts it.
    rows = read_vehicles_file(str(fleet))
    assert [row.vehicle_id for row in rows] == Emulator(vehicles=5, seed=3).fleet.ids
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        assert row.access_token
        assert row.refresh_token
        assert row.expires_at is not None
        assert now < row.expires_at <= now + dt.timedelta(seconds=7200)
    # Two vehicles to a user: three users, each with its own pair.
    pairs = [(str(row.access_token), str(row.refresh_token)) for row in rows]
    assert pairs[0] == pairs[1]
    assert pairs[2] == pairs[3]
    assert len(set(pairs)) == 3
    assert odometer(url, rows[0].vehicle_id, pairs[0][0])[0] == 200

    # Its access tokens poll (refresh tokens need the state file of a later version).
    plain = tmp_path / "access-only.csv"
    with open(plain, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["vehicle_id", "access_token", "expires_at"])
        for row in rows:
            assert row.expires_at is not None
            writer.writerow([row.vehicle_id, row.access_token, row.expires_at.isoformat()])
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartcar_async",
            "poll",
            "--origin",
            url,
            "--vehicles-file",
            str(plain),
            "--rounds",
            "1",
            "--interval",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for token, refresh_token in pairs:
        assert token not in done.stdout + done.stderr
        assert refresh_token not in done.stdout + done.stderr

    # The printed client credentials are the ones the token endpoint wants.
    assert refresh(url, pairs[0][1], ("emulator-client", "wrong"))[0] == 401
    assert refresh(url, pairs[0][1])[0] == 200


def test_without_a_fleet_file_it_says_how_to_write_one(serve: Any) -> None:
    served = serve("--vehicles", "2", "--client-id", "cid", "--client-secret", "s3")
    assert "  export SMARTCAR_CLIENT_ID=cid" in served.lines
    assert any("--write-fleet" in line for line in served.lines)
    assert refresh(served.url, "anything", ("cid", "s3"))[1]["error"] == "invalid_grant"


def test_token_ttl_from_the_shell(serve: Any, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    served = serve("--vehicles", "1", "--token-ttl", "2", "--write-fleet", str(fleet))
    assert any("access tokens live 2 s, refresh tokens work once" in x for x in served.lines)
    [row] = read_vehicles_file(str(fleet))
    assert row.refresh_token is not None
    assert row.expires_at is not None
    assert row.expires_at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    status, pair = refresh(served.url, row.refresh_token)
    assert (status, pair["expires_in"]) == (200, 2)
    # Spent: refused at once, not after a grace window.
    status, error = refresh(served.url, row.refresh_token)
    assert (status, error["error"]) == (400, "invalid_grant")
    assert odometer(served.url, row.vehicle_id, pair["access_token"])[0] == 200
    deadline = time.monotonic() + HANG_GUARD
    while odometer(served.url, row.vehicle_id, pair["access_token"])[0] == 200:
        assert time.monotonic() < deadline, "the access token never expired"
        time.sleep(0.2)
    status, error = odometer(served.url, row.vehicle_id, pair["access_token"])
    assert (status, error["type"]) == (401, "AUTHENTICATION")
    assert odometer(served.url, row.vehicle_id, "made-up")[0] == 200


@pytest.mark.parametrize(
    ("flags", "status", "kind", "code"),
    [
        (["--asleep", "1.0"], 409, "VEHICLE_STATE", "ASLEEP"),
        (["--error-rate", "1"], 500, "SERVER", "INTERNAL"),
        (["--vehicle-rate-limit", "1"], 429, "RATE_LIMIT", "VEHICLE"),
        (["--app-rate-limit", "1", "--app-refill", "0"], 429, "RATE_LIMIT", "SMARTCAR_API"),
    ],
)
def test_fault_flags(serve: Any, flags: list[str], status: int, kind: str, code: str) -> None:
    served = serve("--vehicles", "2", *flags)
    assert any(line.startswith("Faults: ") for line in served.lines)
    vid = Emulator(vehicles=2).fleet.ids[0]
    replies = [odometer(served.url, vid, "demo") for _ in range(2)]
    assert (replies[-1][0], replies[-1][1]["type"], replies[-1][1]["code"]) == (status, kind, code)


def test_asleep_fraction_picks_that_many_vehicles(serve: Any) -> None:
    served = serve("--vehicles", "4", "--asleep", "0.5")
    assert "Faults: 2 vehicles asleep" in served.lines
    ids = Emulator(vehicles=4).fleet.ids
    statuses = sorted(odometer(served.url, vid, "demo")[0] for vid in ids)
    assert statuses == [200, 200, 409, 409]


@pytest.mark.parametrize(
    "args",
    [
        ["--error-rate", "1.5"],
        ["--error-rate", "nan"],
        ["--asleep", "-0.1"],
        ["--asleep", "half"],
        ["--token-ttl", "0"],
        ["--token-ttl", "1.5"],
        ["--vehicles-per-user", "0"],
        ["--latency", "-1"],
        ["--latency", "inf"],
        ["--port", "70000"],
        ["--vehicles", "-1"],
        ["--vehicle-rate-limit", "0"],
        ["--vehicle-window", "0"],
        ["--app-refill", "-2"],
        ["--vehicles", "0", "--write-fleet", "fleet.csv"],
        ["--write-fleet", ""],
    ],
)
def test_bad_values_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_bad_value_exits_2_as_a_process() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "smartcar_async.testing", "--error-rate", "2"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 2
    assert "--error-rate: must be a fraction from 0 to 1" in done.stderr
    assert done.stdout == ""


def test_unwritable_fleet_file_exits_1(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "fleet.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartcar_async.testing",
            "--port",
            "0",
            "--write-fleet",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        env=child_env(),
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"cannot write {target}: No such file or directory"
    assert list(tmp_path.iterdir()) == []
