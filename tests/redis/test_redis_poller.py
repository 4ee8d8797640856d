"""FleetPoller on a shared schedule (RedisState): pollers share the fleet by leases.

Real redis-server, real emulator over loopback. Every poll of a vehicle is one
batch request (its reads coalesce), so the emulator's own request log says
which vehicle was polled how often.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest
from redis_support import RedisServer, require_redis_py

require_redis_py()

from smartcar_async import Client, ReadName  # noqa: E402
from smartcar_async._poller import FleetPoller, PollResult  # noqa: E402
from smartcar_async._shared_schedule import SharedSchedule  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402
from smartcar_async.testing import Emulator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "poller"))
from poller_support import assert_no_leftover_tasks, make_client, vehicles  # noqa: E402

READS: tuple[ReadName, ...] = ("odometer", "location")
GUARD = 40.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=40, seed=5, latency=0.01, max_recorded=100_000) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    async with make_client(emu.url) as c:
        yield c
    await assert_no_leftover_tasks()


def polls_per_vehicle(emu: Emulator) -> collections.Counter[str]:
    """Vehicle id -> batch requests the emulator received for it."""
    return collections.Counter(
        r.path.split("/")[3] for r in emu.requests if r.path.endswith("/batch")
    )


async def drain(poller: FleetPoller, into: list[PollResult], stop_after: int | None = None) -> None:
    async for result in poller.results():
        into.append(result)
        if stop_after is not None and len(into) >= stop_after:
            poller.stop()


def test_redis_state_is_a_shared_schedule() -> None:
    schedule: SharedSchedule = RedisState("redis://127.0.0.1:1/0")  # no I/O until used
    assert isinstance(schedule, SharedSchedule)


async def test_two_pollers_share_one_schedule(
    redis_server: RedisServer, namespace: str, emu: Emulator, client: Client
) -> None:
    ids = list(emu.fleet.ids)
    handles = vehicles(client, ids)
    results: dict[str, list[PollResult]] = {"a": [], "b": []}
    async with RedisState(redis_server.url, namespace=namespace) as state:
        options: dict[str, Any] = {
            "reads": READS, "interval": 0.5, "rounds": 3, "state": state, "lease": 5.0,
            "max_concurrent_vehicles": 8, "vehicles": handles,
        }  # fmt: skip
        with anyio.fail_after(GUARD):
            async with (
                FleetPoller(worker_id="a", **options) as a,
                FleetPoller(worker_id="b", **options) as b,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(drain, a, results["a"])
                tg.start_soon(drain, b, results["b"])
        assert await state.next_due() is None
        assert await state.remaining() == 0
    every = results["a"] + results["b"]
    seen = [(r.vehicle_id, r.round) for r in every]
    assert sorted(seen) == sorted((vid, n) for vid in ids for n in (1, 2, 3))
    assert all(r.ok for r in every)
    assert results["a"]
    assert results["b"]
    # Exactly three polls per vehicle reached the API, each one batch.
    assert polls_per_vehicle(emu) == dict.fromkeys(ids, 3)
    assert a.leases_lost == b.leases_lost == 0


async def test_a_stopped_poller_gives_its_vehicles_back(
    redis_server: RedisServer, namespace: str, emu: Emulator, client: Client
) -> None:
    ids = list(emu.fleet.ids)
    emu.latency = 0.2  # a poll in flight when A stops
    handles = vehicles(client, ids)
    got_a: list[PollResult] = []
    got_b: list[PollResult] = []
    async with RedisState(redis_server.url, namespace=namespace) as state:
        options: dict[str, Any] = {
            "reads": READS, "interval": 0.5, "rounds": 2, "state": state, "lease": 30.0,
        }  # fmt: skip
        with anyio.fail_after(GUARD):
            async with FleetPoller(vehicles=handles, worker_id="b", **options) as b:
                async with FleetPoller(vehicles=handles, worker_id="a", **options) as a:
                    await drain(a, got_a, stop_after=5)
                # A stopped mid-round holding leases (its lease is 30 s): it gave them back
                # as it left, so B finishes the fleet without waiting for them to expire.
                await drain(b, got_b)
    seen = collections.Counter((r.vehicle_id, r.round) for r in got_a + got_b)
    assert set(seen) == {(vid, n) for vid in ids for n in (1, 2)}
    assert all(count == 1 for count in seen.values())
    # A poll that A cancelled may have reached the API; nothing else was polled twice.
    counts = polls_per_vehicle(emu)
    assert all(counts[vid] in (2, 3) for vid in ids)
    assert a.leases_lost == 0


async def test_a_dead_workers_leases_expire_and_are_taken(
    redis_server: RedisServer, namespace: str, emu: Emulator, client: Client
) -> None:
    ids = list(emu.fleet.ids)
    handles = vehicles(client, ids)
    got: list[PollResult] = []
    async with RedisState(redis_server.url, namespace=namespace) as state:
        await state.load_schedule(ids, rounds=2)
        # A worker that claims ten vehicles and dies: nobody reschedules or releases them.
        ghost = await state.claim("ghost", max_n=10, lease=1.5)
        assert len(ghost.vehicles) == 10
        poller = FleetPoller(
            vehicles=handles, reads=READS, interval=0.5, rounds=2, state=state, lease=5.0
        )
        with anyio.fail_after(GUARD):
            async with poller:
                await drain(poller, got)
        assert await state.remaining() == 0
    seen = collections.Counter((r.vehicle_id, r.round) for r in got)
    assert set(seen) == {(vid, n) for vid in ids for n in (1, 2)}
    assert all(count == 1 for count in seen.values())
    assert polls_per_vehicle(emu) == dict.fromkeys(ids, 2)
    ghosts = {v.vehicle_id for v in ghost.vehicles}
    first = {r.vehicle_id: r.started_at for r in got if r.round == 1}
    # The ghost's vehicles came last: only once their leases expired.
    assert min(first[v] for v in ghosts) > max(first[v] for v in set(ids) - ghosts)


async def test_shared_schedule_refuses_a_shard_and_fixes_the_fleet(
    redis_server: RedisServer, namespace: str, emu: Emulator, client: Client
) -> None:
    handles = vehicles(client, list(emu.fleet.ids))
    async with RedisState(redis_server.url, namespace=namespace) as state:
        with pytest.raises(ValueError, match="shard"):
            FleetPoller(reads=READS, interval=1.0, state=state, shard=(0, 2))
        poller = FleetPoller(vehicles=handles[:2], reads=READS, interval=60.0, state=state)
        async with poller:
            assert poller.shared
            with pytest.raises(RuntimeError, match="fixed"):
                poller.add(handles[3])
            with pytest.raises(RuntimeError, match="fixed"):
                poller.remove(handles[0].vehicle_id)
            poller.add(handles[0])  # a known vehicle's new handle is fine


def ids_of(results: Iterable[PollResult]) -> set[str]:
    return {r.vehicle_id for r in results}
