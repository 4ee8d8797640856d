"""Cancellation over real HTTP: callers leave on their own, nobody else is hurt.

The emulator holds answers (``latency`` or an injected ``slow`` fault) so that
a caller can be cancelled while its read is queued or on the wire. Where the
test needs a request that must never complete on its own, the hold is longer
than the hang guard: if the client failed to let go, the test would hang and
the guard would fail it.
"""

from __future__ import annotations

import asyncio

import pytest
from support import (
    HANG_GUARD,
    NO_RETRY,
    TOKEN,
    assert_no_leftover_tasks,
    batch_paths,
    leftover_tasks,
    make_client,
    settle,
    wait_until,
)

import smartcar_async as sc
from smartcar_async.testing import Emulator, SimulatedVehicle

NEVER = 3 * HANG_GUARD  # an emulator hold no test ever waits out


async def test_a_cancelled_caller_leaves_the_others_untouched_in_flight(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        leaver = asyncio.create_task(car.odometer())
        stayer = asyncio.create_task(car.odometer())
        other = asyncio.create_task(car.location())
        await wait_until(lambda: len(emu.requests) == 1, "the batch to arrive")
        leaver.cancel()
        odo, loc = await asyncio.gather(stayer, other)
        assert isinstance(odo, sc.Odometer)
        assert isinstance(loc, sc.Location)
        assert leaver.cancelled()
        assert len(emu.requests) == 1
    await assert_no_leftover_tasks()


async def test_a_cancelled_caller_leaves_the_others_untouched_before_the_flush(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, batch_window=0.25, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        leaver = asyncio.create_task(car.odometer())
        stayer = asyncio.create_task(car.odometer())
        await settle()
        assert emu.requests == []
        leaver.cancel()
        assert isinstance(await stayer, sc.Odometer)
        assert leaver.cancelled()
        (sent,) = emu.requests
        assert sent.method == "GET"
        assert sent.path.endswith("/odometer")


async def test_a_caller_timing_out_does_not_hurt_the_one_sharing_its_path(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.3
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        patient = asyncio.create_task(car.odometer())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(car.odometer(), 0.05)
        assert isinstance(await patient, sc.Odometer)
        assert len(emu.requests) == 1


async def test_a_path_whose_callers_all_left_is_dropped_from_the_batch(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, batch_window=0.25, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        odo = asyncio.create_task(car.odometer())
        gone = [asyncio.create_task(car.location()) for _ in range(3)]
        vin = asyncio.create_task(car.vin())
        await settle()
        for task in gone:
            task.cancel()
        await asyncio.gather(odo, vin)
        assert all(t.cancelled() for t in gone)
    (sent,) = emu.requests
    assert sent.method == "POST"
    assert sorted(batch_paths(sent.body)) == ["/odometer", "/vin"]


async def test_a_batch_whose_callers_all_left_is_not_sent(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, batch_window=0.25, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        gone = [asyncio.create_task(r) for r in (car.odometer(), car.location(), car.odometer())]
        await settle()
        for task in gone:
            task.cancel()
        await settle()
        assert all(t.cancelled() for t in gone)
        assert client._coalescer.queue_count == 0  # no queue, so no timer left armed
        # A later read on the same vehicle opens its own window, which closes
        # after the abandoned one would have: only the later read goes out.
        assert isinstance(await car.vin(), sc.Vin)
        await settle()
    assert [(r.method, r.path.rsplit("/", 1)[1]) for r in emu.requests] == [("GET", "vin")]


async def test_an_in_flight_batch_whose_callers_all_left_is_cancelled(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(fault="slow", seconds=NEVER, path="/batch")
    async with make_client(emu.url, timeout=None, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        callers = [asyncio.create_task(r) for r in (car.odometer(), car.location(), car.odometer())]
        await wait_until(lambda: len(emu.requests) == 1, "the batch to arrive")
        for task in callers:
            task.cancel()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        # The client side lets go of the request at once (the server would hold it).
        await wait_until(lambda: not leftover_tasks(), "the batch task to end")
        await settle()  # its done-callback
        assert client._coalescer.task_count == 0
        assert client._coalescer.queue_count == 0

        # The next calls work normally, batched or not.
        odo, loc = await asyncio.gather(car.odometer(), car.location())
        assert isinstance(odo, sc.Odometer)
        assert isinstance(loc, sc.Location)
        assert isinstance(await car.vin(), sc.Vin)
        assert len(emu.requests) == 3
    await assert_no_leftover_tasks()


async def test_a_read_arriving_as_an_abandoned_flight_dies_gets_a_fresh_request(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(fault="slow", seconds=NEVER, path="/odometer")
    async with make_client(emu.url, timeout=None, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first GET to arrive")
        first.cancel()
        # Scheduled right behind the cancellation: it must neither join the dying
        # request nor receive a CancelledError it did not ask for.
        second = asyncio.create_task(car.odometer())
        result = await asyncio.wait_for(second, HANG_GUARD)
        assert isinstance(result, sc.Odometer)
        assert first.cancelled()
        assert [r.method for r in emu.requests] == ["GET", "GET"]
    await assert_no_leftover_tasks()


async def test_a_read_that_joined_in_flight_keeps_the_request_alive(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first GET to arrive")
        joiner = asyncio.create_task(car.odometer())
        await settle()
        first.cancel()
        assert isinstance(await joiner, sc.Odometer)
        assert first.cancelled()
        assert len(emu.requests) == 1


async def test_cancelling_a_gather_of_reads_leaves_nothing_behind(
    emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle
) -> None:
    emu.latency = 0.3
    async with make_client(emu.url, **NO_RETRY) as client:
        cars = [client.vehicle(v.id, access_token=TOKEN) for v in (ev, ice)]
        everything = asyncio.gather(*(c.odometer() for c in cars), *(c.location() for c in cars))
        await wait_until(lambda: len(emu.requests) == 2, "both batches to arrive")
        everything.cancel()
        with pytest.raises(asyncio.CancelledError):
            await everything
        await wait_until(lambda: not leftover_tasks(), "the batch tasks to end")
        await settle()  # their done-callbacks
        assert client._coalescer.queue_count == 0
        # Still usable.
        assert isinstance(await cars[1].fuel(), sc.Fuel)
    await assert_no_leftover_tasks()
