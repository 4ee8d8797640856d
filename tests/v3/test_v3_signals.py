"""v3 signals over loopback: typed signals, per-signal errors, coalescing, paging, sc-user-id."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle

import pytest
from aiohttp import web
from v3_support import jsonapi, make_v3_client, serve, signal, v3_requests

from smartcar_async import (
    Client,
    CompatibilityError,
    InvalidResponseError,
    ResourceNotFoundError,
    Signal,
    Signals,
    VehicleStateError,
    VehicleV3,
)
from smartcar_async.testing import Emulator, SimulatedVehicle

ODOMETER = "odometer-traveleddistance"
SOC = "tractionbattery-stateofcharge"
VIN = "vehicleidentification-vin"


def v3(
    client: Client, vehicle: SimulatedVehicle, token: str, user_id: str | None = None
) -> VehicleV3:
    return client.vehicle(vehicle.id, access_token=token, api_version="3", user_id=user_id)


async def test_mixed_success_and_error_signals_reach_their_own_callers(
    emu: Emulator, client: Client, ice: SimulatedVehicle, token: str
) -> None:
    car = v3(client, ice, token)
    emu.clear_requests()
    odometer, soc, vin, everything = await asyncio.gather(
        car.get_signal(ODOMETER),
        car.get_signal(SOC),
        car.get_signal(VIN),
        car.get_signals(),
        return_exceptions=True,
    )
    assert v3_requests(emu) == [("GET", "signals")]  # one request for four callers
    assert isinstance(odometer, Signal)
    assert odometer.status == "SUCCESS"
    assert odometer.value == round(ice.odometer_km)
    assert odometer.unit == "km"
    assert odometer.group == "Odometer"
    assert odometer.name == "TraveledDistance"
    assert odometer.retrieved_at is not None
    assert odometer.retrieved_at.tzinfo is not None
    assert isinstance(soc, CompatibilityError)  # an ICE car has no traction battery
    assert soc.code == "VEHICLE_NOT_CAPABLE"
    assert soc.status_code == 501
    assert isinstance(vin, Signal)
    assert vin.value == ice.vin
    assert isinstance(everything, Signals)
    assert len(everything) == len(emu.signal_codes)
    assert everything[ODOMETER] == odometer
    assert isinstance(everything[SOC].error, CompatibilityError)
    assert SOC in everything.errors
    assert ODOMETER not in everything.errors
    assert everything.meta.total_count == len(emu.signal_codes)
    assert everything.meta.pages == 1
    assert everything.vehicle is not None
    assert everything.vehicle.make == ice.make
    assert pickle.loads(pickle.dumps(odometer)) == odometer


async def test_an_asleep_car_keeps_its_last_body_beside_the_error(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    emu.faults.asleep.add(ev.id)
    car = v3(client, ev, token)
    with pytest.raises(VehicleStateError) as caught:
        await car.get_signal(ODOMETER)
    assert caught.value.code == "ASLEEP"
    assert caught.value.status_code == 409
    signals = await car.get_signals()
    stale = signals[ODOMETER]
    assert stale.status == "ERROR"
    assert isinstance(stale.error, VehicleStateError)
    assert stale.body is not None
    assert stale.value == round(ev.odometer_km)
    assert signals[VIN].ok  # static signals still succeed


async def test_a_lone_code_uses_the_single_signal_route_and_twins_share_it(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = v3(client, ev, token)
    emu.clear_requests()
    results = await asyncio.gather(*(car.get_signal(ODOMETER) for _ in range(5)))
    assert v3_requests(emu) == [("GET", f"signals/{ODOMETER}")]
    assert all(r is results[0] for r in results)  # one frozen model, shared
    assert client.stats.dedupe_hits >= 4


async def test_a_read_joins_the_request_in_flight(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = v3(client, ev, token)
    emu.inject(fault="slow", seconds=0.3, times=1)
    emu.clear_requests()
    first = asyncio.ensure_future(car.get_signal(SOC))
    await asyncio.sleep(0.1)
    second = await car.get_signal(SOC)
    assert (await first) is second
    assert v3_requests(emu) == [("GET", f"signals/{SOC}")]


async def test_paging_is_followed_until_every_signal_arrived(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    emu.signals_page_size = 10
    car = v3(client, ev, token)
    emu.clear_requests()
    emu.reset_billed_requests()
    signals, odometer, vin = await asyncio.gather(
        car.get_signals(), car.get_signal(ODOMETER), car.get_signal(VIN)
    )
    assert len(signals) == len(emu.signal_codes) == 29
    assert signals.meta.pages == 3
    assert signals.meta.page_size == 10
    assert v3_requests(emu) == [("GET", "signals")] * 3
    assert emu.billed_requests == 3
    assert odometer.value == signals[ODOMETER].value
    assert vin.value == ev.vin


async def test_sc_user_id_goes_on_every_request(emu: Emulator, ev: SimulatedVehicle) -> None:
    app_token = emu.issue_app_token()
    emu.slow_command_seconds = None
    async with make_v3_client(emu) as client:
        car = client.vehicle(ev.id, access_token=app_token, api_version="3", user_id=ev.user_id)
        emu.clear_requests()
        await car.get_signal(ODOMETER)
        await asyncio.gather(car.odometer(), car.battery(), car.get_signals())
        await car.attributes()
        await car.unlock()
    sent = [r for r in emu.requests if r.path.startswith("/v3/")]
    assert len(sent) == 4
    assert all(r.headers.get("sc-user-id") == ev.user_id for r in sent)


async def test_signal_shapes_timestamps_and_nan_over_a_stub() -> None:
    """Epoch ms and ISO timestamps; NaN fails only its own signal, naming the field."""
    listing = [
        {**signal(ODOMETER, {"value": 10, "unit": "km"}), "meta": {"oemUpdatedAt": 1769900000000}},
        signal(SOC, {"value": float("nan"), "unit": "percent"}),
        {**signal(VIN, {"value": "V"}), "meta": {"ingestedAt": "2026-05-01T08:00:00.000Z"}},
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        return jsonapi(listing, meta={"totalCount": 4, "pageSize": 3, "pageNumber": 1})

    async with serve(handler) as stub, Client(vehicle_api_origin=stub.url, max_retries=0) as client:
        car = client.vehicle("car", access_token="t", api_version="3")
        odometer, soc, vin, missing = await asyncio.gather(
            car.get_signal(ODOMETER),
            car.get_signal(SOC),
            car.get_signal(VIN),
            car.get_signal("charge-ischarging"),
            return_exceptions=True,
        )
    assert isinstance(odometer, Signal)
    assert odometer.oem_updated_at == dt.datetime.fromtimestamp(1769900000, dt.UTC)
    assert isinstance(vin, Signal)
    assert vin.ingested_at == dt.datetime(2026, 5, 1, 8, tzinfo=dt.UTC)
    assert isinstance(soc, InvalidResponseError)
    assert soc.field == "data[1].attributes.body.value"
    assert isinstance(missing, ResourceNotFoundError)
    assert missing.code == "SIGNAL_NOT_FOUND"
    # totalCount said 4 with no next link: the next page by number, to the same vehicle.
    assert [r.path for r in stub.seen] == ["/v3/vehicles/car/signals"] * 2
    assert dict(stub.seen[1].query) == {"page[number]": "2", "page[size]": "3"}


async def test_an_unknown_code_is_the_servers_404_and_bad_codes_fail_locally(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = v3(client, ev, token)
    with pytest.raises(ResourceNotFoundError) as caught:
        await car.get_signal("nothing-here")
    assert caught.value.code == "SIGNAL_NOT_FOUND"
    assert caught.value.status_code == 404
    emu.clear_requests()
    for bad in ("", "a/b", "*", "x y"):
        with pytest.raises(ValueError):
            await car.get_signal(bad)
    with pytest.raises(TypeError):
        await car.get_signal(3)  # type: ignore[arg-type]
    assert emu.requests == []
