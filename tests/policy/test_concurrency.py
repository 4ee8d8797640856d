"""Concurrency limits: requests in flight per client, batches in flight per vehicle."""

from __future__ import annotations

import asyncio

from aiohttp import web
from policy_support import Timeline, shape, vehicle_requests, wait_until
from support import TOKEN, batch_paths, json_response, make_client, request_index, serve

import smartcar_async as sc
from smartcar_async.testing import Emulator


async def _slow_odometer(request: web.Request) -> web.StreamResponse:
    n = request_index(request)
    await asyncio.sleep(0.2)
    if request.method == "POST":
        return json_response({"commandId": f"c{n}", "status": "success", "message": "ok"})
    return json_response({"distance": float(n)})


async def test_max_concurrent_requests_bounds_requests_in_flight_server_side() -> None:
    async with serve(_slow_odometer) as stub:
        async with make_client(stub.url, max_concurrent_requests=2) as client:
            cars = [client.vehicle(f"veh-{i}", access_token=TOKEN) for i in range(6)]
            results = await asyncio.gather(*(car.odometer() for car in cars))
        assert all(isinstance(r, sc.Odometer) for r in results)
        assert len(stub.seen) == 6
        assert stub.peak == 2  # the limit is reached, never passed


async def test_max_concurrent_requests_counts_writes_and_direct_reads_too() -> None:
    async with serve(_slow_odometer) as stub:
        async with make_client(stub.url, max_concurrent_requests=2) as client:
            cars = [client.vehicle(f"veh-{i}", access_token=TOKEN) for i in range(4)]
            calls = [
                cars[0].odometer(),
                cars[1].odometer(),
                cars[2].lock(),
                cars[3].lock(),
                cars[0].request("GET", "odometer", params={"x": "1"}),
            ]
            results = await asyncio.gather(*calls, return_exceptions=True)
        assert not any(isinstance(r, BaseException) for r in results), results
        assert len(stub.seen) == 5
        assert stub.peak == 2


async def test_max_concurrent_requests_measured_on_the_emulator() -> None:
    async with Emulator(vehicles=6, seed=0, latency=0.2) as emu:
        timeline = Timeline()
        async with make_client(
            emu.url, max_concurrent_requests=2, on_response=[timeline]
        ) as client:
            cars = [client.vehicle(vid, access_token=TOKEN) for vid in emu.fleet.ids]
            await asyncio.gather(*(car.odometer() for car in cars))
        assert len(vehicle_requests(emu)) == 6
    # Largest overlap of the [sent, answered] intervals, on the client's clock
    # (an answer is counted before a send at the same instant).
    edges = sorted(
        [(e.sent, 1) for e in timeline.exchanges] + [(e.answered, -1) for e in timeline.exchanges]
    )
    in_flight = peak = 0
    for _, step in edges:
        in_flight += step
        peak = max(peak, in_flight)
    assert len(timeline.exchanges) == 6
    assert peak == 2


async def test_one_batch_in_flight_per_vehicle_and_later_reads_gather_into_the_next() -> None:
    async with Emulator(vehicles=2, seed=0, latency=0.3) as emu:
        vid = emu.fleet.ids[0]
        seen_at_answer: list[int] = []
        timeline = Timeline(on_each=lambda ex: seen_at_answer.append(len(emu.requests)))
        async with make_client(emu.url, on_response=[timeline]) as client:
            car = client.vehicle(vid, access_token=TOKEN)
            first = asyncio.create_task(car.odometer())
            await wait_until(lambda: len(emu.requests) == 1, "the first request")
            # While it flies: new paths, plus a duplicate of the in-flight one.
            later = [
                asyncio.create_task(car.location()),
                asyncio.create_task(car.vin()),
                asyncio.create_task(car.tire_pressure()),
                asyncio.create_task(car.location()),
                asyncio.create_task(car.odometer()),
            ]
            await asyncio.sleep(0.1)
            assert len(emu.requests) == 1
            results = await asyncio.gather(first, *later)
            stats = client.stats
        sent = vehicle_requests(emu)
    assert [type(r).__name__ for r in results] == [
        "Odometer",
        "Location",
        "Vin",
        "TirePressure",
        "Location",
        "Odometer",
    ]
    assert [shape(r) for r in sent] == [("GET", "/odometer"), ("POST", "/batch")]
    assert sorted(batch_paths(sent[1].body)) == ["/location", "/tires/pressure", "/vin"]
    # The second request left only after the first was answered.
    assert seen_at_answer[0] == 1
    assert results[5] is results[0]  # the duplicate joined the flight in the air
    assert stats.inflight_joins == 1


async def test_max_batches_per_vehicle_two_lets_a_second_flight_go_at_once() -> None:
    async with Emulator(vehicles=2, seed=0, latency=0.3) as emu:
        vid = emu.fleet.ids[0]
        seen_at_answer: list[int] = []
        timeline = Timeline(on_each=lambda ex: seen_at_answer.append(len(emu.requests)))
        async with make_client(
            emu.url, max_batches_per_vehicle=2, on_response=[timeline]
        ) as client:
            car = client.vehicle(vid, access_token=TOKEN)
            first = asyncio.create_task(car.odometer())
            await wait_until(lambda: len(emu.requests) == 1, "the first request")
            second = asyncio.create_task(car.location())
            third = asyncio.create_task(car.vin())
            await asyncio.gather(first, second, third)
        sent = vehicle_requests(emu)
    # Two flights overlapped: the second was on the wire before the first answer.
    assert seen_at_answer[0] == 2
    assert next(shape(r) for r in sent) == ("GET", "/odometer")
    assert len(sent) in (2, 3)
