"""The emulator answers the way the real API does, down to number types and headers.

Each expectation comes from Smartcar's documented examples or from answers
recorded from the live API (smartcar-api.md §2, §4, §5; smartcar-api-v3.md
§7), not from the emulator's own code: whole numbers arrive as JSON integers
(``"distance": 21919``, ``"limit": 1``), ``suggestedUserMessage`` only where
the docs show one, unit headers on batch items and never on the envelope,
v4 webhook deliveries with epoch-millisecond integers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import attrs
import pytest
from aiohttp import web
from emu_support import WITH_USER_MESSAGE, Api, assert_error, assert_error_shape

from smartcar_async import SIGNATURE_HEADER, challenge_response, parse_webhook, verify_payload
from smartcar_async.testing import Emulator, RateLimits, SimulatedVehicle

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
AMT = "fidelity-management-token"

CORE_READS = (
    "/",
    "/vin",
    "/permissions",
    "/odometer",
    "/location",
    "/fuel",
    "/battery",
    "/battery/capacity",
    "/battery/nominal_capacity",
    "/charge",
    "/charge/limit",
    "/tires/pressure",
    "/engine/oil",
    "/security",
    "/service/history",
    "/diagnostics/system_status",
    "/diagnostics/dtcs",
)
MAKE_READS = {
    "TESLA": (
        "/tesla/charge/ammeter",
        "/tesla/charge/wattmeter",
        "/tesla/charge/voltmeter",
        "/tesla/charge/completion",
        "/tesla/charge/schedule",
        "/tesla/compass",
        "/tesla/speedometer",
        "/tesla/thermometer/exterior",
        "/tesla/thermometer/interior",
        "/tesla/climate/cabin",
        "/tesla/battery",
        "/tesla/attributes",
    ),
    "NISSAN": ("/nissan/charge/schedule",),
    "FORD": ("/ford/charge/schedule_by_location",),
    "BMW": ("/bmw/charge/records",),
    "AUDI": ("/audi/charge",),
    "CHEVROLET": ("/chevrolet/charge/completion", "/chevrolet/charge/voltmeter"),
    "CADILLAC": ("/cadillac/charge/completion", "/cadillac/charge/voltmeter"),
}
UNIT_PATHS = {"/odometer", "/fuel", "/battery", "/tires/pressure"}
STATIC_PATHS = {"/", "/vin", "/permissions"}


def numbers(value: Any, where: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numbers(item, f"{where}[{index}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield where, value


def assert_js_numbers(body: Any, label: str) -> None:
    """JavaScript writes a whole number without a fraction: 1, never 1.0."""
    for where, value in numbers(body):
        assert not (isinstance(value, float) and value.is_integer()), (label, where, value)


# -- numbers ----------------------------------------------------------------


async def test_whole_numbers_are_integers_on_every_read(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev, ice, phev = emu.fleet.vehicles[0], emu.fleet.vehicles[1], emu.fleet.vehicles[2]
    ev.charge_limit, ev.charge_amperage, ev.battery_capacity_kwh = 1.0, 48.0, 75.0
    ev.exterior_temperature_c = 20.0
    for vehicle in emu.fleet.vehicles[:8]:
        paths = [*CORE_READS, *MAKE_READS.get(vehicle.make, ())]
        for units in ("metric", "imperial"):
            for path in paths:
                reply = await api.vget(vehicle.id, path, units=units)
                assert reply.status in (200, 501), (path, reply.body)
                assert_js_numbers(reply.body, f"{vehicle.make} {path} {units}")
            batch = await api.batch(vehicle.id, paths, units=units)
            assert_js_numbers(batch.body, f"{vehicle.make} batch {units}")

    # The recorded answers' integers: odometer and a whole charge limit.
    odometer = await api.vget(ice.id, "/odometer")
    assert type(odometer.body["distance"]) is int
    assert odometer.body["distance"] == round(ice.odometer_km)
    assert b'"limit":1}' in (await api.vget(ev.id, "/charge/limit")).raw
    assert (await api.vget(ev.id, "/battery/capacity")).body == {"capacity": 75}
    nominal = (await api.vget(ev.id, "/battery/nominal_capacity")).body
    assert type(nominal["capacity"]["nominal"]) is int
    assert (await api.vget(ev.id, "/tesla/charge/ammeter")).body == {"amperage": 48}
    exterior = (await api.vget(ev.id, "/tesla/thermometer/exterior")).raw
    assert exterior == b'{"temperature":20}'
    # Fractions stay fractions: a 0.8 limit, a battery level, tyre pressures.
    phev.charge_limit = 0.8
    assert (await api.vget(phev.id, "/charge/limit")).body == {"limit": 0.8}
    imperial = await api.vget(ice.id, "/odometer", units="imperial")
    assert type(imperial.body["distance"]) is int
    assert imperial.body["distance"] == round(ice.odometer_km / 1.609344)


# -- errors -----------------------------------------------------------------


async def test_permission_batch_item_matches_the_recorded_one(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[1]
    emu.register_token("narrow", scopes=["read_odometer"])
    reply = await api.batch(vehicle.id, ["/odometer", "/engine/oil", "/security"], token="narrow")
    request_id = reply.headers["SC-Request-Id"]
    denied = [r for r in reply.body["responses"] if r["code"] == 403]
    assert len(denied) == 2
    for item in denied:
        assert set(item) == {"path", "code", "body"}
        assert item["body"] == {
            "statusCode": 403,
            "type": "PERMISSION",
            "code": None,
            "description": (
                "Your application has insufficient permissions to access the requested "
                "resource. Please prompt the user to re-authenticate using Smartcar Connect."
            ),
            "docURL": "https://smartcar.com/docs/errors/api-errors/permission-errors#null",
            "resolution": {"type": "REAUTHENTICATE"},
            "requestId": request_id,
        }


async def test_suggested_user_message_only_where_documented(api: Api, emu: Emulator) -> None:
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    emu.register_token("vin-only", scopes=["read_vin"])
    seen: dict[str, dict[str, Any]] = {}

    async def record(reply_coro: Any, status: int, type_: str, code: str | None) -> None:
        seen[type_] = assert_error(await reply_coro, status, type_, code)

    await record(api.vget(ev.id, "/odometer", token="vin-only"), 403, "PERMISSION", None)
    await record(api.vget(ev.id, "/odometer", token=None), 401, "AUTHENTICATION", None)
    await record(api.vget(ev.id, "/odometer", units="furlongs"), 400, "VALIDATION", None)
    await record(api.vget(ev.id, "/fuel"), 501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    await record(api.vget(ev.id, "/nope"), 404, "RESOURCE_NOT_FOUND", "PATH")
    emu.inject(type="BILLING", code="VEHICLE_LIMIT")
    await record(api.vget(ev.id, "/odometer"), 430, "BILLING", "VEHICLE_LIMIT")
    emu.inject(type="SERVER", code="INTERNAL")
    await record(api.vget(ev.id, "/odometer"), 500, "SERVER", "INTERNAL")
    emu.inject(type="UPSTREAM", code="NO_RESPONSE")
    await record(api.vget(ev.id, "/odometer"), 502, "UPSTREAM", "NO_RESPONSE")
    emu.inject(type="CONNECTED_SERVICES_ACCOUNT", code="ACCOUNT_ISSUE")
    await record(api.vget(ev.id, "/odometer"), 400, "CONNECTED_SERVICES_ACCOUNT", "ACCOUNT_ISSUE")
    emu.faults.asleep.add(ice.id)
    await record(api.vget(ice.id, "/odometer"), 409, "VEHICLE_STATE", "ASLEEP")
    emu.faults.asleep.clear()
    emu.rate_limits = RateLimits(vehicle_requests=0)
    await record(api.vget(ice.id, "/odometer"), 429, "RATE_LIMIT", "VEHICLE")

    assert set(seen) >= WITH_USER_MESSAGE
    for type_, body in seen.items():
        assert ("suggestedUserMessage" in body) == (type_ in WITH_USER_MESSAGE), body
        assert ("detail" in body) == (type_ == "VALIDATION"), body
        assert set(body["resolution"]) == {"type"}, body
    # Documented resolutions and doc links.
    assert seen["PERMISSION"]["resolution"] == {"type": "REAUTHENTICATE"}
    assert seen["AUTHENTICATION"]["resolution"] == {"type": None}
    assert seen["VALIDATION"]["resolution"] == {"type": None}
    assert seen["COMPATIBILITY"]["resolution"] == {"type": None}
    assert seen["RATE_LIMIT"]["resolution"] == {"type": "RETRY_LATER"}
    assert seen["BILLING"]["resolution"] == {"type": "CONTACT_SUPPORT"}
    assert seen["SERVER"]["resolution"] == {"type": "RETRY_LATER"}
    assert seen["CONNECTED_SERVICES_ACCOUNT"]["resolution"] == {"type": None}
    docs = "https://smartcar.com/docs/errors/api-errors/"
    assert seen["AUTHENTICATION"]["docURL"] == docs + "authentication-errors"
    assert seen["COMPATIBILITY"]["docURL"] == docs + "compatibility-errors#vehicle-not-capable"
    assert seen["BILLING"]["docURL"] == docs + "billing-errors#vehicle-limit"
    assert seen["VEHICLE_STATE"]["docURL"] == docs + "vehicle-state-errors#asleep"
    assert seen["CONNECTED_SERVICES_ACCOUNT"]["docURL"] == (
        docs + "connected-service-errors#account-issue"
    )
    detail = seen["VALIDATION"]["detail"]
    assert isinstance(detail, list)
    assert all(set(d) == {"field", "message"} for d in detail)


async def test_unknown_paths_methods_and_versions(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    for method, path in (
        ("GET", "/v2.0/nothing"),
        ("GET", "/elsewhere"),
        ("GET", f"/v2.0/vehicles/{vid}/odometerr"),
        ("PUT", f"/v2.0/vehicles/{vid}/odometer"),
        ("DELETE", f"/v2.0/vehicles/{vid}/security"),
        ("PATCH", "/v2.0/vehicles"),
    ):
        body = assert_error(await api.call(method, path), 404, "RESOURCE_NOT_FOUND", "PATH")
        assert "suggestedUserMessage" not in body
    version = assert_error(
        await api.get(f"/vnext/vehicles/{vid}/odometer"), 404, "RESOURCE_NOT_FOUND", "VERSION"
    )
    assert version["docURL"].endswith("resource-not-found-errors#version")


# -- headers ----------------------------------------------------------------


async def test_headers_on_direct_answers(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev = emu.fleet.vehicles[0]
    for path in ("/odometer", "/location", "/battery", "/charge", "/", "/vin", "/permissions"):
        reply = await api.vget(ev.id, path)
        headers = reply.headers
        assert headers["Content-Type"] == "application/json"
        assert uuid.UUID(headers["SC-Request-Id"]).version == 4
        assert ("SC-Unit-System" in headers) == (path in UNIT_PATHS), path
        if path in STATIC_PATHS:
            assert "SC-Data-Age" not in headers
            assert "SC-Fetched-At" not in headers
        else:
            assert ISO_MS.match(headers["SC-Data-Age"])
            assert ISO_MS.match(headers["SC-Fetched-At"])
            assert headers["SC-Data-Age"] <= headers["SC-Fetched-At"]
    # Actions answer without data headers.
    action = await api.post(api.vpath(ev.id, "/security"), {"action": "LOCK"})
    assert action.status == 200
    assert not {"SC-Data-Age", "SC-Fetched-At", "SC-Unit-System"} & set(action.headers)
    # A vehicle rate limit says when to retry, in whole seconds.
    emu.rate_limits = RateLimits(vehicle_requests=0, vehicle_window=90)
    limited = await api.vget(ev.id, "/odometer")
    assert limited.status == 429
    assert limited.headers["Retry-After"].isdigit()


async def test_batch_envelope_and_item_headers(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev = emu.fleet.vehicles[0]
    paths = ["/odometer", "/location", "/battery", "/charge/limit", "/vin", "/fuel"]
    for units in ("metric", "imperial"):
        reply = await api.batch(ev.id, paths, units=units)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        assert uuid.UUID(reply.headers["SC-Request-Id"]).version == 4
        # The unit system is each item's header, not the envelope's.
        for name in ("SC-Unit-System", "SC-Data-Age", "SC-Fetched-At", "Retry-After"):
            assert name not in reply.headers
        assert set(reply.body) == {"responses"}
        by_path = {r["path"]: r for r in reply.body["responses"]}
        assert list(by_path) == paths
        for path, item in by_path.items():
            if item["code"] != 200:
                assert set(item) == {"path", "code", "body"}
                assert item["body"]["requestId"] == reply.headers["SC-Request-Id"]
                continue
            assert set(item) == {"path", "code", "body", "headers"}
            headers = item["headers"]
            assert all(key == key.lower() for key in headers)
            assert "sc-request-id" not in headers
            assert (headers.get("sc-unit-system") == units) == (path in UNIT_PATHS), path
            if path == "/vin":
                assert headers == {}
            else:
                assert ISO_MS.match(headers["sc-data-age"])
                assert ISO_MS.match(headers["sc-fetched-at"])
        assert by_path["/fuel"]["code"] == 501

    emu.rate_limits = RateLimits(vehicle_requests=1)
    limited = await api.batch(ev.id, ["/odometer", "/location"])
    second = limited.body["responses"][1]
    assert second["code"] == 429
    assert set(second) == {"path", "code", "body", "headers"}
    assert type(second["headers"]["Retry-After"]) is int
    assert_error_shape(second["body"], 429, limited.headers["SC-Request-Id"])


# -- Tesla attributes ---------------------------------------------------------


async def test_tesla_attributes_has_the_documented_fields(api: Api, emu: Emulator) -> None:
    tesla = emu.fleet.vehicles[0]
    body = (await api.vget(tesla.id, "/tesla/attributes")).body
    assert (body["id"], body["make"], body["model"], body["year"]) == (
        tesla.id,
        "TESLA",
        tesla.model,
        tesla.year,
    )
    assert type(body["year"]) is int
    strings = (
        "driverAssistVersion",
        "efficiencyPackage",
        "firmwareVersion",
        "nickname",
        "performancePackage",
        "trimBadging",
    )
    assert all(isinstance(body[key], str) for key in strings)
    assert set(body["driveUnit"]) == {"front", "rear"}
    assert set(body["sentryMode"]) == {"available", "enabled"}
    assert set(body["style"]) == {"exteriorColor", "exteriorTrim", "interiorTrim"}
    assert set(body["wheel"]) == {"diameter", "style"}
    assert isinstance(body["atHome"], bool)
    # A Tesla-only endpoint: other makes are refused.
    other = emu.fleet.vehicles[1]
    assert_error(await api.vget(other.id, "/tesla/attributes"), 403, "PERMISSION")


# -- v4 webhooks --------------------------------------------------------------


@attrs.define
class Receiver:
    url: str
    bodies: list[bytes] = attrs.field(factory=list)
    headers: list[dict[str, str]] = attrs.field(factory=list)

    def json(self, index: int = -1) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.bodies[index])
        return parsed


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver("")

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify_payload(AMT, request.headers.get(SIGNATURE_HEADER), raw):
            return web.json_response({"error": "bad signature"}, status=401)
        state.bodies.append(raw)
        state.headers.append(dict(request.headers))
        payload = parse_webhook(raw)
        if payload.is_verify:
            return web.json_response(challenge_response(AMT, payload))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


def assert_epoch_ms(value: Any, around: float) -> None:
    assert type(value) is int
    assert abs(value / 1000 - around) < 300, (value, around)


def assert_v4_meta(meta: dict[str, Any], webhook_id: str) -> None:
    assert meta["version"] == "4.0"
    assert meta["webhookId"] == webhook_id
    assert isinstance(meta["webhookName"], str)
    assert uuid.UUID(meta["deliveryId"])
    assert_epoch_ms(meta["deliveredAt"], time.time())


async def test_v4_verify_handshake(receiver: Receiver) -> None:
    async with Emulator(vehicles=2, management_token=AMT) as emu:
        assert await emu.verify_webhook(receiver.url, webhook_id="wh-4", version="4.0")
        assert not await emu.verify_webhook(receiver.url, amt="another", version="4.0")
    body = receiver.json(0)
    assert set(body) == {"eventId", "eventType", "data", "meta"}
    assert body["eventType"] == "VERIFY"
    assert isinstance(body["data"]["challenge"], str)
    assert_v4_meta(body["meta"], "wh-4")
    assert receiver.headers[0]["User-Agent"] == "Smartcar/4.0"


def check_signal(signal: dict[str, Any], vehicle: SimulatedVehicle) -> None:
    assert signal["code"] == f"{signal['group']}-{signal['name']}".lower()
    status = signal["status"]
    if status["value"] == "SUCCESS":
        assert set(signal) == {"code", "name", "group", "body", "meta", "status"}
        assert set(signal["meta"]) == {"oemUpdatedAt", "retrievedAt"}
        for stamp in signal["meta"].values():
            assert type(stamp) is int
            assert stamp == 0 or abs(stamp / 1000 - time.time()) < 600
    else:
        assert status["value"] == "ERROR"
        assert set(signal) == {"code", "name", "group", "status"}
        assert set(status["error"]) == {"type", "code"}


async def test_v4_vehicle_state_deliveries(receiver: Receiver) -> None:
    async with Emulator(vehicles=3, seed=4, management_token=AMT) as emu:
        ev = emu.fleet.vehicles[0]
        ev.is_plugged_in = False
        first = await emu.deliver_webhook(
            receiver.url, webhook_id="wh-4", vehicle_ids=[ev.id], version="4.0"
        )
        emu.advance_clock(3600)
        await emu.deliver_webhook(
            receiver.url, webhook_id="wh-4", vehicle_ids=[ev.id], version="4.0"
        )
    assert first.status == 200
    expected = hmac.new(AMT.encode(), receiver.bodies[0], hashlib.sha256).hexdigest()
    assert first.signature == expected == receiver.headers[0][SIGNATURE_HEADER]
    assert receiver.headers[0]["User-Agent"] == "Smartcar/4.0"
    body = receiver.json(0)
    assert set(body) == {"eventId", "eventType", "data", "triggers", "meta"}
    assert uuid.UUID(body["eventId"])
    assert body["eventType"] == "VEHICLE_STATE"
    assert body["data"]["user"] == {"id": ev.user_id}
    assert body["data"]["vehicle"] == {
        "id": ev.id,
        "make": ev.make,
        "model": ev.model,
        "year": ev.year,
    }
    signals = body["data"]["signals"]
    for signal in signals:
        check_signal(signal, ev)
    by_code = {s["code"]: s for s in signals}
    assert by_code["odometer-traveleddistance"]["body"]["unit"] == "km"
    assert by_code["vehicleidentification-vin"]["body"] == {"value": ev.vin}
    assert by_code["vehicleidentification-vin"]["meta"] == {"oemUpdatedAt": 0, "retrievedAt": 0}
    charge = by_code["tractionbattery-stateofcharge"]["body"]
    assert type(charge["value"]) is int
    assert charge["unit"] == "percent"
    assert by_code["internalcombustionengine-fuellevel"]["status"]["value"] == "ERROR"
    meta = body["meta"]
    assert_v4_meta(meta, "wh-4")
    assert meta["mode"] == "TEST"
    assert meta["signalCount"] == len(signals)
    assert body["triggers"] == [{"type": "FIRST_DELIVERY"}]

    # An hour of driving later, the changed signals are the triggers.
    later = receiver.json(1)
    assert later["eventId"] != body["eventId"]
    assert later["meta"]["deliveredAt"] - meta["deliveredAt"] >= 3_600_000
    changed = {t["signal"]["code"] for t in later["triggers"]}
    assert "odometer-traveleddistance" in changed
    assert "vehicleidentification-vin" not in changed
    assert all(t["type"] == "SIGNAL_UPDATED" for t in later["triggers"])
    assert all(set(t["signal"]) == {"name", "code", "group"} for t in later["triggers"])

    # The client's parser reads the 4.0 envelope (its deliveredAt handling is not
    # asserted here: epoch milliseconds are another change's subject).
    parsed = parse_webhook(receiver.bodies[0])
    assert (parsed.event_type, parsed.event_id, parsed.webhook_id, parsed.version) == (
        "VEHICLE_STATE",
        body["eventId"],
        "wh-4",
        "4.0",
    )
    assert parsed.delivery_id == meta["deliveryId"]
    assert parsed.data["vehicle"]["id"] == ev.id


async def test_v4_vehicle_error_delivery(receiver: Receiver) -> None:
    async with Emulator(vehicles=3, seed=4, management_token=AMT) as emu:
        ice = emu.fleet.vehicles[1]
        await emu.deliver_webhook(
            receiver.url, vehicle_ids=[ice.id], version="4.0", event_type="VEHICLE_ERROR"
        )
        emu.faults.asleep.add(ice.id)
        await emu.deliver_webhook(
            receiver.url, vehicle_ids=[ice.id], version="4.0", event_type="VEHICLE_ERROR"
        )
    capability, asleep = receiver.json(0), receiver.json(1)
    for body in (capability, asleep):
        assert set(body) == {"eventId", "eventType", "data", "meta"}
        assert body["eventType"] == "VEHICLE_ERROR"
        assert body["data"]["vehicle"]["id"] == ice.id
        assert_epoch_ms(body["meta"]["deliveredAt"], time.time())
        (error,) = body["data"]["errors"]
        assert error["state"] == "ERROR"
        assert set(error["resolution"]) == {"type"}
        assert "statusCode" not in error
        assert "requestId" not in error
        assert all(set(s) == {"name", "code", "group"} for s in error["signals"])
    (not_capable,) = capability["data"]["errors"]
    assert (not_capable["type"], not_capable["code"]) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
    # As recorded: the webhook's compatibility error has a user message, the REST one none.
    assert not_capable["suggestedUserMessage"] == "Your car is unable to perform this request."
    assert not_capable["docURL"].endswith("compatibility-errors#vehicle-not-capable")
    codes = {s["code"] for s in not_capable["signals"]}
    assert "tractionbattery-stateofcharge" in codes
    (sleeping,) = asleep["data"]["errors"]
    assert (sleeping["type"], sleeping["code"]) == ("VEHICLE_STATE", "ASLEEP")
    assert isinstance(sleeping["suggestedUserMessage"], str)


async def test_v4_arguments_are_checked() -> None:
    async with Emulator(vehicles=3, management_token=AMT) as emu:
        ids = emu.fleet.ids
        with pytest.raises(ValueError, match="one vehicle"):
            await emu.deliver_webhook("http://127.0.0.1:9/", vehicle_ids=ids, version="4.0")
        with pytest.raises(ValueError, match="event_type"):
            await emu.deliver_webhook("http://127.0.0.1:9/", event_type="VEHICLE_STATE")
        with pytest.raises(ValueError, match="version"):
            await emu.verify_webhook("http://127.0.0.1:9/", version="3.0")  # type: ignore[arg-type]


async def test_v2_delivery_odometer_is_whole(receiver: Receiver) -> None:
    async with Emulator(vehicles=2, management_token=AMT) as emu:
        await emu.deliver_webhook(receiver.url, vehicle_ids=emu.fleet.ids[:1])
    body = receiver.json(0)
    assert body["version"] == "2.0"
    (vehicle,) = body["payload"]["vehicles"]
    odometer = next(d for d in vehicle["data"] if d["path"] == "/odometer")
    assert type(odometer["body"]["distance"]) is int
    assert receiver.headers[0]["User-Agent"] == "Smartcar/2.0"
