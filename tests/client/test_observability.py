"""Hooks and counters, observed while talking to the emulator."""

from __future__ import annotations

import asyncio
import logging

import pytest
from support import NO_RETRY, TOKEN, make_client, wait_until

import smartcar_async as sc
from smartcar_async.testing import Emulator, SimulatedVehicle


async def test_on_batch_events(emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle) -> None:
    flushed: list[sc.BatchFlushed] = []
    async with make_client(emu.url, on_batch=[flushed.append], **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        await asyncio.gather(car.odometer(), car.odometer(), car.location(), car.odometer())
        await car.vin()
        await car.lock()  # writes do not flush a queue
        await client.vehicle(ice.id, access_token=TOKEN).fuel()

    assert len(flushed) == 3
    first, second, third = flushed
    assert isinstance(first, sc.BatchFlushed)
    assert first.vehicle_id == ev.id
    assert sorted(first.paths) == ["/location", "/odometer"]
    assert (first.callers, first.deduplicated, first.as_batch) == (4, 2, True)
    assert second == sc.BatchFlushed(ev.id, ("/vin",), 1, 0, False)
    assert third == sc.BatchFlushed(ice.id, ("/fuel",), 1, 0, False)


async def test_on_response_events(emu: Emulator, ev: SimulatedVehicle) -> None:
    seen: list[sc.ResponseReceived] = []
    async with make_client(emu.url, on_response=[seen.append], **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        await asyncio.gather(car.odometer(), car.location())
        await car.unlock()
        emu.inject(status=500, type="SERVER", code="INTERNAL", path="/vin")
        with pytest.raises(sc.ServerError):
            await car.vin()
        emu.inject(fault="drop", path="/security")
        with pytest.raises(sc.APIConnectionError):
            await car.lock()
        with pytest.raises(sc.CompatibilityError):
            await car.fuel()

    assert [(e.method, e.path, e.vehicle_id, e.status, e.error) for e in seen] == [
        ("POST", "/batch", ev.id, 200, None),
        ("POST", "/security", ev.id, 200, None),
        ("GET", "/vin", ev.id, 500, "ServerError"),
        ("POST", "/security", ev.id, None, "APIConnectionError"),
        ("GET", "/fuel", ev.id, 501, "CompatibilityError"),
    ]
    assert all(isinstance(e.latency, float) and e.latency >= 0 for e in seen)


async def test_a_failing_hook_breaks_nothing(
    emu: Emulator, ev: SimulatedVehicle, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def bad_batch_hook(event: sc.BatchFlushed) -> None:
        calls.append("batch")
        raise ValueError("metrics backend down")

    def bad_response_hook(event: sc.ResponseReceived) -> None:
        calls.append("response")
        raise KeyError("oops")

    good: list[sc.ResponseReceived] = []
    caplog.set_level(logging.ERROR, logger="smartcar_async")
    async with make_client(
        emu.url, on_batch=[bad_batch_hook], on_response=[bad_response_hook, good.append], **NO_RETRY
    ) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location())
        assert isinstance(odo, sc.Odometer)
        assert isinstance(loc, sc.Location)
        assert isinstance(await car.vin(), sc.Vin)
        assert isinstance(await car.lock(), sc.Action)
        with pytest.raises(sc.CompatibilityError):
            await car.fuel()
    assert calls.count("batch") == 3
    assert calls.count("response") == 4
    assert len(good) == 4  # later hooks still run
    assert sum("hook" in r.getMessage() for r in caplog.records) == 7


async def test_stats(emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        assert client.stats == sc.ClientStats()
        assert client.stats.coalescing_ratio == 0.0
        car = client.vehicle(ev.id, access_token=TOKEN)
        other = client.vehicle(ice.id, access_token=TOKEN)
        # 6 logical reads -> one batch of 2 paths + one GET; 3 dedupe hits.
        await asyncio.gather(
            car.odometer(), car.odometer(), car.odometer(), car.location(), other.vin(), other.vin()
        )
        await car.lock()
        stats = client.stats
        assert isinstance(stats, sc.ClientStats)
        assert stats.logical_reads == 6
        assert stats.batches == 1
        assert stats.sub_requests == 2
        assert stats.dedupe_hits == 3
        assert stats.writes == 1
        assert stats.http_requests == 3 == len(emu.requests)
        assert stats.coalescing_ratio == pytest.approx(6 / 2)

        # Snapshots are frozen values, not live views.
        before = client.stats
        await car.vin()
        assert before.logical_reads == 6
        assert client.stats.logical_reads == 7
        assert client.stats.http_requests == 4 == len(emu.requests)
        assert client.stats.coalescing_ratio == pytest.approx(7 / 3)


async def test_stats_count_in_flight_joins(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first GET to arrive")
        joined = await asyncio.gather(car.odometer(), car.odometer())
        assert joined[0] is joined[1] is await first
        stats = client.stats
        assert (stats.logical_reads, stats.dedupe_hits, stats.http_requests) == (3, 2, 1)
        assert stats.coalescing_ratio == 3.0
