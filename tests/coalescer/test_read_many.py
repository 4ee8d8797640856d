"""`Vehicle.batch` waits in one coroutine (`Coalescer.read_many`): no task per read.

Every guarantee of single reads holds for it: one request for the paths,
each path's outcome in its place, the caller's cancellation leaves the others
their request, nothing left behind.
"""

from __future__ import annotations

import asyncio

from support import (
    NO_RETRY,
    TOKEN,
    assert_no_leftover_tasks,
    batch_paths,
    make_client,
    wait_until,
)

import smartcar_async as sc
from smartcar_async.testing import Emulator, SimulatedVehicle

PATHS = ["/odometer", "/location", "/tires/pressure", "/security", "/vin"]


async def test_a_batch_of_five_is_one_request_with_each_model_in_place(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        result = await client.vehicle(ev.id, access_token=TOKEN).batch(PATHS)
    assert [type(result[p]).__name__ for p in PATHS] == [
        "Odometer",
        "Location",
        "TirePressure",
        "LockStatus",
        "Vin",
    ]
    assert [r.path for r in emu.requests] == [f"/v2.0/vehicles/{ev.id}/batch"]
    assert sorted(batch_paths(emu.requests[0].body)) == sorted(PATHS)
    await assert_no_leftover_tasks()


async def test_one_failed_path_is_an_error_in_its_place_and_the_others_are_models(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(status=404, type="RESOURCE_NOT_FOUND", code=None, path="/vin", in_batch=True)
    async with make_client(emu.url, **NO_RETRY) as client:
        result = await client.vehicle(ev.id, access_token=TOKEN).batch(PATHS)
    assert isinstance(result.outcomes["/vin"], sc.SmartcarError)
    assert set(result.models) == set(PATHS) - {"/vin"}
    assert len(emu.requests) == 1


async def test_a_gated_vehicle_answers_every_path_with_its_own_error_and_sends_nothing(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=3600, path="/odometer")
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = await car.batch(["/odometer"])
        assert isinstance(first.outcomes["/odometer"], sc.RateLimitError)
        sent = len(emu.requests)
        gated = await car.batch(PATHS)
    errors = [gated.outcomes[p] for p in PATHS]
    assert all(isinstance(e, sc.RateLimitError) for e in errors)
    assert len({id(e) for e in errors}) == len(PATHS), "each path gets its own error object"
    assert len(emu.requests) == sent


async def test_a_cancelled_batch_leaves_a_joined_reader_its_request(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        leaver = asyncio.create_task(car.batch(PATHS))
        await wait_until(lambda: len(emu.requests) == 1, "the batch to arrive")
        stayer = asyncio.create_task(car.odometer())  # joins the flight
        await asyncio.sleep(0.01)
        leaver.cancel()
        odometer = await stayer
        assert isinstance(odometer, sc.Odometer)
        assert leaver.cancelled()
        assert len(emu.requests) == 1, "the joined read kept the request alive"
        assert client._coalescer.queue_count == 0
    await assert_no_leftover_tasks()


async def test_a_batch_cancelled_before_its_window_ends_sends_nothing(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, batch_window=0.2, **NO_RETRY) as client:
        leaver = asyncio.create_task(client.vehicle(ev.id, access_token=TOKEN).batch(PATHS))
        await asyncio.sleep(0.02)
        leaver.cancel()
        await asyncio.sleep(0.3)
        assert leaver.cancelled()
        assert client._coalescer.queue_count == 0
        assert client._coalescer.window_count == 0
    assert emu.requests == []
    await assert_no_leftover_tasks()


async def test_a_batch_past_its_deadline_fails_every_path_with_a_timeout(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 1.0
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN).with_options(deadline=0.1)
        try:
            await car.batch(PATHS)
        except sc.APITimeoutError:
            pass
        else:
            raise AssertionError("the deadline did not end the batch")
        # The abandoned flight's task ends on a later loop turn.
        await wait_until(lambda: client._coalescer.queue_count == 0, "the queue to go")
    await assert_no_leftover_tasks()


async def test_a_batch_through_max_age_reuses_what_is_fresh(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
        first = await car.batch(PATHS)
        again = await car.batch(PATHS)
    assert len(emu.requests) == 1
    assert not first["/odometer"].meta.reused
    assert all(again[p].meta.reused for p in PATHS)


async def test_a_closing_coalescer_answers_every_path_with_its_own_closed_error(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        coalescer = client._coalescer
        await coalescer.close(grace=0)
        outcomes = await coalescer.read_many(car._key, [(p, sc.Response) for p in PATHS])
    assert all(isinstance(o, sc.ClientClosedError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == len(PATHS)
    assert emu.requests == []
