"""Freshness reuse of v2 reads over loopback: the emulator counts what is billed."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiohttp import web
from reuse_support import clock_of, make_reuse_client
from support import OTHER_TOKEN, TOKEN, json_response, make_client, serve

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle


async def test_a_read_within_max_age_sends_nothing(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    first = await car.odometer()
    billed = emu.billed_requests
    second = await car.odometer()
    assert emu.billed_requests == billed == 1
    assert second.distance == first.distance
    assert first.meta.reused is False
    assert first.meta.age is None
    assert second.meta.reused is True
    assert second.meta.age is not None
    assert 0 <= second.meta.age < 5
    assert second.meta.request_id == first.meta.request_id
    stats = client.stats
    assert (stats.reused_reads, stats.logical_reads, stats.http_requests) == (1, 2, 1)


async def test_past_max_age_one_request_is_sent(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    clock = clock_of(client)
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=30)
    await car.odometer()
    clock.advance(29)
    assert (await car.odometer()).meta.reused
    assert emu.billed_requests == 1
    clock.advance(2)
    fresh = await car.odometer()
    assert not fresh.meta.reused
    assert emu.billed_requests == 2
    # The new answer is the one reused from now on.
    assert (await car.odometer()).meta.request_id == fresh.meta.request_id
    assert emu.billed_requests == 2


async def test_without_max_age_nothing_is_reused_or_stored(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    assert car.max_age is None
    for _ in range(3):
        assert not (await car.odometer()).meta.reused
    assert emu.billed_requests == 3
    assert len(client.readings) == 0
    assert client.stats.reused_reads == 0


async def test_with_options_sets_and_clears_max_age(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    plain = client.vehicle(ev.id, access_token=TOKEN)
    reusing = plain.with_options(max_age=120)
    assert (reusing.max_age, plain.max_age) == (120, None)
    assert "max_age=120" in repr(reusing)
    await reusing.battery()
    assert (await reusing.with_options(deadline=30).battery()).meta.reused
    assert not (await plain.battery()).meta.reused
    assert not (await reusing.with_options(max_age=None).battery()).meta.reused
    assert emu.billed_requests == 3


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
async def test_max_age_is_a_bound(client: Client, ev: SimulatedVehicle, bad: float) -> None:
    with pytest.raises(ValueError, match="max_age"):
        client.vehicle(ev.id, access_token=TOKEN, max_age=bad)
    with pytest.raises(ValueError, match="max_age"):
        client.vehicle(ev.id, access_token=TOKEN).with_options(max_age=bad)


async def test_cache_size_is_checked() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        Client(cache_size=-1)
    with pytest.raises(TypeError, match="cache_size"):
        Client(cache_size=1.5)  # type: ignore[arg-type]


async def test_answers_are_not_shared_across_tokens_units_or_flags(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    handles = [
        client.vehicle(ev.id, access_token=TOKEN, max_age=60),
        client.vehicle(ev.id, access_token=OTHER_TOKEN, max_age=60),
        client.vehicle(ev.id, access_token=TOKEN, unit_system="imperial", max_age=60),
        client.vehicle(ev.id, access_token=TOKEN, flags={"country": "DE"}, max_age=60),
    ]
    for car in handles:
        assert not (await car.odometer()).meta.reused
    for car in handles:
        assert (await car.odometer()).meta.reused
    assert emu.billed_requests == len(handles)


async def test_errors_are_never_reused(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    emu.inject(status=409, type="VEHICLE_STATE", code="ASLEEP", path="/odometer")
    with pytest.raises(sc.VehicleStateError):
        await car.odometer()
    assert len(client.readings) == 0
    answer = await car.odometer()
    assert not answer.meta.reused
    assert emu.billed_requests == 1  # failed requests are free; the retry was billed


async def test_concurrent_readers_of_a_missing_path_share_one_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    cars = [client.vehicle(ev.id, access_token=TOKEN, max_age=60) for _ in range(5)]
    plain = client.vehicle(ev.id, access_token=TOKEN)
    answers = await asyncio.gather(*(car.location() for car in [*cars, plain]))
    assert len({a.meta.request_id for a in answers}) == 1
    assert emu.billed_requests == 1
    assert client.stats.dedupe_hits == 5


async def test_a_batch_reuses_what_it_can_and_reads_the_rest_together(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    await car.odometer()
    answer = await car.batch(["/odometer", "/location", "/battery"])
    assert answer["/odometer"].meta.reused
    assert not answer["/location"].meta.reused
    assert emu.billed_requests == 3  # odometer once, then location and battery in one batch


async def test_the_cache_is_bounded_least_recently_used_first(emu: Emulator) -> None:
    async with make_reuse_client(emu, cache_size=2) as client:
        ids = [v.id for v in emu.fleet.vehicles[:3]]
        cars = [client.vehicle(i, access_token=TOKEN, max_age=60) for i in ids]
        await cars[0].vin()
        await cars[1].vin()
        assert (await cars[0].vin()).meta.reused  # cars[0] is now the most recent
        await cars[2].vin()  # evicts cars[1]
        assert len(client.readings) == 2
        assert (await cars[0].vin()).meta.reused
        assert (await cars[2].vin()).meta.reused
        assert not (await cars[1].vin()).meta.reused
        assert len(client.readings) == 2
    async with make_reuse_client(emu, cache_size=0) as client:
        car = client.vehicle(ids[0], access_token=TOKEN, max_age=60)
        await car.vin()
        assert not (await car.vin()).meta.reused
        assert len(client.readings) == 0


async def test_lock_drops_the_lock_status_and_keeps_the_rest(
    emu: Emulator, client: Client, phev: SimulatedVehicle
) -> None:
    phev.is_plugged_in = True
    car = client.vehicle(phev.id, access_token=TOKEN, max_age=600)
    await asyncio.gather(car.lock_status(), car.odometer(), car.charge())
    await car.lock()
    status = await car.lock_status()
    assert not status.meta.reused
    assert status.is_locked
    assert (await car.odometer()).meta.reused
    assert (await car.charge()).meta.reused
    await car.start_charge()
    assert not (await car.charge()).meta.reused
    await car.send_destination(37.77, -122.42)
    assert (await car.charge()).meta.reused  # a destination changes nothing a read returns


async def test_a_write_on_a_plain_handle_drops_what_another_handle_stored(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    reusing = client.vehicle(ev.id, access_token=TOKEN, max_age=600)
    await reusing.get_charge_limit()
    await client.vehicle(ev.id, access_token=OTHER_TOKEN).set_charge_limit(0.8)
    limit = await reusing.get_charge_limit()
    assert not limit.meta.reused
    assert limit.limit == 0.8


async def test_an_unknown_write_drops_everything_of_its_vehicle_only(
    emu: Emulator, client: Client, ev: SimulatedVehicle, ice: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=600)
    other = client.vehicle(ice.id, access_token=TOKEN, max_age=600)
    await asyncio.gather(car.odometer(), car.vin(), other.odometer())
    with pytest.raises(sc.SmartcarError):
        await car.request("POST", "/no/such/command", body={})
    assert not (await car.odometer()).meta.reused
    assert not (await car.vin()).meta.reused
    assert (await other.odometer()).meta.reused


async def test_a_read_in_flight_across_a_write_is_not_stored(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=600)
    emu.inject(fault="slow", seconds=0.5, path="/security")
    reading = asyncio.ensure_future(car.lock_status())
    await asyncio.sleep(0.1)
    await car.lock()
    before = await reading  # sent before the lock: it may say unlocked
    after = await car.lock_status()
    assert not after.meta.reused
    assert after.is_locked
    assert after.meta.request_id != before.meta.request_id


async def test_age_counts_from_fetched_at_and_never_below_receipt() -> None:
    now = dt.datetime.now(dt.UTC)
    fetched = {"/odometer": now - dt.timedelta(seconds=50), "/vin": now + dt.timedelta(hours=1)}

    async def handler(request: web.Request) -> web.Response:
        path = request.path.rsplit("/", 1)[-1]
        body = {"distance": 10.0} if path == "odometer" else {"vin": "1HGCM82633A004352"}
        header = fetched[f"/{path}"].isoformat().replace("+00:00", "Z")
        return json_response(body, headers={"sc-fetched-at": header})

    async with serve(handler) as stub, make_client(stub.url, max_retries=0) as client:
        clock = clock_of(client)
        car = client.vehicle("v1", access_token=TOKEN, max_age=60)
        await car.odometer()
        again = await car.odometer()
        assert again.meta.age is not None
        assert 49 < again.meta.age < 55
        clock.advance(10)  # 60 s old by now: over the limit
        assert not (await car.odometer()).meta.reused
        # A fetch time in the future (a server clock ahead) counts as "just received".
        await car.vin()
        clock.advance(59)
        vin = await car.vin()
        assert vin.meta.reused
        assert vin.meta.age is not None
        assert 59 <= vin.meta.age < 61
        clock.advance(2)
        assert not (await car.vin()).meta.reused
        assert len(stub.seen) == 4


async def test_a_closed_client_raises_even_when_the_answer_is_stored(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    client = make_reuse_client(emu)
    async with client:
        car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
        await car.vin()
    with pytest.raises(sc.ClientClosedError):
        await car.vin()


async def test_lookup_and_is_fresh_answer_without_reading(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    plain = client.vehicle(ev.id, access_token=TOKEN)
    car = plain.with_options(max_age=60)
    assert not client.readings.is_fresh(car, "/odometer")
    await car.odometer()
    found = client.readings.lookup(car, "odometer")
    assert found is not None
    assert found.source == "read"
    assert found.value.meta.reused
    assert client.readings.is_fresh(plain, "/odometer", max_age=60)
    with pytest.raises(ValueError, match="max_age"):
        client.readings.lookup(plain, "/odometer")
    assert client.stats.reused_reads == 0  # looking is not reading
    client.readings.forget(ev.id)
    assert not client.readings.is_fresh(car, "/odometer")


async def test_secrets_never_appear_in_the_cache_or_its_reprs(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, max_age=60)
    await asyncio.gather(car.odometer(), car.vin())
    found = client.readings.lookup(car, "/vin")
    texts = [repr(client.readings), repr(found), repr(car), repr(client.stats)]
    assert not any(TOKEN in text for text in texts)
    stored = [k for bucket in client.readings._vehicles.values() for k in bucket]
    assert stored
    assert not any(TOKEN in repr(key) for key in stored)
