"""Every endpoint method of Vehicle, against the emulator, on a vehicle that supports it.

Each read is issued on its own, so (by design) it goes out as a plain GET of
its path; coalescing is covered in test_coalescing.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from aiohttp import web
from support import NO_RETRY, TOKEN, json_response, make_client, serve

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle

V2 = "/v2.0/vehicles/"


def last(emu: Emulator) -> Any:
    requests = emu.requests
    assert requests, "no request reached the emulator"
    return requests[-1]


def is_aware(value: dt.datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() is not None


Check = Callable[[Any, SimulatedVehicle], None]

# (method, powertrain, path, model, check of the result against the simulated vehicle)
READS: list[tuple[str, str, str, type[Any], Check]] = [
    ("vin", "EV", "/vin", sc.Vin, lambda r, v: _eq(r.vin, v.vin)),
    ("attributes", "ICE", "", sc.Attributes, lambda r, v: _eq((r.id, r.make), (v.id, v.make))),
    (
        "charge",
        "PHEV",
        "/charge",
        sc.Charge,
        lambda r, v: _eq((r.is_plugged_in, r.state), (v.is_plugged_in, v.charge_state)),
    ),
    ("battery", "EV", "/battery", sc.Battery, lambda r, v: _frac(r.percent_remaining)),
    (
        "battery_capacity",
        "EV",
        "/battery/capacity",
        sc.BatteryCapacity,
        lambda r, v: _eq(r.capacity, v.battery_capacity_kwh),
    ),
    (
        "nominal_capacity",
        "EV",
        "/battery/nominal_capacity",
        sc.NominalCapacity,
        lambda r, v: _eq(r.available_capacities[0].capacity, v.battery_capacity_kwh),
    ),
    ("fuel", "ICE", "/fuel", sc.Fuel, lambda r, v: _frac(r.percent_remaining)),
    (
        "tire_pressure",
        "ICE",
        "/tires/pressure",
        sc.TirePressure,
        lambda r, v: _approx(r.front_left, v.tire_pressure_kpa["frontLeft"]),
    ),
    (
        "engine_oil",
        "ICE",
        "/engine/oil",
        sc.EngineOil,
        lambda r, v: _eq(r.life_remaining, v.oil_life),
    ),
    ("odometer", "EV", "/odometer", sc.Odometer, lambda r, v: _approx(r.distance, v.odometer_km)),
    (
        "location",
        "ICE",
        "/location",
        sc.Location,
        lambda r, v: _approx((r.latitude, r.longitude), v.location),
    ),
    (
        "permissions",
        "EV",
        "/permissions",
        sc.Permissions,
        lambda r, v: _eq(r.paging.count, len(r.permissions)),
    ),
    (
        "get_charge_limit",
        "EV",
        "/charge/limit",
        sc.ChargeLimit,
        lambda r, v: _eq(r.limit, v.charge_limit),
    ),
    (
        "lock_status",
        "EV",
        "/security",
        sc.LockStatus,
        lambda r, v: _eq((r.is_locked, len(r.doors)), (v.is_locked, 4)),
    ),
    (
        "diagnostic_system_status",
        "PHEV",
        "/diagnostics/system_status",
        sc.DiagnosticSystemStatus,
        lambda r, v: _nonempty(r.systems),
    ),
    (
        "diagnostic_trouble_codes",
        "PHEV",
        "/diagnostics/dtcs",
        sc.DiagnosticTroubleCodes,
        lambda r, v: _eq(len(r.active_codes), len(v.dtcs)),
    ),
    (
        "service_history",
        "ICE",
        "/service/history",
        sc.ServiceHistory,
        lambda r, v: _eq(all(is_aware(x.service_date) for x in r.records), True),
    ),
]


def _assert_snake_case(model: Any) -> None:
    for field in attrs.fields(type(model)):
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", field.name), field.name
        value = getattr(model, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            if attrs.has(type(item)):
                _assert_snake_case(item)


def _eq(a: object, b: object) -> None:
    assert a == b


def _approx(a: object, b: object) -> None:
    # The simulated vehicles drive between our read and this check.
    assert a == pytest.approx(b, rel=1e-3, abs=0.05)


def _frac(value: float | None) -> None:
    assert value is not None
    assert 0.0 <= value <= 1.0


def _nonempty(value: tuple[Any, ...]) -> None:
    assert len(value) > 0


@pytest.mark.parametrize(
    ("name", "powertrain", "path", "model", "check"), READS, ids=[r[0] for r in READS]
)
async def test_each_read_endpoint(
    emu: Emulator,
    client: Client,
    name: str,
    powertrain: str,
    path: str,
    model: type[Any],
    check: Check,
) -> None:
    sim = emu.fleet.with_powertrain(powertrain)[0]  # type: ignore[arg-type]
    car = client.vehicle(sim.id, access_token=TOKEN)
    result = await asyncio.wait_for(getattr(car, name)(), 10)

    assert type(result) is model
    assert attrs.has(type(result))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.meta = None
    check(result, sim)
    _assert_snake_case(result)
    meta = result.meta
    assert isinstance(meta, sc.Meta)
    assert isinstance(meta.request_id, str)
    assert meta.request_id
    for stamp in (meta.data_age, meta.fetched_at):
        assert stamp is None or is_aware(stamp)

    (sent,) = emu.requests
    assert sent.method == "GET"
    if path:
        assert sent.path == V2 + sim.id + path
    else:
        # The attributes live at the vehicle itself; like the official SDK, the
        # client may send it with a trailing slash.
        assert sent.path in (V2 + sim.id, V2 + sim.id + "/")
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["SC-Unit-System"] == "metric"


async def test_live_reads_carry_tz_aware_meta(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    single = await car.odometer()
    batched, _ = await asyncio.gather(car.odometer(), car.location())
    for odo in (single, batched):
        assert is_aware(odo.meta.data_age)
        assert is_aware(odo.meta.fetched_at)
        assert odo.meta.data_age is not None
        assert odo.meta.fetched_at is not None
        assert odo.meta.data_age <= odo.meta.fetched_at
        assert odo.meta.unit_system == "metric"


async def test_meta_request_id_is_the_responses_sc_request_id() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/batch"):
            return json_response(
                {
                    "responses": [
                        {"path": "/odometer", "code": 200, "body": {"distance": 1.5}},
                        {
                            "path": "/location",
                            "code": 200,
                            "body": {"latitude": 1.0, "longitude": 2.0},
                            "headers": {"sc-fetched-at": "2024-01-02T03:04:05.000Z"},
                        },
                    ]
                },
                headers={"SC-Request-Id": "req-batch-1"},
            )
        return json_response(
            {"distance": 3.0},
            headers={
                "SC-Request-Id": "req-get-1",
                "SC-Unit-System": "metric",
                "SC-Data-Age": "2024-01-02T03:04:05.000Z",
                "SC-Fetched-At": "2024-01-02T03:04:06+00:00",
            },
        )

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        single = await car.odometer()
        assert single.meta.request_id == "req-get-1"
        assert single.meta.unit_system == "metric"
        assert single.meta.data_age == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        assert is_aware(single.meta.fetched_at)
        odo, loc = await asyncio.gather(car.odometer(), car.location())
        assert odo.meta.request_id == loc.meta.request_id == "req-batch-1"
        assert loc.meta.fetched_at == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        assert odo.meta.fetched_at is None


async def test_write_meta_request_id_is_the_responses_sc_request_id() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(
            {"status": "success", "message": "Successfully sent request to vehicle"},
            headers={"SC-Request-Id": f"req-{request.method}"},
        )

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        done = await car.lock()
        assert done == sc.Action("success", "Successfully sent request to vehicle", meta=done.meta)
        assert done.meta.request_id == "req-POST"
        assert (await car.disconnect()).meta.request_id == "req-DELETE"
        assert "SC-Unit-System" not in stub.seen[0].headers


async def test_lock_and_unlock_stick(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    unlocked = await car.unlock()
    assert isinstance(unlocked, sc.Action)
    assert unlocked.status == "success"
    assert last(emu).method == "POST"
    assert last(emu).path == V2 + ev.id + "/security"
    assert last(emu).body == {"action": "UNLOCK"}
    assert (await car.lock_status()).is_locked is False
    assert ev.is_locked is False

    locked = await car.lock()
    assert locked.status == "success"
    assert last(emu).body == {"action": "LOCK"}
    status = await car.lock_status()
    assert status.is_locked is True
    assert {d.status for d in status.doors} == {"LOCKED"}


async def test_start_and_stop_charge_stick(
    emu: Emulator, client: Client, phev: SimulatedVehicle
) -> None:
    assert phev.is_plugged_in
    assert phev.charge_state == "NOT_CHARGING"
    car = client.vehicle(phev.id, access_token=TOKEN)
    assert (await car.start_charge()).status == "success"
    assert (last(emu).method, last(emu).path, last(emu).body) == (
        "POST",
        V2 + phev.id + "/charge",
        {"action": "START"},
    )
    assert (await car.charge()).state == "CHARGING"
    assert (await car.stop_charge()).status == "success"
    assert last(emu).body == {"action": "STOP"}
    assert (await car.charge()).state == "NOT_CHARGING"
    # The emulator refuses a second stop: a typed 409 comes back.
    with pytest.raises(sc.VehicleStateError) as info:
        await car.stop_charge()
    assert info.value.code == "NOT_CHARGING"


async def test_set_charge_limit_sticks(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    assert (await car.set_charge_limit(0.75)).status == "success"
    sent = last(emu)
    assert (sent.method, sent.path, sent.body) == (
        "POST",
        V2 + ev.id + "/charge/limit",
        {"limit": 0.75},
    )
    assert (await car.get_charge_limit()).limit == 0.75
    await car.set_charge_limit(1)
    assert (await car.get_charge_limit()).limit == 1.0


async def test_send_destination_sticks(
    emu: Emulator, client: Client, ice: SimulatedVehicle
) -> None:
    car = client.vehicle(ice.id, access_token=TOKEN)
    assert (await car.send_destination(48.1351, 11.582)).status == "success"
    sent = last(emu)
    assert (sent.method, sent.path) == ("POST", V2 + ice.id + "/navigation/destination")
    assert sent.body == {"latitude": 48.1351, "longitude": 11.582}
    assert ice.destination == (48.1351, 11.582)


async def test_subscribe_and_unsubscribe(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    sub = await car.subscribe("wh-123")
    assert isinstance(sub, sc.Subscribe)
    assert (sub.webhook_id, sub.vehicle_id) == ("wh-123", ev.id)
    assert (last(emu).method, last(emu).path) == ("POST", V2 + ev.id + "/webhooks/wh-123")
    assert "wh-123" in ev.webhooks

    status = await car.unsubscribe("amt-MANAGEMENT", "wh-123")
    assert isinstance(status, sc.Status)
    assert status.status == "success"
    sent = last(emu)
    assert (sent.method, sent.path) == ("DELETE", V2 + ev.id + "/webhooks/wh-123")
    # Unsubscribe is authorised by the application management token, not the user's.
    assert sent.headers["Authorization"] == "Bearer amt-MANAGEMENT"
    assert "wh-123" not in ev.webhooks


async def test_disconnect(emu: Emulator, client: Client, ice: SimulatedVehicle) -> None:
    car = client.vehicle(ice.id, access_token=TOKEN)
    status = await car.disconnect()
    assert isinstance(status, sc.Status)
    assert status.status == "success"
    assert (last(emu).method, last(emu).path) == ("DELETE", V2 + ice.id + "/application")
    assert ice.connected is False
    with pytest.raises(sc.AuthenticationError):
        await car.odometer()


async def test_permissions_paging(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    everything = await car.permissions()
    page = await car.permissions(limit=2, offset=1)
    sent = last(emu)
    assert (sent.method, sent.path, sent.query) == (
        "GET",
        V2 + ev.id + "/permissions",
        {"limit": "2", "offset": "1"},
    )
    assert page.permissions == everything.permissions[1:3]
    assert page.paging == sc.Paging(count=everything.paging.count, offset=1)


async def test_service_history_date_filters(
    emu: Emulator, client: Client, ice: SimulatedVehicle
) -> None:
    car = client.vehicle(ice.id, access_token=TOKEN)
    start = dt.date(2000, 1, 1)
    end = dt.datetime(2100, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    everything = await car.service_history(start_date=start, end_date=end)
    sent = last(emu)
    assert sent.path == V2 + ice.id + "/service/history"
    assert sent.query == {"startDate": "2000-01-01", "endDate": "2100-01-01T10:00:00.000Z"}
    assert len(everything.records) == len(ice.service_records) > 1

    dates = sorted(r.service_date for r in everything.records if r.service_date is not None)
    newest = dates[-1]
    recent = await car.service_history(start_date=newest - dt.timedelta(seconds=1))
    assert [r.service_date for r in recent.records] == [newest]
    older = await car.service_history(end_date=newest - dt.timedelta(seconds=1))
    assert newest not in [r.service_date for r in older.records]
    assert len(older.records) == len(everything.records) - 1


async def test_explicit_batch(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    result = await car.batch(["/odometer", "location", "/fuel", "tesla/speedometer"])
    (sent,) = emu.requests
    assert (sent.method, sent.path) == ("POST", V2 + ev.id + "/batch")
    assert sent.body == {
        "requests": [
            {"path": "/odometer"},
            {"path": "/location"},
            {"path": "/fuel"},
            {"path": "/tesla/speedometer"},
        ]
    }
    assert isinstance(result, sc.BatchResponse)
    assert set(result) == {"/odometer", "/location", "/fuel", "/tesla/speedometer"}
    assert isinstance(result["odometer"], sc.Odometer)
    assert isinstance(result["/location"], sc.Location)
    speed = result["/tesla/speedometer"]
    assert isinstance(speed, sc.Response)
    assert isinstance(speed.body, dict)
    assert set(result.errors) == {"/fuel"}
    with pytest.raises(sc.CompatibilityError):
        result["/fuel"]


async def test_request_escape_hatch(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    speed = await car.request("GET", "tesla/speedometer")
    assert isinstance(speed, sc.Response)
    assert isinstance(speed.body, dict)
    assert (last(emu).method, last(emu).path) == ("GET", V2 + ev.id + "/tesla/speedometer")

    page = await car.request("get", "/permissions", params={"limit": "1"})
    assert last(emu).query == {"limit": "1"}
    assert len(page.body["permissions"]) == 1

    done = await car.request("POST", "/security", body={"action": "UNLOCK"})
    assert done.body["status"] == "success"
    assert (last(emu).method, last(emu).body) == ("POST", {"action": "UNLOCK"})
    assert ev.is_locked is False


async def test_imperial_units(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    emu.freeze_clock()  # no drift between the two reads
    metric = client.vehicle(ev.id, access_token=TOKEN)
    imperial = client.vehicle(ev.id, access_token=TOKEN, unit_system="imperial")
    km = await metric.odometer()
    miles = await imperial.odometer()
    assert emu.requests[-1].headers["SC-Unit-System"] == "imperial"
    assert emu.requests[-2].headers["SC-Unit-System"] == "metric"
    assert miles.meta.unit_system == "imperial"
    assert km.meta.unit_system == "metric"
    assert miles.distance == pytest.approx(km.distance * 0.621371, rel=1e-4, abs=0.02)

    # And inside a batch, where the unit system is a header of the batch request.
    (kpa, _), (psi, _) = await asyncio.gather(
        asyncio.gather(metric.tire_pressure(), metric.location()),
        asyncio.gather(imperial.tire_pressure(), imperial.location()),
    )
    units = sorted(r.headers["SC-Unit-System"] for r in emu.requests[-2:])
    assert units == ["imperial", "metric"]
    assert psi.front_left == pytest.approx(kpa.front_left * 0.1450377, rel=1e-3, abs=0.02)
    assert psi.meta.unit_system == "imperial"


async def test_flags_reach_the_emulator(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN, flags={"country": "DE", "foo": True})
    await car.odometer()  # a plain GET
    await asyncio.gather(car.odometer(), car.location())  # a batch
    await car.lock()  # a write
    await car.permissions(limit=1)  # a direct read with its own query
    flags = [r.query.get("flags") for r in emu.requests]
    assert flags == ["country:DE foo:true"] * 4
    assert [r.method for r in emu.requests] == ["GET", "POST", "POST", "GET"]
    assert emu.requests[1].path.endswith("/batch")
    assert emu.requests[3].query["limit"] == "1"
