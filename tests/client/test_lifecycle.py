"""Client lifecycle: construction, sessions (owned or borrowed), aclose, loops."""

from __future__ import annotations

import asyncio
import gc
import inspect
import warnings
from typing import Any

import aiohttp
import pytest
from support import (
    HANG_GUARD,
    NO_RETRY,
    TOKEN,
    assert_no_leftover_tasks,
    make_client,
    settle,
    wait_until,
)

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle


def test_client_arguments_are_keyword_only() -> None:
    params = inspect.signature(Client).parameters
    assert params, "Client takes arguments"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    for name in ("api_origin", "session", "timeout", "batch_window", "max_batch_size"):
        assert name in params
    positional: Any = Client
    with pytest.raises(TypeError):
        positional("http://127.0.0.1:1")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"api_origin": "ftp://example.com"}, ValueError),
        ({"api_origin": "http://example.com?x=1"}, ValueError),
        ({"batch_window": -1}, ValueError),
        ({"batch_window": float("nan")}, ValueError),
        ({"batch_window": True}, TypeError),
        ({"max_batch_size": 0}, ValueError),
        ({"max_batch_size": 2.5}, TypeError),
        ({"timeout": -0.1}, ValueError),
        ({"close_timeout": float("inf")}, ValueError),
    ],
)
def test_bad_client_configuration_is_rejected(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    kwargs.setdefault("api_origin", "http://127.0.0.1:1")
    with pytest.raises(error):
        Client(**kwargs)


def test_client_built_outside_a_loop_works_inside_one() -> None:
    # Nothing loop-bound is created in __init__: the owned session is made
    # lazily, inside the loop that first uses the client.
    with Emulator(vehicles=1, seed=0).in_thread() as emu:
        client = make_client(emu.url, **NO_RETRY)
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)

        async def main() -> sc.Odometer:
            async with client:
                return await car.odometer()

        assert isinstance(asyncio.run(main()), sc.Odometer)
        assert client.closed


def _in_loop(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return loop.run_until_complete(asyncio.wait_for(coro, HANG_GUARD))


def test_one_client_in_two_loops_raises_a_clear_runtime_error_on_writes() -> None:
    with Emulator(vehicles=1, seed=0).in_thread() as emu:
        first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            client = make_client(emu.url, **NO_RETRY)
            car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)
            assert isinstance(_in_loop(first, car.odometer()), sc.Odometer)
            with pytest.raises(RuntimeError, match="loop"):
                _in_loop(second, car.lock())
            with pytest.raises(RuntimeError, match="loop"):
                _in_loop(second, client.__aenter__())
            # The first loop is unaffected.
            assert isinstance(_in_loop(first, car.vin()), sc.Vin)
            _in_loop(first, client.aclose())
        finally:
            first.close()
            second.close()


def test_one_client_in_two_loops_raises_a_clear_runtime_error_on_reads() -> None:
    with Emulator(vehicles=1, seed=0).in_thread() as emu:
        first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            client = make_client(emu.url, **NO_RETRY)
            car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN)
            try:
                assert isinstance(_in_loop(first, car.odometer()), sc.Odometer)
                with pytest.raises(RuntimeError, match="loop"):
                    _in_loop(second, car.odometer())
            finally:
                _in_loop(first, client.aclose())
        finally:
            first.close()
            second.close()


async def test_borrowed_session_is_never_closed_nor_trusted(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    # raise_for_status and base_url of a borrowed session must not matter.
    async with aiohttp.ClientSession(
        base_url="http://127.0.0.1:9/elsewhere/", raise_for_status=True
    ) as session:
        async with make_client(emu.url, session=session, **NO_RETRY) as client:
            car = client.vehicle(ev.id, access_token=TOKEN)
            odo, loc = await asyncio.gather(car.odometer(), car.location())
            assert isinstance(odo, sc.Odometer)
            assert isinstance(loc, sc.Location)
            assert isinstance(await car.vin(), sc.Vin)
            emu.inject(status=500, type="SERVER", code="INTERNAL", path="/odometer")
            with pytest.raises(sc.ServerError):
                await car.odometer()
            emu.inject(status=409, type="VEHICLE_STATE", code="ASLEEP", path="/security")
            with pytest.raises(sc.VehicleStateError):
                await car.lock()
            assert len(emu.requests) == 4
        await client.aclose()  # idempotent
        assert client.closed
        assert not session.closed
        # Still usable by its owner.
        async with session.get(
            f"{emu.url}/v2.0/vehicles/{ev.id}/vin", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            assert resp.status == 200
    await assert_no_leftover_tasks()


async def test_owned_session_is_created_lazily_and_closed(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    client = make_client(emu.url, **NO_RETRY)
    assert client._session is None  # nothing until first use
    car = client.vehicle(ev.id, access_token=TOKEN)
    assert client._session is None  # a handle does no I/O
    await car.odometer()
    session = client._session
    assert isinstance(session, aiohttp.ClientSession)
    assert not session.closed
    await client.aclose()
    assert session.closed
    await assert_no_leftover_tasks()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client, car, session
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_never_used_client_closes_cleanly(emu: Emulator) -> None:
    client = make_client(emu.url, **NO_RETRY)
    await client.aclose()
    await client.aclose()
    assert client.closed


async def test_entering_twice_raises(emu: Emulator) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        with pytest.raises(RuntimeError):
            async with client:
                pass
        assert not client.closed


async def test_use_after_close_raises_client_closed(emu: Emulator, ev: SimulatedVehicle) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        await car.vin()
    await client.aclose()  # idempotent
    emu.clear_requests()
    for call in (
        car.odometer,
        car.lock,
        lambda: car.permissions(limit=1),
        lambda: car.request("GET", "/odometer"),
        lambda: car.request("POST", "/security", body={"action": "LOCK"}),
    ):
        with pytest.raises(sc.ClientClosedError):
            await call()
    with pytest.raises(sc.ClientClosedError):
        async with client:
            pass
    assert emu.requests == []
    assert issubclass(sc.ClientClosedError, sc.SmartcarError)


async def test_batch_after_close_raises_client_closed(emu: Emulator, ev: SimulatedVehicle) -> None:
    client = make_client(emu.url, **NO_RETRY)
    car = client.vehicle(ev.id, access_token=TOKEN)
    await client.aclose()
    with pytest.raises(sc.ClientClosedError):
        await car.batch(["/odometer", "/vin"])
    assert emu.requests == []


async def test_aclose_lets_in_flight_reads_finish_and_fails_queued_ones(
    emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle
) -> None:
    # The batch is held long enough for everything below to happen meanwhile.
    emu.inject(fault="slow", seconds=0.4, path="/batch")
    # A one-hour window: only max_batch_size (2 paths) flushes a queue.
    client = make_client(emu.url, batch_window=3600, max_batch_size=2, **NO_RETRY)
    car = client.vehicle(ev.id, access_token=TOKEN)
    other = client.vehicle(ice.id, access_token=TOKEN)
    in_flight = asyncio.gather(car.odometer(), car.location())
    await wait_until(lambda: len(emu.requests) == 1, "the batch to arrive")
    write = asyncio.create_task(car.lock())
    await wait_until(lambda: len(emu.requests) == 2, "the write to arrive")
    queued_behind = asyncio.create_task(car.vin())  # behind the vehicle's flight
    queued_alone = asyncio.create_task(other.vin())  # waiting for its window
    await settle()

    await client.aclose()
    odo, loc = in_flight.result()
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.Location)
    assert isinstance(write.result(), sc.Action)
    for task in (queued_behind, queued_alone):
        assert isinstance(task.exception(), sc.ClientClosedError)
    assert [r.method for r in emu.requests] == ["POST", "POST"]
    await assert_no_leftover_tasks()


async def test_aclose_cancels_in_flight_reads_after_close_timeout(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(fault="slow", seconds=3 * HANG_GUARD, path="/batch")
    client = make_client(emu.url, close_timeout=0.05, timeout=None, **NO_RETRY)
    car = client.vehicle(ev.id, access_token=TOKEN)
    reads = asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
    await wait_until(lambda: len(emu.requests) == 1, "the batch to arrive")
    await asyncio.wait_for(client.aclose(), HANG_GUARD)
    outcomes = await reads
    assert [type(o) for o in outcomes] == [sc.ClientClosedError] * 2
    await assert_no_leftover_tasks()


async def test_aclose_from_a_reader_does_not_deadlock(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.latency = 0.05
    client = make_client(emu.url, **NO_RETRY)
    car = client.vehicle(ev.id, access_token=TOKEN)

    async def read_then_close() -> sc.Odometer:
        odo = await car.odometer()
        await client.aclose()
        return odo

    results = await asyncio.wait_for(
        asyncio.gather(read_then_close(), car.odometer(), car.location()), HANG_GUARD
    )
    assert isinstance(results[0], sc.Odometer)
    assert results[0] is results[1]
    assert client.closed
    await assert_no_leftover_tasks()


async def test_a_write_outliving_close_timeout_gets_client_closed(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.inject(fault="slow", seconds=3 * HANG_GUARD, path="/security")
    client = make_client(emu.url, close_timeout=0.05, timeout=None, **NO_RETRY)
    write = asyncio.create_task(client.vehicle(ev.id, access_token=TOKEN).unlock())
    await wait_until(lambda: len(emu.requests) == 1, "the write to arrive")
    await asyncio.wait_for(client.aclose(), HANG_GUARD)
    (outcome,) = await asyncio.gather(write, return_exceptions=True)
    assert isinstance(outcome, sc.ClientClosedError)
    await assert_no_leftover_tasks()


async def test_concurrent_aclose_calls_all_wait_for_the_close(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    client = make_client(emu.url, **NO_RETRY)
    car = client.vehicle(ev.id, access_token=TOKEN)
    read = asyncio.create_task(car.odometer())
    await wait_until(lambda: len(emu.requests) == 1, "the read to arrive")
    first = asyncio.create_task(client.aclose())
    await settle()
    try:
        await asyncio.wait_for(client.aclose(), HANG_GUARD)
        assert read.done(), "aclose() returned while a read was still in flight"
    finally:
        await first
        await read
