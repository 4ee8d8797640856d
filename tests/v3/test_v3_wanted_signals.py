"""A /signals answer builds models only for the signals a flight waits on, with the same results."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from v3_support import jsonapi, serve, signal

from smartcar_async import Client, InvalidResponseError, Signal, Signals

ODOMETER = "odometer-traveleddistance"
SOC = "tractionbattery-stateofcharge"
VIN = "vehicleidentification-vin"
LOCKED = "closure-islocked"

LISTING = [
    signal(ODOMETER, {"value": 10, "unit": "km"}),
    signal(SOC, {"value": float("nan"), "unit": "percent"}),  # unreadable, and not asked for
    signal(VIN, {"value": "V"}),
    signal(LOCKED, {"value": True}),
    signal(ODOMETER, {"value": 99, "unit": "km"}),  # a repeat: the first one still wins
]


async def handler(request: web.Request) -> web.StreamResponse:
    return jsonapi(LISTING, meta={"totalCount": 5, "pageSize": 5, "pageNumber": 1})


async def test_a_flight_of_some_codes_gets_what_a_full_read_gets() -> None:
    async with serve(handler) as stub, Client(vehicle_api_origin=stub.url, max_retries=0) as client:
        car = client.vehicle("car", access_token="t", api_version="3")
        odometer, vin = await asyncio.gather(car.get_signal(ODOMETER), car.get_signal(VIN))
        # A broken signal nobody asked for does not fail the others, as before.
        assert isinstance(odometer, Signal)
        assert odometer.value == 10
        assert vin.value == "V"
        # get_signals() still builds (and checks) every signal of the answer.
        with pytest.raises(InvalidResponseError) as caught:
            await car.get_signals()
        assert caught.value.field == "data[1].attributes.body.value"
        mixed = await asyncio.gather(
            car.get_signal(ODOMETER),
            car.get_signal(LOCKED),
            car.get_signals(),
            return_exceptions=True,
        )
        assert mixed[0] == odometer
        assert isinstance(mixed[1], Signal)
        assert mixed[1].value is True
        assert isinstance(mixed[2], InvalidResponseError)
        twins = await asyncio.gather(car.get_signal(VIN), car.get_signal(LOCKED))
        assert twins[0] == vin
        assert twins[1] == mixed[1]
    assert len(stub.seen) == 4


async def test_without_broken_signals_get_signals_holds_every_one() -> None:
    listing = [item for item in LISTING if item["id"] != SOC]

    async def whole(request: web.Request) -> web.StreamResponse:
        return jsonapi(listing, meta={"totalCount": 4, "pageSize": 4, "pageNumber": 1})

    async with serve(whole) as stub, Client(vehicle_api_origin=stub.url, max_retries=0) as client:
        car = client.vehicle("car", access_token="t", api_version="3")
        signals, odometer, vin = await asyncio.gather(
            car.get_signals(), car.get_signal(ODOMETER), car.get_signal(VIN)
        )
        alone = await asyncio.gather(car.get_signal(ODOMETER), car.get_signal(VIN))
    assert isinstance(signals, Signals)
    assert set(signals) == {ODOMETER, VIN, LOCKED}
    assert signals[ODOMETER] == odometer == alone[0]
    assert signals[VIN] == vin == alone[1]
    assert len(stub.seen) == 2
