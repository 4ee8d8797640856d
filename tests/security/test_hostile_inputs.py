"""Hostile values from callers, files and stored state: a ValueError, a TypeError or a
SmartcarError, before any request where the value is the caller's; never a raw
OverflowError, AttributeError, RecursionError or ZeroDivisionError from deep inside."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from support import NO_RETRY, TOKEN, make_client

import smartcar_async as sc
from smartcar_async import FleetPoller, MakeLimit, RequestBudget, SQLiteState, VehicleQuota
from smartcar_async._cli import main
from smartcar_async.testing import Emulator

HUGE = 10**400  # an int no float can hold
AHEAD = dt.timezone(dt.timedelta(hours=5))
BEHIND = dt.timezone(dt.timedelta(hours=-5))

Call = Callable[[sc.Vehicle], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception]]] = [
    # Converting to UTC passes datetime.min or max: was an OverflowError.
    ("date-min", lambda c: c.service_history(dt.datetime.min.replace(tzinfo=AHEAD)), ValueError),
    ("date-max", lambda c: c.service_history(dt.datetime.max.replace(tzinfo=BEHIND)), ValueError),
    # Too deep for the JSON encoder: was a RecursionError.
    ("body-deep", lambda c: c.request("POST", "charge", body=_nested(100_000)), ValueError),
    # Was sent as the invalid JSON "NaN" (and Infinity).
    ("body-nan", lambda c: c.request("POST", "charge", body={"limit": float("nan")}), ValueError),
    ("body-inf", lambda c: c.request("PUT", "charge", body=[float("inf")]), ValueError),
    ("body-circular", lambda c: c.request("POST", "charge", body=_circular()), ValueError),
]


def _nested(depth: int) -> list[Any]:
    body: list[Any] = []
    for _ in range(depth):
        body = [body]
    return body


def _circular() -> dict[str, Any]:
    body: dict[str, Any] = {}
    body["self"] = body
    return body


@pytest.mark.parametrize(
    ("call", "error"), [b[1:] for b in BAD_CALLS], ids=[b[0] for b in BAD_CALLS]
)
async def test_bad_call_arguments_fail_before_any_request(
    call: Call, error: type[Exception]
) -> None:
    async with Emulator(vehicles=1, seed=0) as emu, make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)
        with pytest.raises(error) as info:
            await call(car)
        assert type(info.value) is error
        assert emu.requests == []


async def test_v3_request_bodies_are_checked_before_any_request() -> None:
    async with Emulator(vehicles=1, seed=0) as emu, make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN, api_version="3")
        with pytest.raises(ValueError, match="JSON"):
            await car.request("POST", "x", body=_nested(100_000))
        with pytest.raises(ValueError, match="JSON"):
            await car.request("POST", "x", body={"a": float("nan")})
        assert emu.requests == []


async def test_a_json_body_is_sent_as_before() -> None:
    async with Emulator(vehicles=1, seed=0) as emu, make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)
        await car.request("POST", "charge/limit", body={"limit": 0.8})
        assert [r.body for r in emu.requests] == [{"limit": 0.8}]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        # Not a mapping: was an AttributeError ('list' object has no attribute 'items').
        ({"flags": [("country", "DE")]}, TypeError),
        ({"flags": "country:DE"}, TypeError),
        # A lone surrogate cannot go in a URL: was accepted, then failed mid-call.
        ({"vehicle_id": "v\ud800"}, ValueError),
    ],
)
async def test_bad_vehicle_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    async with Emulator(vehicles=1, seed=0) as emu, make_client(emu.url, **NO_RETRY) as client:
        args: dict[str, Any] = {"vehicle_id": emu.fleet.ids[0], "access_token": TOKEN, **kwargs}
        vehicle_id = args.pop("vehicle_id")
        with pytest.raises(error):
            client.vehicle(vehicle_id, **args)
        assert emu.requests == []


async def test_a_webhook_id_with_a_lone_surrogate_is_refused_before_any_request() -> None:
    async with Emulator(vehicles=1, seed=0) as emu, make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)
        with pytest.raises(ValueError, match="surrogate"):
            await car.subscribe("hook\udc80")
        assert emu.requests == []


@pytest.mark.parametrize("rate", [5e-324, 1e-310, 1e-9])
def test_a_request_budget_that_never_refills_is_refused(rate: float) -> None:
    # 5e-324 / 60 is 0.0: the client's bucket divided by zero once it ran dry, and
    # RedisState's emission interval (60e6 / rate) overflowed.
    with pytest.raises(ValueError, match="refill_per_minute"):
        RequestBudget(capacity=1, refill_per_minute=rate)
    assert RequestBudget(capacity=1, refill_per_minute=1e-6).refill_per_minute == 1e-6


@pytest.mark.parametrize(
    "build",
    [
        lambda: MakeLimit(min_interval=HUGE),
        lambda: MakeLimit(max_polls=2, window=HUGE),
        lambda: VehicleQuota(polls=(1.0, HUGE)),
    ],
)
def test_ints_past_a_float_are_a_value_error(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="finite"):  # was an OverflowError
        build()


async def test_a_monthly_budget_past_a_count_is_refused() -> None:
    # Was accepted, then the first poll raised OverflowError (0.8 * budget).
    with pytest.raises(ValueError, match="monthly_budget"):
        FleetPoller(reads=["odometer"], interval=60, monthly_budget=HUGE)
    FleetPoller(reads=["odometer"], interval=60, monthly_budget=2**63 - 1)


# ------------------------------------------------------------------ the command line


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_a_make_limit_past_a_float_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text(f"[kia]\nmin_interval = {HUGE}\n", encoding="utf-8")
    line = _usage_error(["poll", "--make-limits", str(limits), "--also", ""], capsys)
    assert f"--make-limits {limits}, line 1: [kia]: min_interval must be" in line


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:00:00-05:00", "0001-01-01T01:00:00+05:00"])
def test_an_expiry_past_the_calendar_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expires_at: str
) -> None:
    vehicles = tmp_path / "vehicles.csv"
    vehicles.write_text(f"vehicle_id,token,expires_at\nv1,{TOKEN},{expires_at}\n", encoding="utf-8")
    line = _usage_error(
        ["poll", "--vehicles-file", str(vehicles), "--origin", "http://127.0.0.1:9"], capsys
    )
    assert "line 2, column 3: expires_at must be ISO 8601" in line
    assert TOKEN not in line


def test_a_monthly_budget_past_a_count_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Was accepted, and the run died of an OverflowError at its first poll.
    line = _usage_error(["poll", "--monthly-budget", str(HUGE), "--also", ""], capsys)
    assert "--monthly-budget must be at most" in line


# ------------------------------------------------------------------ the SQLite file


async def test_a_billed_count_past_64_bits_is_refused_before_any_io(tmp_path: Path) -> None:
    async with SQLiteState(tmp_path / "s.db") as state:
        for n in (2**63, HUGE):  # sqlite3 raised a raw OverflowError
            with pytest.raises(ValueError, match="n must be at most"):
                await state.add_billed("v1", "2025-03", n)
        assert await state.add_billed("v1", "2025-03", 2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize(
    "stored",
    [
        "'many'",  # TEXT: int() raised a raw ValueError, which the poller does not catch
        "9e999",  # REAL infinity: int() raised OverflowError
        "-3",
        "x'00'",
    ],
)
async def test_a_corrupt_billed_count_is_a_state_error(tmp_path: Path, stored: str) -> None:
    path = tmp_path / "s.db"
    async with SQLiteState(path) as state:
        await state.add_billed("v1", "2025-03", 1)
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE billed SET count = {stored}")  # a SQL literal: a REAL, a blob
    conn.close()
    async with SQLiteState(path) as state:
        with pytest.raises(sc.StateError, match="billed"):
            await state.billed("v1", "2025-03")


async def test_a_stored_quota_past_a_float_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteState(path) as state:
        await state.save_quotas({"v1": VehicleQuota(make="KIA", polls=(1.0,))})
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE quotas SET polls = ?", (f"[{HUGE}]",))
    conn.close()
    async with SQLiteState(path) as state:
        with pytest.raises(sc.StateError, match="quota of vehicle 'v1' is malformed"):
            await state.load_quotas(["v1"])


AMT = "AMT-secret-5be1c0de"


@pytest.mark.parametrize(
    "call",
    [
        lambda amt: sc.hash_challenge(amt, "challenge"),
        lambda amt: sc.verify_payload(amt, "00", b"{}"),
    ],
    ids=["hash_challenge", "verify_payload"],
)
def test_an_amt_that_cannot_be_encoded_is_refused_without_quoting_it(
    call: Callable[[str], object],
) -> None:
    # Was a UnicodeEncodeError, whose repr holds the whole token.
    with pytest.raises(ValueError, match="lone surrogate") as caught:
        call(AMT + "\ud800")
    assert "secret" not in repr(caught.value)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "origin",
    [
        "http://user:pa55word@127.0.0.1:9",
        "https://:pa55word@api.example.com/prefix",
        # An unencoded "/" ends the host inside the password: "user" and port 12.
        "http://user:12/pa55word@127.0.0.1:9",
        "ftp://user:pa/pa55word@example.com/x",
    ],
)
def test_an_origin_with_credentials_is_refused_without_quoting_them(origin: str) -> None:
    # Accepted before, and Client's repr (and every error naming a URL) showed them.
    with pytest.raises(ValueError, match="credentials") as caught:
        sc.Client(api_origin=origin)
    assert "pa55word" not in str(caught.value)


async def test_lone_surrogates_are_refused_before_a_store_is_touched(tmp_path: Path) -> None:
    # Each failed inside the store's worker with a UnicodeEncodeError, whose repr quotes
    # the whole value: a token, for StoredTokens.
    with pytest.raises(ValueError, match="lone surrogate") as caught:
        sc.StoredTokens(
            access_token="tok-secret-\ud800",
            refresh_token="r",
            access_expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        )
    assert "secret" not in repr(caught.value)
    async with SQLiteState(tmp_path / "s.db") as state:
        with pytest.raises(ValueError, match="lone surrogate"):
            await state.billed("v\ud800", "2025-03")
        with pytest.raises(ValueError, match="lone surrogate"):
            await state.load_tokens("lineage-\udfff")
        assert await state.billed("v1", "2025-03") == 0  # the store still works
