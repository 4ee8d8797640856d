"""The shared application bucket (GCRA with reservation) and the gates, on Redis' clock.

Exact figures use a frozen Redis clock (the scripts' test hook); the rest runs on
Redis' real TIME.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis_support import FROZEN, RedisServer, freeze, require_redis_py

require_redis_py()

from smartcar_async import RequestBudget  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402

# 3 requests, one more every 20 s: small enough to count by hand.
SMALL = RequestBudget(capacity=3, refill_per_minute=3)
INTERVAL = 20.0


@pytest.fixture
async def small(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisState]:
    state = RedisState(redis_server.url, namespace=namespace, budget=SMALL)
    freeze(state, FROZEN)
    yield state
    await state.aclose()


async def test_a_full_bucket_grants_its_capacity_then_waits_exactly(small: RedisState) -> None:
    assert [await small.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    # Empty: each later request is reserved one interval after the one before.
    assert [await small.acquire() for _ in range(3)] == [INTERVAL, 2 * INTERVAL, 3 * INTERVAL]
    freeze(small, FROZEN + 1.5)
    assert await small.acquire() == 4 * INTERVAL - 1.5


async def test_the_bucket_refills_at_its_rate_and_no_further(small: RedisState) -> None:
    assert await small.acquire(3) == 0.0
    assert await small.available() == 0.0
    freeze(small, FROZEN + INTERVAL / 2)
    assert await small.available() == 0.5
    assert await small.acquire() == INTERVAL / 2
    freeze(small, FROZEN + 10 * INTERVAL)  # long idle: full, not more than full
    assert await small.available() == 3.0
    assert await small.acquire(3) == 0.0
    assert await small.acquire() == INTERVAL


async def test_a_batch_costs_one_request_per_path(small: RedisState) -> None:
    assert await small.acquire(2) == 0.0
    assert await small.acquire(2) == INTERVAL  # one left: the second path waits one refill
    assert await small.acquire(3) == 4 * INTERVAL


async def test_a_cost_above_the_capacity_is_refused_before_any_io(small: RedisState) -> None:
    with pytest.raises(ValueError, match=r"exceeds the bucket's capacity \(3\)"):
        await small.acquire(4)
    with pytest.raises(ValueError, match="capacity"):
        await small.admit(4, "v")
    assert await small.available() == 3.0  # nothing taken


async def test_first_come_first_served_across_clients(
    redis_server: RedisServer, namespace: str
) -> None:
    clients = [RedisState(redis_server.url, namespace=namespace, budget=SMALL) for _ in range(4)]
    for client in clients:
        freeze(client, FROZEN)
    try:
        waits = [await clients[n % 4].acquire() for n in range(12)]
        # In call order, whichever client called: each caller strictly after the one before.
        assert waits == [0.0] * 3 + [INTERVAL * k for k in range(1, 10)]
        # Concurrent callers get distinct slots: no two share a reservation.
        more = await asyncio.gather(*(c.acquire() for c in clients for _ in range(5)))
        assert sorted(more) == [INTERVAL * k for k in range(10, 30)]
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def test_waits_follow_redis_time_not_the_workers(
    redis_server: RedisServer, namespace: str
) -> None:
    budget = RequestBudget(capacity=2, refill_per_minute=600)  # 0.1 s interval
    async with RedisState(redis_server.url, namespace=namespace, budget=budget) as state:
        before = await state.now()
        assert abs(before - time.time()) < 5  # the same machine: the same clock, roughly
        assert [await state.acquire() for _ in range(2)] == [0.0, 0.0]
        wait = await state.acquire()
        assert 0.05 < wait <= 0.1
        await asyncio.sleep(0.35)  # 3.5 intervals of real time refill it
        assert await state.available() == pytest.approx(2.0)


async def test_the_redis_clock_never_goes_back(redis_server: RedisServer, namespace: str) -> None:
    async with RedisState(redis_server.url, namespace=namespace) as state:
        first = await state.now()
        # As if Redis' host clock had been 100 s ahead and then stepped back.
        ahead = round((first + 100) * 1_000_000)
        await state._client.set(state._key("clock"), str(ahead))
        assert await state.now() == ahead / 1_000_000
        assert await state.blocked_for() == 0.0
        await state.block_app(10)
        # Measured on the high-water clock: closed for 10 s from there.
        assert await state.blocked_for() == pytest.approx(10.0, abs=0.001)
        assert await state.now() == ahead / 1_000_000


# --- gates -----------------------------------------------------------------------------------


async def test_gates_are_set_if_later(small: RedisState) -> None:
    assert await small.block_vehicle("v1", 30, "RATE_LIMIT:VEHICLE") is True
    assert await small.block_vehicle("v1", 10, "RATE_LIMIT:VEHICLE") is False  # shorter: kept
    assert await small.blocked_for("v1") == 30.0
    assert await small.blocked_for("v2") == 0.0
    assert await small.blocked_for() == 0.0
    freeze(small, FROZEN + 25)
    assert await small.blocked_for("v1") == 5.0
    assert await small.block_vehicle("v1", 10, "RATE_LIMIT:VEHICLE") is True  # later now
    assert await small.blocked_for("v1") == 10.0
    freeze(small, FROZEN + 35)
    assert await small.blocked_for("v1") == 0.0  # at its end exactly: open
    assert await small.block_vehicle("v1", 0, "RATE_LIMIT:VEHICLE") is False


async def test_the_app_gate_closes_every_vehicle(small: RedisState) -> None:
    assert await small.block_app(60) is True
    await small.block_vehicle("v1", 90, "RATE_LIMIT:VEHICLE")
    assert await small.blocked_for("v2") == 60.0
    assert await small.blocked_for("v1") == 90.0  # the later of the two
    fields = await small._client.hgetall(small._key("gate", "app"))
    assert fields[b"code"] == b"RATE_LIMIT:SMARTCAR_API"


async def test_admit_reserves_only_through_open_gates(small: RedisState) -> None:
    await small.block_vehicle("v1", 15, "RATE_LIMIT:VEHICLE")
    admission = await small.admit(2, "v1")
    assert (admission.wait, admission.reason, admission.reserved) == (15.0, "vehicle", False)
    assert await small.available() == 3.0  # nothing reserved while gated
    admission = await small.admit(2, "v2")
    assert (admission.wait, admission.reason) == (0.0, "bucket")
    assert admission.reserved
    assert (await small.admit(2, "v2")).wait == INTERVAL
    await small.block_app(100)
    assert (await small.admit(1, "v1")).reason == "app"
    assert (await small.admit(1)).wait == 100.0
    freeze(small, FROZEN + 100)
    admission = await small.admit(1, "v1")
    assert admission.reserved


async def test_gate_keys_expire_at_the_gates_end(redis_server: RedisServer, namespace: str) -> None:
    async with RedisState(redis_server.url, namespace=namespace) as state:
        await state.block_vehicle("v", 0.2, "RATE_LIMIT:VEHICLE")
        await state.block_app(0.2)
        key = state._key("gate", "vehicle", "v")
        assert 0 < await state._client.pttl(key) <= 201  # whole ms, rounded up
        assert 0 < await state.blocked_for("v") <= 0.2
        await asyncio.sleep(0.3)
        assert await state.blocked_for("v") == 0.0
        assert not await state._client.exists(key, state._key("gate", "app"))
