"""Client(state=RedisState): the shared application bucket and gates, and degraded mode.

Real redis-server (the fixtures of conftest.py), the emulator in-process, real
HTTP over loopback. What the emulator enforces is its own bucket
(``RateLimits``); what the clients share is the RedisState's. The shared
bucket is given one request less than the emulator's, so that the two clocks
starting a few milliseconds apart cannot turn an exact budget into a 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis_support import RedisServer, require_redis_py
from support import wait_until

require_redis_py()

import smartcar_async as sc  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402
from smartcar_async.testing import Emulator, RateLimits  # noqa: E402

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-REDIS-POLICY-7a1"
CAPACITY = 20
REFILL = 600.0  # per minute: one request every 0.1 s
SHARED = sc.RequestBudget(capacity=CAPACITY - 2, refill_per_minute=REFILL)
#: The emulator refills a fifth faster than the shared bucket: a request the bucket granted
#: on time may still arrive late behind others on a loaded machine, and must not be a 429.
#: The bound the clients keep is asserted from the shared bucket's own rate.
EMU_REFILL = REFILL * 1.2


class Scopes(sc.ClientHooks):
    """429s by scope, across the clients given this object."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {"vehicle": 0, "application": 0}

    def on_rate_limit(self, event: sc.RateLimited, /) -> None:
        self.seen[event.scope] += 1


def client(emu: Emulator, **kwargs: Any) -> sc.Client:
    options: dict[str, Any] = {
        "api_origin": emu.url,
        "timeout": 10.0,
        "close_timeout": 5.0,
        "max_retries": 0,
        "batch_window": 0,
    }
    return sc.Client(**{**options, **kwargs})


def requests_for(emu: Emulator, vehicle_id: str) -> int:
    return sum(1 for r in emu.requests if r.path.startswith(f"/v2.0/vehicles/{vehicle_id}/"))


def vehicle_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests if r.path.startswith("/v2.0/vehicles/"))


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=20, seed=3) as emulator:
        yield emulator


async def hammer(clients: list[sc.Client], ids: list[str], seconds: float) -> tuple[int, int]:
    """Ten readers per client, each on vehicles of its own (one path: cost 1), for
    ``seconds``; (reads delivered, reads failed)."""
    deadline = time.monotonic() + seconds
    delivered = failed = 0

    async def reader(c: sc.Client, vid: str) -> None:
        nonlocal delivered, failed
        vehicle = c.vehicle(vid, access_token=TOKEN)
        while time.monotonic() < deadline:
            try:
                await vehicle.odometer()
            except sc.RateLimitError as exc:
                failed += 1
                # As a paced worker would: wait out the gate, not spin on fail-fast.
                await asyncio.sleep(
                    min(exc.retry_after or 0.1, max(0.0, deadline - time.monotonic()))
                )
            else:
                delivered += 1

    await asyncio.gather(
        *(reader(c, ids[(i * 10 + j) % len(ids)]) for i, c in enumerate(clients) for j in range(10))
    )
    return delivered, failed


async def test_clients_sharing_a_state_stay_inside_the_application_bucket(
    emu: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    emu.rate_limits = RateLimits(app_capacity=CAPACITY, app_refill_per_minute=EMU_REFILL)
    scopes = Scopes()
    async with (
        RedisState(redis_server.url, namespace=namespace, budget=SHARED) as state,
        client(emu, state=state, hooks=scopes) as first,
        client(emu, state=state, hooks=scopes) as second,
    ):
        started = time.monotonic()
        delivered, failed = await hammer([first, second], emu.fleet.ids, 2.0)
        elapsed = time.monotonic() - started
        stats = [first.stats, second.stats]
    assert scopes.seen["application"] == 0
    assert failed == 0
    assert sum(s.shared_state_unavailable for s in stats) == 0
    sent = vehicle_requests(emu)
    assert sent == delivered == sum(s.http_requests for s in stats)
    # The emulator's budget over the run bounds what went out; the shared one
    # (a request less) is what the clients could use: close to all of it.
    assert sent <= CAPACITY + REFILL / 60 * elapsed + 1
    # (Reservations made before the deadline are sent after it: elapsed covers them.)
    allowed = SHARED.capacity + REFILL / 60 * elapsed
    assert sent >= 0.9 * allowed, (sent, allowed)


async def test_clients_pacing_themselves_alone_collect_application_429s(emu: Emulator) -> None:
    emu.rate_limits = RateLimits(app_capacity=CAPACITY, app_refill_per_minute=REFILL)
    scopes = Scopes()
    own = sc.RequestBudget(capacity=CAPACITY, refill_per_minute=REFILL)
    async with (
        client(emu, request_budget=own, hooks=scopes) as first,
        client(emu, request_budget=own, hooks=scopes) as second,
    ):
        _delivered, failed = await hammer([first, second], emu.fleet.ids, 1.0)
    # Each spends the whole budget: together twice it.
    assert scopes.seen["application"] > 0
    assert failed > 0


async def test_a_vehicle_429_in_one_client_gates_that_vehicle_in_another(
    emu: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    emu.rate_limits = RateLimits(vehicle_requests=1, vehicle_window=3.0)
    gated, other = emu.fleet.ids[:2]
    async with (
        RedisState(redis_server.url, namespace=namespace) as state,
        client(emu, state=state) as a,
        client(emu, state=state, max_retry_after=0.5) as b,
        client(emu, state=state, max_retry_after=10.0) as patient,
    ):
        await a.vehicle(gated, access_token=TOKEN).odometer()
        with pytest.raises(sc.RateLimitError) as caught:
            await a.vehicle(gated, access_token=TOKEN).odometer()
        assert caught.value.code == "VEHICLE"
        retry_after = caught.value.retry_after
        assert retry_after is not None
        assert retry_after >= 1
        closed_at = time.monotonic()
        # The gate is published in the background: it lands within moments.
        for _ in range(200):
            if await state.blocked_for(gated) > 0:
                break
            await asyncio.sleep(0.01)
        sent = requests_for(emu, gated)
        with pytest.raises(sc.RateLimitError) as in_b:
            await b.vehicle(gated, access_token=TOKEN).odometer()
        assert in_b.value.code == "VEHICLE"
        assert in_b.value.retry_after is not None
        assert in_b.value.retry_after > 0.5
        # Copied into b's own gates: the next read fails fast with no round trip.
        assert b._policy.fail_fast(gated) is not None
        assert requests_for(emu, gated) == sent  # nothing from b to that vehicle
        # Other vehicles are not gated.
        await b.vehicle(other, access_token=TOKEN).odometer()
        # A client that can wait does, and its request goes once the gate opens.
        await patient.vehicle(gated, access_token=TOKEN).odometer()
        assert time.monotonic() - closed_at >= retry_after - 0.2
        assert requests_for(emu, gated) == sent + 1


async def test_an_application_429_in_one_client_gates_every_client(
    emu: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    emu.rate_limits = RateLimits(app_capacity=1, app_refill_per_minute=6.0)  # 10 s per request
    ids = emu.fleet.ids
    async with (
        RedisState(redis_server.url, namespace=namespace) as state,
        client(emu, state=state) as a,
        client(emu, state=state, max_retry_after=2.0) as b,
    ):
        await a.vehicle(ids[0], access_token=TOKEN).odometer()
        with pytest.raises(sc.RateLimitError) as caught:
            await a.vehicle(ids[1], access_token=TOKEN).odometer()
        assert caught.value.code == "SMARTCAR_API"
        for _ in range(200):
            if await state.blocked_for() > 0:
                break
            await asyncio.sleep(0.01)
        assert await state.blocked_for(ids[5]) > 2.0
        sent = vehicle_requests(emu)
        for vid in ids[2:5]:
            with pytest.raises(sc.RateLimitError) as in_b:
                await b.vehicle(vid, access_token=TOKEN).odometer()
            assert in_b.value.code == "SMARTCAR_API"
        assert vehicle_requests(emu) == sent


async def test_redis_killed_and_restarted_reads_carry_on_degraded(
    emu: Emulator, own_redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smartcar_async")
    server = own_redis_server
    vid = emu.fleet.ids[0]
    async with (
        RedisState(server.url, namespace=namespace) as state,
        client(emu, state=state, request_budget=sc.RequestBudget()) as c,
    ):
        c._policy.probe_interval = 0.2
        vehicle = c.vehicle(vid, access_token=TOKEN)
        await vehicle.odometer()
        assert c.stats.shared_state_unavailable == 0
        server.stop()
        for _ in range(5):
            await vehicle.odometer()  # degraded: local gates and pacing
        assert c.stats.shared_state_unavailable == 5
        down = [r for r in caplog.records if "shared state unreachable" in r.getMessage()]
        assert len(down) == 1
        assert down[0].levelno == logging.WARNING
        for _ in range(3):  # probes fail while it is down: still one warning
            await asyncio.sleep(0.25)
            await vehicle.odometer()
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
        server.start()

        def recovered() -> bool:
            return any("reachable again" in r.getMessage() for r in caplog.records)

        async def until_recovered() -> None:
            while not recovered():
                await vehicle.odometer()
                await asyncio.sleep(0.05)

        await asyncio.wait_for(until_recovered(), 10)
        counted = c.stats.shared_state_unavailable
        await vehicle.odometer()
        await vehicle.location()
        # The shared bucket is in use again (the restarted Redis began empty: full).
        assert c.stats.shared_state_unavailable == counted
        assert await state.available() < 120
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 1
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]


async def test_a_429_published_while_redis_is_down_keeps_the_local_gate(
    emu: Emulator, own_redis_server: RedisServer, namespace: str
) -> None:
    emu.rate_limits = RateLimits(vehicle_requests=1, vehicle_window=3.0)
    vid = emu.fleet.ids[0]
    async with (
        RedisState(own_redis_server.url, namespace=namespace) as state,
        client(emu, state=state, max_retry_after=0.5) as c,
    ):
        vehicle = c.vehicle(vid, access_token=TOKEN)
        await vehicle.odometer()
        own_redis_server.stop()
        with pytest.raises(sc.RateLimitError):
            await vehicle.odometer()
        await wait_until(lambda: not c._policy._background, "the publication", within=10)
        with pytest.raises(sc.RateLimitError):
            await vehicle.odometer()  # fails fast on the local gate
        assert requests_for(emu, vid) == 2
        assert c.stats.shared_state_unavailable >= 1


async def test_a_client_with_a_plain_state_store_or_none_has_no_shared_limits(
    emu: Emulator, tmp_path: Any
) -> None:
    async with sc.SQLiteState(tmp_path / "s.db") as store, client(emu, state=store) as c:
        assert c._policy.shared is None
        await c.vehicle(emu.fleet.ids[0], access_token=TOKEN).odometer()
    with pytest.raises(TypeError, match="StateStore"):
        sc.Client(state="redis://localhost")  # type: ignore[arg-type]


async def test_a_batch_costs_one_token_of_the_shared_bucket(
    emu: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    # The application bucket counts HTTP requests, not the paths a batch carries.
    async with (
        RedisState(redis_server.url, namespace=namespace) as state,
        client(emu, state=state, batch_window=0.05) as c,
    ):
        vehicle = c.vehicle(emu.fleet.ids[0], access_token=TOKEN)
        before = await state.available()
        await asyncio.gather(vehicle.odometer(), vehicle.location(), vehicle.vin())
        assert c.stats.batches == 1
        assert c.stats.sub_requests == 3
        assert before - await state.available() == pytest.approx(1, abs=0.1)
