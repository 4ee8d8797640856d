"""Rate limits and fault injection over loopback HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from emu_support import Api, assert_error

from smartcar_async.testing import Emulator, Faults, RateLimits


async def test_vehicle_window_and_retry_after(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    emu.rate_limits.vehicle_requests = 3
    emu.rate_limits.vehicle_window = 60
    one, two = emu.fleet.ids[0], emu.fleet.ids[1]
    for _ in range(3):
        assert (await api.vget(one, "/odometer")).status == 200
    limited = await api.vget(one, "/location")
    body = assert_error(limited, 429, "RATE_LIMIT", "VEHICLE")
    assert limited.headers["Retry-After"] == "60"
    assert body["resolution"] == {"type": "RETRY_LATER"}
    assert (await api.vget(two, "/odometer")).status == 200  # windows are per vehicle
    emu.advance_clock(45)
    assert (await api.vget(one, "/odometer")).headers["Retry-After"] == "15"
    emu.advance_clock(15)
    # Rejected calls took no slot: all three slots free together.
    for _ in range(3):
        assert (await api.vget(one, "/odometer")).status == 200
    assert (await api.vget(one, "/odometer")).status == 429
    # A batch counts one per path.
    emu.reset_rate_limits()
    batch = await api.batch(one, ["/odometer", "/location"])
    assert [r["code"] for r in batch.body["responses"]] == [200, 200]
    assert (await api.vget(one, "/vin")).status == 200
    assert (await api.vget(one, "/vin")).status == 429
    # Failures before the vehicle is contacted are not counted.
    emu.reset_rate_limits()
    for _ in range(5):
        assert (await api.vget(emu.fleet.vehicles[0].id, "/fuel")).status == 501
    assert (await api.vget(one, "/odometer")).status == 200


async def test_application_bucket(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    emu.rate_limits = RateLimits(app_capacity=3, app_refill_per_minute=2)
    vid = emu.fleet.ids[0]
    for _ in range(2):
        assert (await api.vget(vid, "/odometer")).status == 200
    # The bucket counts HTTP requests: a batch takes one token whatever its size.
    assert (await api.batch(vid, ["/odometer", "/location", "/vin"])).status == 200
    batch = await api.batch(vid, ["/odometer", "/location"])
    assert_error(batch, 429, "RATE_LIMIT", "SMARTCAR_API")
    assert batch.headers["Retry-After"] == "30"
    limited = await api.get("/v2.0/vehicles")
    assert_error(limited, 429, "RATE_LIMIT", "SMARTCAR_API")
    assert limited.headers["Retry-After"] == "30"
    emu.advance_clock(30)
    assert (await api.get("/v2.0/user")).status == 200
    assert (await api.get("/v2.0/user")).status == 429
    # A bucket that never refills promises no time to retry at.
    emu.rate_limits = RateLimits(app_capacity=1, app_refill_per_minute=0)
    assert (await api.batch(vid, ["/vin"] * 6)).status == 200
    never = await api.batch(vid, ["/vin"])
    assert never.status == 429
    assert "Retry-After" not in never.headers
    # Auth failures and unknown paths cost nothing.
    assert (await api.get("/v2.0/vehicles", token=None)).status == 401
    assert (await api.vget(vid, "/nope")).status == 404
    emu.rate_limits.app_capacity = None
    assert (await api.batch(vid, ["/vin"] * 6)).status == 200


async def test_latency(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    emu.latency = 0.2
    started = time.perf_counter()
    assert (await api.vget(vid, "/vin")).status == 200
    assert time.perf_counter() - started >= 0.19
    emu.latency = 0.0
    emu.faults.latency = (0.05, 0.1)
    started = time.perf_counter()
    await api.vget(vid, "/vin", token=None)  # errors are delayed too
    assert time.perf_counter() - started >= 0.045


async def test_server_errors_and_determinism(session: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        async with Emulator(vehicles=1, faults=Faults(seed=seed, server_error_rate=0.5)) as emu:
            api = Api(emu, session)
            return [(await api.vget(emu.fleet.ids[0], "/vin")).status for _ in range(20)]

    first, again, other = await statuses(3), await statuses(3), await statuses(4)
    assert first == again
    assert first != other
    assert set(first) == {200, 500}


async def test_server_error_rate_body(api: Api, emu: Emulator) -> None:
    emu.faults.server_error_rate = 1.0
    emu.fleet.vehicles[0].is_locked = False
    reply = await api.post(api.vpath(emu.fleet.ids[0], "/security"), {"action": "LOCK"})
    assert_error(reply, 500, "SERVER", "INTERNAL")
    assert emu.fleet.vehicles[0].is_locked is False  # the endpoint did not run
    # Only the Vehicle API is affected.
    emu.management_token = None
    auth = {"Authorization": "Basic ZGVmYXVsdDphbXQ="}
    ok = await api.get("/v2.0/management/connections", token=None, headers=auth)
    assert ok.status == 200


async def test_drop(api: Api, emu: Emulator) -> None:
    emu.faults.drop_rate = 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.vget(emu.fleet.ids[0], "/vin")
    emu.faults.drop_rate = 0.0
    assert (await api.vget(emu.fleet.ids[0], "/vin")).status == 200


async def test_slow(api: Api, emu: Emulator) -> None:
    emu.faults = Faults(slow_rate=1.0, slow_seconds=30.0)
    with pytest.raises(asyncio.TimeoutError):
        await api.session.get(
            api.emu.url + api.vpath(emu.fleet.ids[0], "/vin"),
            headers={"Authorization": "Bearer t"},
            timeout=aiohttp.ClientTimeout(total=0.3),
        )
    emu.faults.slow_rate = 0.0
    emu.inject(fault="slow", seconds=0.2, path="/vin")
    started = time.perf_counter()
    reply = await api.vget(emu.fleet.ids[0], "/vin")
    assert reply.status == 200
    assert reply.body == {"vin": emu.fleet.vehicles[0].vin}
    assert time.perf_counter() - started >= 0.19


async def test_malformed(api: Api, emu: Emulator) -> None:
    emu.faults.malformed_rate = 1.0
    vehicle = emu.fleet.vehicles[0]
    vehicle.is_locked = True
    reply = await api.post(api.vpath(vehicle.id, "/security"), {"action": "UNLOCK"})
    assert reply.status == 200
    assert reply.body is None
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.raw.startswith(b"{")
    assert not reply.raw.endswith(b"}")
    assert vehicle.is_locked is False  # served, then mangled
    batch = await api.batch(vehicle.id, ["/odometer"])
    assert batch.status == 200
    assert batch.body is None


async def test_asleep_and_unreachable(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    emu.faults.asleep.add(vehicle.id)
    assert_error(await api.vget(vehicle.id, "/odometer"), 409, "VEHICLE_STATE", "ASLEEP")
    assert_error(
        await api.post(api.vpath(vehicle.id, "/security"), {"action": "LOCK"}),
        409,
        "VEHICLE_STATE",
        "ASLEEP",
    )
    assert (await api.vget(vehicle.id, "/vin")).status == 200
    assert (await api.vget(emu.fleet.ids[1], "/odometer")).status == 200
    emu.faults.asleep.discard(vehicle.id)
    emu.faults.unreachable.add(vehicle.id)
    assert_error(await api.vget(vehicle.id, "/location"), 409, "VEHICLE_STATE", "UNREACHABLE")


async def test_inject_matching_and_counts(api: Api, emu: Emulator) -> None:
    one, two = emu.fleet.ids[0], emu.fleet.ids[1]
    emu.inject(
        status=503, type="SERVER", code="INTERNAL", times=2, path="odometer/", vehicle_id=one
    )
    assert (await api.vget(two, "/odometer")).status == 200
    assert (await api.vget(one, "/location")).status == 200
    assert (await api.vget(one, "/odometer")).status == 503
    assert (await api.vget(one, "/odometer")).status == 503
    assert (await api.vget(one, "/odometer")).status == 200

    emu.inject(type="RATE_LIMIT", code="VEHICLE", retry_after=42, path="/")
    limited = await api.vget(one, "/")
    assert_error(limited, 429, "RATE_LIMIT", "VEHICLE")
    assert limited.headers["Retry-After"] == "42"

    emu.inject(times=None, path="/user")
    for _ in range(3):
        assert (await api.get("/v2.0/user")).status == 500
    emu.clear_injections()
    assert (await api.get("/v2.0/user")).status == 200

    emu.inject(status=500, path="/oauth/token")
    reply = await api.call("POST", "/oauth/token", token=None)
    assert reply.status == 500

    emu.inject(fault="drop")
    # A POST, because aiohttp retries an idempotent request once on a dropped connection.
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.post(api.vpath(one, "/security"), {"action": "LOCK"})
    emu.inject(fault="malformed", path="/vehicles")
    assert (await api.get("/v2.0/vehicles")).body is None
    assert (await api.get("/v2.0/vehicles")).body is not None

    with pytest.raises(ValueError, match="times"):
        emu.inject(times=0)
    with pytest.raises(ValueError, match="batch"):
        emu.inject(fault="drop", in_batch=True)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        Faults(drop_rate=1.5)
    faults = Faults()
    with pytest.raises(ValueError, match="server_error_rate"):
        faults.server_error_rate = -0.1


async def test_reassigning_faults_restarts_the_sequence(api: Api, emu: Emulator) -> None:
    async def run() -> list[int]:
        emu.faults = Faults(seed=11, server_error_rate=0.5)
        return [(await api.vget(emu.fleet.ids[0], "/vin")).status for _ in range(12)]

    assert await run() == await run()
