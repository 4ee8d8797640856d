"""The fleet poller against the emulator: faults, rate limits, hangs, a changing fleet, stopping.

Intervals are short and rounds few; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from poller_support import (
    HANG_GUARD,
    assert_every_round,
    by_vehicle,
    collect,
    make_client,
    vehicles,
)
from support import assert_no_leftover_tasks

from smartcar_async import (
    APITimeoutError,
    BatchFlushed,
    Client,
    RateLimitError,
    ReadName,
    ResponseReceived,
    VehicleStateError,
)
from smartcar_async._poller import READ_NAMES, FleetPoller, PollResult, shard_of
from smartcar_async.testing import Emulator, Faults

READS: tuple[ReadName, ...] = ("odometer", "location", "tire_pressure")


async def test_every_round_accounts_for_every_vehicle_despite_faults(
    emu: Emulator, client: Client
) -> None:
    ids = emu.fleet.ids
    asleep, unreachable = ids[0], ids[1]
    emu.faults = Faults(asleep={asleep}, unreachable={unreachable})
    async with FleetPoller(
        reads=READS, interval=0.3, rounds=3, backoff=10.0, vehicles=vehicles(client, ids)
    ) as poller:
        results = await collect(poller)

    assert_every_round(results, ids, 3)
    grouped = by_vehicle(results)
    for vid in (asleep, unreachable):
        first, *later = sorted(grouped[vid], key=lambda r: r.round)
        # Round 1 meets the vehicle-state error; the back-off covers the rest.
        assert set(first.errors) == set(READS)
        assert all(isinstance(e, VehicleStateError) for e in first.errors.values())
        assert first.backoff == 10.0
        assert not first.ok
        assert [r.skipped for r in later] == ["backoff", "backoff"]
        assert all(not r.values and not r.errors and r.backoff > 0 for r in later)
    for vid in ids[2:]:
        for result in grouped[vid]:
            # A healthy vehicle is only ever read, never held back.
            assert result.skipped in (None, "late")
            if result.skipped is None:
                assert result.ok
                assert list(result.values) == list(READS)
                assert set(result.timings) == set(READS)
                assert result.values["odometer"].distance > 0
    # All reads of one poll went out as one batch.
    assert client.stats.sub_requests == client.stats.logical_reads
    assert client.stats.batches == client.stats.http_requests


async def test_a_rate_limited_vehicle_backs_off_alone(emu: Emulator, client: Client) -> None:
    ids = emu.fleet.ids
    limited = ids[2]
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", vehicle_id=limited, retry_after=30)
    async with FleetPoller(reads=READS, interval=0.3, rounds=3) as poller:
        poller.add(*vehicles(client, ids))
        results = await collect(poller)

    assert_every_round(results, ids, 3)
    grouped = by_vehicle(results)
    first, *later = sorted(grouped[limited], key=lambda r: r.round)
    assert all(isinstance(e, RateLimitError) for e in first.errors.values())
    assert first.backoff == 30.0  # the server's Retry-After, beyond our own back-off
    assert [r.skipped for r in later] == ["backoff", "backoff"]
    others = [r for vid in ids if vid != limited for r in grouped[vid]]
    assert all(r.ok or r.skipped == "late" for r in others)
    # Only one request ever went out for the limited vehicle.
    assert sum(1 for r in emu.requests if limited in r.path) == 1


async def test_a_hung_vehicle_times_out_without_holding_up_the_rest(
    emu: Emulator, client: Client
) -> None:
    ids = emu.fleet.ids
    hung = ids[3]
    emu.inject(fault="slow", seconds=60, vehicle_id=hung, times=None)
    async with FleetPoller(
        reads=READS, interval=0.3, rounds=2, timeout=0.2, vehicles=vehicles(client, ids)
    ) as poller:
        results = await collect(poller)

    assert_every_round(results, ids, 2)
    for result in by_vehicle(results)[hung]:
        if result.skipped is None:
            assert set(result.errors) == set(READS)
            assert all(isinstance(e, APITimeoutError) for e in result.errors.values())
            assert not result.timings  # no read answered, so none was timed
    assert all(r.ok or r.skipped == "late" for r in results if r.vehicle_id != hung)


async def test_leaving_the_block_stops_cleanly_with_a_read_in_flight(emu: Emulator) -> None:
    ids = emu.fleet.ids
    hung = ids[0]
    emu.inject(fault="slow", seconds=60, vehicle_id=hung, times=None)
    async with make_client(emu.url) as client:
        poller = FleetPoller(reads=READS, interval=0.2, vehicles=vehicles(client, ids))
        rounds_seen: dict[str, set[int]] = {vid: set() for vid in ids}
        other_consumer_done = anyio.Event()

        async def other_consumer() -> None:
            # A second consumer in another task must end when the poller stops.
            async for result in poller.results():
                rounds_seen[result.vehicle_id].add(result.round)
            other_consumer_done.set()

        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                async with poller:
                    tg.start_soon(other_consumer)
                    async for result in poller.results():
                        rounds_seen[result.vehicle_id].add(result.round)
                        healthy = [rounds_seen[vid] for vid in ids if vid != hung]
                        if all({1, 2, 3} <= seen for seen in healthy):
                            break
                    # The hung vehicle stalls nobody: three rounds went by meanwhile.
                    assert not rounds_seen[hung]
                    assert poller.running
                assert not poller.running
                await other_consumer_done.wait()
        with pytest.raises(RuntimeError, match="closed"):
            await poller.__aenter__()
        with pytest.raises(RuntimeError):
            poller.add(*vehicles(client, ids[:1]))
        assert [r async for r in poller.results()] == []
    await assert_no_leftover_tasks()


async def test_concurrency_is_bounded(emu: Emulator) -> None:
    emu.latency = 0.03
    inflight = peak = 0

    def flushed(event: BatchFlushed) -> None:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)

    def answered(event: ResponseReceived) -> None:
        nonlocal inflight
        inflight -= 1

    client = make_client(emu.url, on_batch=[flushed], on_response=[answered])
    async with (
        client,
        FleetPoller(
            reads=READS,
            interval=0.5,
            jitter=0.0,
            rounds=2,
            max_concurrent_vehicles=2,
            vehicles=vehicles(client, emu.fleet.ids),
        ) as poller,
    ):
        results = await collect(poller)
    assert_every_round(results, emu.fleet.ids, 2)
    # Six vehicles due at the same instant, two at a time.
    assert peak == 2


async def test_vehicles_come_and_go_while_it_runs(emu: Emulator, client: Client) -> None:
    ids = emu.fleet.ids
    first, later, leaving = ids[:4], ids[4:], ids[0]
    seen: dict[str, list[int]] = {}
    async with FleetPoller(reads=("odometer",), interval=0.15) as poller:
        assert poller.add(*vehicles(client, first)) == 4
        changed_in: int | None = None
        with anyio.fail_after(HANG_GUARD):
            async for result in poller.results():
                seen.setdefault(result.vehicle_id, []).append(result.round)
                if changed_in is None and result.round == 2:
                    changed_in = result.round
                    poller.add(*vehicles(client, later))
                    assert poller.remove(leaving, "no-such-vehicle") == 1
                    # Adding a known id again replaces its handle: no second schedule.
                    assert poller.add(*vehicles(client, ids[1:2], unit_system="imperial")) == 1
                if all(len(seen.get(vid, ())) >= 3 for vid in later):
                    break
        assert leaving not in poller
        assert len(poller) == 5
    assert changed_in == 2
    assert max(seen[leaving]) <= 2
    for vid in ids[1:]:
        rounds = seen[vid]
        assert rounds == list(range(rounds[0], rounds[0] + len(rounds)))  # no gap, no repeat
    for vid in later:
        assert seen[vid][0] == 2  # joined the round in progress


def test_shards_are_stable_and_split_the_fleet() -> None:
    # Fixed values: the same in every process, machine and Python version.
    assert [shard_of(f"vehicle-{n}", 4) for n in range(8)] == [1, 1, 3, 1, 3, 1, 3, 0]
    assert FleetPoller.shard_of("vehicle-0", 4) == 1
    ids = [f"vehicle-{n}" for n in range(200)]
    sizes = [sum(1 for vid in ids if shard_of(vid, 3) == i) for i in range(3)]
    assert sum(sizes) == 200
    assert min(sizes) > 40  # roughly even


async def test_shards_take_disjoint_parts_of_the_fleet(emu: Emulator, client: Client) -> None:
    handles = vehicles(client, emu.fleet.ids)
    taken: list[set[str]] = []
    for index in range(3):
        poller = FleetPoller(reads=READS, interval=1.0, shard=(index, 3))
        assert poller.add(*handles) == len(poller)
        taken.append(set(poller.vehicle_ids))
    assert set().union(*taken) == set(emu.fleet.ids)
    assert sum(map(len, taken)) == len(emu.fleet.ids)


async def test_two_pollers_share_batches_and_dedupe(emu: Emulator, client: Client) -> None:
    emu.latency = 0.05
    handles = vehicles(client, emu.fleet.ids)
    async with (
        FleetPoller(reads=READS, interval=0.3, rounds=2, vehicles=handles) as telemetry,
        FleetPoller(reads=("location",), interval=0.3, rounds=2, vehicles=handles) as tracker,
        anyio.create_task_group() as tg,
    ):
        tracked: list[PollResult] = []

        async def track() -> None:
            tracked.extend(await collect(tracker))

        tg.start_soon(track)
        results = await collect(telemetry)
    n = len(handles) * 2
    assert_every_round(results, emu.fleet.ids, 2)
    assert_every_round(tracked, emu.fleet.ids, 2)
    stats = client.stats
    # Deterministic jitter: both pollers read each vehicle at the same moment,
    # so the tracker's location joins the telemetry batch every time.
    assert stats.dedupe_hits == n
    assert stats.batches == n
    assert stats.logical_reads == n * (len(READS) + 1)


async def test_run_hands_results_to_sync_and_async_callbacks(emu: Emulator, client: Client) -> None:
    handles = vehicles(client, emu.fleet.ids[:2], unit_system="imperial")
    got: list[PollResult] = []

    async def store(result: PollResult) -> None:
        await anyio.lowlevel.checkpoint()
        got.append(result)

    async with FleetPoller(reads=("odometer",), interval=0.2, rounds=2, vehicles=handles) as p:
        await p.run(store)
    assert_every_round(got, emu.fleet.ids[:2], 2)
    assert got[0].values["odometer"].meta.unit_system == "imperial"
    line = json.loads(json.dumps(got[0].to_dict()))
    assert line["values"]["odometer"]["distance"] > 0
    assert line["round"] in (1, 2)

    stopped: list[PollResult] = []

    def first_only(result: PollResult) -> None:
        stopped.append(result)
        poller.stop()

    async with FleetPoller(reads=("odometer",), interval=0.2, vehicles=handles) as poller:
        await poller.run(first_only)  # ends, although rounds are unlimited
    assert 1 <= len(stopped) <= 2


async def test_a_slow_consumer_holds_polling_back(emu: Emulator, client: Client) -> None:
    async with FleetPoller(
        reads=("odometer",),
        interval=0.02,
        jitter=0.0,
        max_concurrent_vehicles=1,
        max_buffered_results=1,
        vehicles=vehicles(client, emu.fleet.ids),
    ) as poller:
        await anyio.sleep(0.3)  # not reading results: dozens of rounds are due meanwhile
        # One result buffered, one poll waiting to hand its result over.
        assert client.stats.http_requests <= 2
        results = poller.results()
        with anyio.fail_after(HANG_GUARD):
            for _ in range(10):
                await results.__anext__()


async def test_errors_in_the_block_propagate_as_they_are(emu: Emulator, client: Client) -> None:
    with pytest.raises(KeyError):
        async with FleetPoller(reads=READS, interval=1.0, vehicles=vehicles(client, emu.fleet.ids)):
            raise KeyError("boom")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reads": ("odometer", "speed")}, ValueError, "unknown read 'speed'; valid reads: "),
        ({"reads": ()}, ValueError, "at least one read"),
        ({"reads": "odometer"}, TypeError, "iterable of read names"),
        ({"reads": ("lock",)}, ValueError, "unknown read"),
        ({"interval": 0}, ValueError, "interval"),
        ({"jitter": 1.5}, ValueError, "jitter"),
        ({"rounds": 0}, ValueError, "rounds"),
        ({"max_concurrent_vehicles": 0}, ValueError, "max_concurrent_vehicles"),
        ({"shard": (3, 3)}, ValueError, "shard index"),
        ({"shard": (0,)}, TypeError, "pair"),
        ({"timeout": -1.0}, ValueError, "timeout"),
    ],
)
def test_arguments_are_checked_up_front(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"reads": READS, "interval": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        FleetPoller(**arguments)


def test_valid_reads_are_the_vehicle_read_methods() -> None:
    assert {"odometer", "location", "lock_status", "get_charge_limit"} <= set(READ_NAMES)
    assert not {"lock", "unlock", "batch", "request"} & set(READ_NAMES)


async def test_add_takes_vehicle_handles_only() -> None:
    poller = FleetPoller(reads=READS, interval=1.0)
    with pytest.raises(TypeError, match="Vehicle handles"):
        poller.add("vehicle-id")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="Enter the poller"):
        poller.results()


async def test_a_vehicle_removed_and_added_back_mid_round_is_polled_once(
    emu: Emulator, client: Client
) -> None:
    # A token rotation: remove(id) then add(new handle) while the round is in
    # progress, for vehicles already polled, in flight and still pending.
    ids = emu.fleet.ids
    seen: dict[str, list[int]] = {}
    rotated = False
    async with FleetPoller(reads=("odometer",), interval=0.4, jitter=0.5, rounds=2) as poller:
        poller.add(*vehicles(client, ids))
        with anyio.fail_after(HANG_GUARD):
            async for result in poller.results():
                seen.setdefault(result.vehicle_id, []).append(result.round)
                if not rotated:
                    rotated = True
                    assert poller.remove(*ids) == len(ids)
                    assert poller.add(*vehicles(client, ids, unit_system="imperial")) == len(ids)
    assert rotated
    assert seen == {vid: [1, 2] for vid in ids}
    odometer_gets = [r for r in emu.requests if r.path.endswith("/odometer")]
    assert len(odometer_gets) == 2 * len(ids)
