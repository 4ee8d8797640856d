"""Freshness reuse on API v3 handles: signals, the v2-named reads, and commands."""

from __future__ import annotations

import asyncio

from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle

CODE = "odometer-traveleddistance"


async def test_signals_are_reused_within_max_age(
    emu: Emulator, client: Client, ev: SimulatedVehicle, v3_token: str
) -> None:
    car = client.vehicle(ev.id, access_token=v3_token, api_version="3", max_age=60)
    first = await car.get_signal(CODE)
    again = await car.get_signal(CODE)
    assert not first.reused
    assert again.reused
    assert again.age is not None
    assert again.value == first.value
    everything = await car.get_signals()
    assert not everything.meta.reused
    assert (await car.get_signals()).meta.reused
    assert (await car.get_signals())[CODE].value == first.value
    assert emu.billed_requests == 2


async def test_concurrent_v3_reads_that_miss_share_one_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle, v3_token: str
) -> None:
    car = client.vehicle(ev.id, access_token=v3_token, api_version="3", max_age=60)
    await asyncio.gather(car.odometer(), car.location(), car.get_signal(CODE), car.odometer())
    assert emu.billed_requests == 1
    results = await asyncio.gather(car.odometer(), car.location(), car.get_signal(CODE))
    assert all(r.meta.reused for r in results[:2])
    assert results[2].reused
    assert emu.billed_requests == 1


async def test_a_v3_command_drops_the_signals_it_changes(
    emu: Emulator, client: Client, ev: SimulatedVehicle, v3_token: str
) -> None:
    car = client.vehicle(ev.id, access_token=v3_token, api_version="3", max_age=600)
    await asyncio.gather(
        car.get_signal("closure-islocked"), car.lock_status(), car.get_signal(CODE)
    )
    await car.get_signals()
    billed = emu.billed_requests
    await car.lock()
    locked = await car.get_signal("closure-islocked")
    assert not locked.reused
    assert locked.value is True
    assert not (await car.lock_status()).meta.reused
    assert not (await car.get_signals()).meta.reused  # every command drops the full snapshot
    assert (await car.get_signal(CODE)).reused
    assert client.readings.is_fresh(car, CODE)
    assert emu.billed_requests == billed + 1 + 3
