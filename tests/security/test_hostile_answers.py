"""Odd answers from the server that once escaped as bare Python errors.

Each test serves one hostile but well-formed answer over loopback (the stub
server) and checks that the caller gets a model or an `InvalidResponseError`
naming the field, never an ``OverflowError`` or ``ValueError``, and that the
coalescer's "unexpected error" backstop (an ERROR log with a traceback) is
never what caught it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from aiohttp import web
from support import HANG_GUARD, TOKEN, assert_no_leftover_tasks, json_response, make_client, serve

from smartcar_async import (
    InvalidResponseError,
    Odometer,
    Signals,
    iter_permissions,
    iter_vehicles,
    parse_webhook,
)

#: An integer far past the float range, yet short enough for Python's json to read.
HUGE = "9" * 400
BIG = "@HUGE@"  # where `dump` writes HUGE


def dump(value: Any) -> str:
    """JSON text, with every `BIG` string written as the bare integer HUGE."""
    return json.dumps(value).replace(f'"{BIG}"', HUGE)


def _signal(code: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": code,
        "type": "signal",
        "attributes": {"code": code, "body": body, "status": {"value": "SUCCESS"}},
    }


def _raw(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode(), status=status, content_type="application/json")


def _no_backstop(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# --- v3 commands ---------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202])
async def test_v3_command_duration_past_float_range(status: int) -> None:
    answer = dump({"data": {"id": "x", "meta": {"durationInSeconds": BIG}}})

    async def handler(request: web.Request) -> web.Response:
        return _raw(answer, status)

    async with serve(handler) as stub, make_client(stub.url, vehicle_api_origin=stub.url) as client:
        car = client.vehicle("v1", access_token=TOKEN, api_version="3")
        with pytest.raises(InvalidResponseError) as caught:
            await car.lock()
        assert caught.value.field == "data.meta.durationInSeconds"
        with pytest.raises(InvalidResponseError) as caught:
            await car.delete_charge_schedule("sched-1")
        assert caught.value.field == "data.meta.durationInSeconds"
    await assert_no_leftover_tasks()


# --- v2-named reads built from v3 signals ------------------------------------


@pytest.mark.parametrize(
    ("read", "signals", "field"),
    [
        pytest.param(
            "odometer",
            {"odometer-traveleddistance": {"value": BIG, "unit": "km"}},
            '["odometer-traveleddistance"].body.value',
            id="odometer-huge-int",
        ),
        pytest.param(
            "odometer",
            # Finite in miles, infinite once converted to km.
            {"odometer-traveleddistance": {"value": 1.7e308, "unit": "mi"}},
            '["odometer-traveleddistance"].body.value',
            id="odometer-overflows-in-km",
        ),
        pytest.param(
            "location",
            {"location-preciselocation": {"latitude": BIG, "longitude": 2}},
            '["location-preciselocation"].body.latitude',
            id="location-huge-int",
        ),
        pytest.param(
            "tire_pressure",
            {
                "wheel-tires": {
                    "unit": "psi",
                    "values": [{"row": 0, "column": 0, "tirePressure": 1e308}],
                }
            },
            '["wheel-tires"].body.tirePressure',
            id="tires-overflow-in-kpa",
        ),
        pytest.param(
            "battery",
            {
                "tractionbattery-stateofcharge": {"value": 50, "unit": "percent"},
                "tractionbattery-range": {"value": 1.7e308, "unit": "mi"},
            },
            '["tractionbattery-range"].body.value',
            id="battery-range-overflows",
        ),
        pytest.param(
            "fuel",
            {
                "internalcombustionengine-fuellevel": {"value": 50, "unit": "percent"},
                "internalcombustionengine-amountremaining": {"value": 1e308, "unit": "gal"},
            },
            '["internalcombustionengine-amountremaining"].body.value',
            id="fuel-amount-overflows",
        ),
    ],
)
async def test_v3_signal_number_past_float_range(
    read: str, signals: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    resources = [_signal(code, body) for code, body in signals.items()]

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/signals"):
            return _raw(dump({"data": resources}))
        return _raw(dump({"data": resources[0]}))  # GET /signals/{code}

    async with serve(handler) as stub, make_client(stub.url, vehicle_api_origin=stub.url) as client:
        car = client.vehicle("v1", access_token=TOKEN, api_version="3")
        with pytest.raises(InvalidResponseError) as caught:
            await getattr(car, read)()
        assert caught.value.field == field
    _no_backstop(caplog)
    await assert_no_leftover_tasks()


async def test_v3_bad_signal_spares_its_neighbours_in_the_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    page = dump(
        {
            "data": [
                _signal("odometer-traveleddistance", {"value": 100, "unit": "km"}),
                _signal("location-preciselocation", {"latitude": BIG, "longitude": 2}),
            ]
        }
    )

    async def handler(request: web.Request) -> web.Response:
        return _raw(page)

    async with serve(handler) as stub, make_client(stub.url, vehicle_api_origin=stub.url) as client:
        car = client.vehicle("v1", access_token=TOKEN, api_version="3")
        # Two reads in one coalescing window: one /signals request answers both.
        good, bad = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
        assert isinstance(good, Odometer)
        assert good.distance == 100
        assert isinstance(bad, InvalidResponseError)
        assert len(stub.seen) == 1
    _no_backstop(caplog)
    await assert_no_leftover_tasks()


async def test_webhook_signal_past_float_range_is_no_reading() -> None:
    signal = {
        "code": "odometer-traveleddistance",
        "body": {"value": BIG, "unit": "km"},
        "status": {"value": "SUCCESS"},
    }
    delivery = parse_webhook(
        dump(
            {
                "eventType": "VEHICLE_STATE",
                "meta": {"webhookId": "w", "deliveryId": "d"},
                "data": {"vehicle": {"id": "v1"}, "signals": [signal]},
            }
        )
    )

    async def handler(request: web.Request) -> web.Response:
        return json_response({"distance": 42})

    async with serve(handler) as stub, make_client(stub.url) as client:
        assert client.ingest_webhook(delivery) == 1
        car = client.vehicle("v1", access_token=TOKEN, max_age=3600)
        # The kept signal cannot make an Odometer, so the read asks the API.
        odometer = await car.odometer()
        assert odometer.distance == 42
        assert not odometer.meta.reused
        assert len(stub.seen) == 1
    await assert_no_leftover_tasks()


# --- v3 /signals paging ------------------------------------------------------


@pytest.mark.parametrize(
    "paging",
    [
        pytest.param(
            {"meta": {"totalCount": 5}, "links": {"next": "http://[bad?page=2"}},
            id="unparseable-next-link",
        ),
        pytest.param(
            # 4,300 digits: Python's json reads it, str(number + 1) cannot be written.
            {"meta": {"totalCount": 5, "pageNumber": "@PAGE@", "pageSize": 1}},
            id="page-number-4300-digits",
        ),
    ],
)
async def test_v3_signals_paging_it_cannot_follow(
    paging: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    resource = _signal("odometer-traveleddistance", {"value": 1, "unit": "km"})
    page = dump({"data": [resource], **paging}).replace('"@PAGE@"', "9" * 4300)

    async def handler(request: web.Request) -> web.Response:
        return _raw(page)

    async with serve(handler) as stub, make_client(stub.url, vehicle_api_origin=stub.url) as client:
        car = client.vehicle("v1", access_token=TOKEN, api_version="3")
        signals = await car.get_signals()
        assert isinstance(signals, Signals)
        assert list(signals) == ["odometer-traveleddistance"]
        assert len(stub.seen) == 1
    _no_backstop(caplog)
    await assert_no_leftover_tasks()


# --- offset paging -------------------------------------------------------------


async def _drain(walk: AsyncIterator[str], into: list[str]) -> None:
    async for item in walk:
        into.append(item)


async def test_vehicle_paging_that_ignores_the_offset_ends() -> None:
    async def handler(request: web.Request) -> web.Response:
        # Always the first page, and a count the walk could never reach.
        return json_response({"vehicles": ["a", "b"], "paging": {"count": 2**63 - 1, "offset": 0}})

    got: list[str] = []
    async with serve(handler) as stub:
        walk = iter_vehicles(TOKEN, page_size=2, api_origin=stub.url)
        with anyio.fail_after(HANG_GUARD), pytest.raises(InvalidResponseError) as caught:
            await _drain(walk, got)
        assert caught.value.field == "paging.offset"
        assert got == ["a", "b"]
        assert len(stub.seen) == 2
    await assert_no_leftover_tasks()


async def test_permission_paging_that_ignores_the_offset_ends() -> None:
    async def handler(request: web.Request) -> web.Response:
        return json_response(
            {"permissions": ["read_vin"], "paging": {"count": 2**63 - 1, "offset": 0}}
        )

    got: list[str] = []
    async with serve(handler) as stub, make_client(stub.url) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        with anyio.fail_after(HANG_GUARD), pytest.raises(InvalidResponseError) as caught:
            await _drain(iter_permissions(car, page_size=1), got)
        assert caught.value.field == "paging.offset"
        assert got == ["read_vin"]
    await assert_no_leftover_tasks()
