"""Regression tests for issue 11, items 5, 6, 12 and 13: what bodies parse, and how the rest fail.

* 5: `parse_webhook` on hostile payloads raises InvalidResponseError, never RecursionError.
* 6: NaN, Infinity and overflowing numbers never reach a model; the error names the field.
* 12: v4 webhook timestamps are epoch milliseconds (or seconds, or ISO text); none is dropped.
* 13: liberal where the meaning is clear, strict where it is not.

Converter-level cases call ``structure`` directly; the ones that matter on the
wire are also served over loopback HTTP by a small ``aiohttp.web`` app.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import TOKEN, assert_no_leftover_tasks

import smartcar_async as sc
from smartcar_async import _converter
from smartcar_async import _models as m
from smartcar_async import _models_account as a
from smartcar_async import _models_makes as mk
from smartcar_async._converter import structure, unstructure
from smartcar_async._models import EPOCH_MS_FROM, parse_timestamp

VID = "veh-1"


# --- loopback helpers ---------------------------------------------------------


@attrs.define
class Canned:
    """What the stub answers per (method, path under the vehicle): status and raw body text."""

    answers: dict[tuple[str, str], tuple[int, str]] = attrs.Factory(dict)


@contextlib.asynccontextmanager
async def serve(canned: Canned) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        prefix = f"/v2.0/vehicles/{VID}"
        leaf = request.path[len(prefix) :] if request.path.startswith(prefix) else request.path
        status, text = canned.answers.get((request.method, leaf), (404, '{"type":"X"}'))
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def vehicle_on(canned: Canned) -> AsyncIterator[sc.Vehicle]:
    async with serve(canned) as url:
        with anyio.fail_after(10):
            async with sc.Client(api_origin=url, max_retries=0, timeout=5) as client:
                yield client.vehicle(VID, access_token=TOKEN)
    await assert_no_leftover_tasks()


def envelope(*items: str) -> str:
    """A batch envelope written as text, so items may hold NaN, 1e400, anything."""
    return '{"responses":[' + ",".join(items) + "]}"


def item(path: str, body: str, code: int = 200) -> str:
    return f'{{"path":"{path}","code":{code},"headers":{{}},"body":{body}}}'


def _invalid(cls: type, body: object) -> sc.InvalidResponseError:
    with pytest.raises(sc.InvalidResponseError) as info:
        structure(cls, body)
    return info.value


# --- item 6: NaN, Infinity, overflow --------------------------------------------


@pytest.mark.parametrize(
    ("cls", "text", "field", "got"),
    [
        (m.Odometer, '{"distance": NaN}', "distance", "NaN"),
        (m.Odometer, '{"distance": Infinity}', "distance", "Infinity"),
        (m.Odometer, '{"distance": -Infinity}', "distance", "-Infinity"),
        (m.Odometer, '{"distance": 1e400}', "distance", "Infinity"),  # json reads it as inf
        (m.Location, '{"latitude": 1, "longitude": -1e999}', "longitude", "-Infinity"),
        (m.Fuel, '{"range": null, "percentRemaining": NaN}', "percentRemaining", "NaN"),
        (
            m.NominalCapacity,
            '{"availableCapacities": [{"capacity": 1}, {"capacity": NaN}]}',
            "availableCapacities[1].capacity",
            "NaN",
        ),
        (
            m.ServiceHistory,
            '[{"serviceCost": {"totalCost": Infinity}}]',
            "[0].serviceCost.totalCost",
            "Infinity",
        ),
        (mk.TeslaBattery, '{"percentRemaining": 0.5, "range": NaN}', "range", "NaN"),
        (m.Response, '{"a": {"b": [1, NaN]}}', "a.b[1]", "NaN"),
        (mk.TeslaAttributes, '{"somethingNew": {"x": Infinity}}', "somethingNew.x", "Infinity"),
        (
            mk.BmwChargeRecords,
            '{"records": [{"location": {"lat": NaN}}]}',
            "records[0].location.lat",
            "NaN",
        ),
    ],
)
def test_non_finite_numbers_never_reach_a_model(cls: type, text: str, field: str, got: str) -> None:
    err = _invalid(cls, json.loads(text))
    assert err.field == field
    assert f"got {got}" in str(err)


@pytest.mark.parametrize(
    ("cls", "body", "field", "reason"),
    [
        (m.Odometer, {"distance": 10**400}, "distance", "a number in float range"),
        (m.Attributes, {"id": "i", "make": "m", "model": "x", "year": 10**30}, "year", "64-bit"),
        (
            m.Permissions,
            {"permissions": [], "paging": {"count": -(2**70), "offset": 0}},
            "paging.count",
            "64-bit",
        ),
        (m.Response, {"n": 10**5000}, "n", "at most 4,000 digits"),
    ],
)
def test_huge_integers_are_refused_by_name(
    cls: type, body: object, field: str, reason: str
) -> None:
    err = _invalid(cls, body)
    assert err.field == field
    assert reason in str(err)


def test_largest_64_bit_integer_still_fits() -> None:
    body = {"permissions": [], "paging": {"count": 2**63 - 1, "offset": 0}}
    assert structure(m.Permissions, body).paging.count == 2**63 - 1


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [65, 500, 50_000])
def test_deep_nesting_in_raw_json_is_refused(depth: int) -> None:
    # 50,000 levels is beyond any recursive walk: the check is iterative.
    err = _invalid(m.Response, {"deep": _nested(depth)})
    assert err.field is not None
    assert err.field.startswith("deep[0][0]")
    assert "at most 64 levels of nesting" in str(err)
    assert structure(m.Response, {"deep": _nested(62)}).body["deep"] == _nested(62)


@pytest.mark.parametrize(
    "body",
    [
        {"distance": _nested(5000)},
        {"doors": _nested(5000), "isLocked": True},
        {"activeCodes": [{"code": "P1", "timestamp": _nested(3000)}]},
    ],
)
def test_deep_nesting_in_typed_fields_is_a_type_error(body: dict[str, Any]) -> None:
    for cls in (m.Odometer, m.LockStatus, m.DiagnosticTroubleCodes):
        with contextlib.suppress(sc.InvalidResponseError):
            structure(cls, body)


def test_wrong_types_and_missing_keys_name_the_field() -> None:
    assert _invalid(m.Odometer, {"distance": "12"}).field == "distance"
    assert _invalid(m.Odometer, {}).field == "distance"
    assert _invalid(m.Attributes, {"id": "i", "make": "m", "model": "x"}).field == "year"
    err = _invalid(m.LockStatus, {"isLocked": True, "doors": [{}, {}, {"type": "d", "status": 3}]})
    assert err.field == "doors[0].type"
    assert "and 4 more problems" in str(err)
    err = _invalid(
        m.LockStatus, {"isLocked": True, "doors": [{"type": "a", "status": float("nan")}]}
    )
    assert err.field == "doors[0].status"
    assert str(err).endswith("expected a string, got NaN")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1725547680, datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        (1725547680000, datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        (1725547680.5, datetime(2024, 9, 5, 14, 48, 0, 500000, tzinfo=UTC)),
        ("2024-09-05T14:48:00Z", datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
    ],
)
def test_rest_timestamps_take_the_same_rule(value: object, expected: datetime) -> None:
    code = structure(m.DiagnosticTroubleCode, {"code": "P1", "timestamp": value})
    assert code.timestamp == expected


@pytest.mark.parametrize(
    "value",
    [True, -1, 10**30, 1e300, float("nan"), "soon", "9999-12-31T23:59:59-23:59", [], {}],
)
def test_unreadable_timestamps_name_the_field(value: object) -> None:
    err = _invalid(m.DiagnosticTroubleCodes, {"activeCodes": [{"code": "P", "timestamp": value}]})
    assert err.field == "activeCodes[0].timestamp"


async def test_nan_over_the_wire_names_the_field_for_a_single_read_and_in_a_batch() -> None:
    lock = (
        '{"isLocked": true, "doors": [{"type": "fl", "status": "OPEN"},'
        '{"type": "fr", "status": "OPEN"}, {"type": "bl", "status": NaN}]}'
    )
    canned = Canned(
        {
            ("GET", "/odometer"): (200, '{"distance": NaN}'),
            ("POST", "/batch"): (
                200,
                envelope(
                    item("/odometer", '{"distance": 1e400}'),
                    item("/security", lock),
                    item("/location", '{"latitude": 1, "longitude": 2}'),
                ),
            ),
        }
    )
    async with vehicle_on(canned) as car:
        with pytest.raises(sc.InvalidResponseError) as single:
            await car.odometer()
        assert single.value.field == "distance"
        odometer, security, location = await _gather(
            car.odometer(), car.lock_status(), car.location()
        )
    assert isinstance(odometer, sc.InvalidResponseError)
    assert odometer.field == "distance"
    assert isinstance(security, sc.InvalidResponseError)
    assert security.field == "doors[2].status"
    assert location == sc.Location(1.0, 2.0, meta=location.meta)


async def _gather(*calls: Any) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def run(i: int, call: Any) -> None:
        try:
            results[i] = await call
        except sc.SmartcarError as exc:
            results[i] = exc

    async with anyio.create_task_group() as tg:
        for i, call in enumerate(calls):
            tg.start_soon(run, i, call)
    return results


# Hostile JSON values: every scalar that has tripped a parser somewhere.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**19, -(10**19), 10**400, 2**63, 2**63 - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(["2024-09-05T14:48:00Z", "9999-12-31T23:59:59-23:59", "1e400", "NaN"])
)
_hostile = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
) | st.integers(60, 200).map(_nested)


def _keys_of(cls: type) -> list[str]:
    if not attrs.has(cls):  # `Signals`, a mapping the v3 executor builds
        return []
    return [_converter._camel(f.name) for f in attrs.fields(cls) if f.name != "meta"]


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[type, object]:
    cls = draw(st.sampled_from(sorted(_converter._PLANS, key=lambda c: c.__name__)))
    if draw(st.booleans()):
        keys = st.sampled_from(_keys_of(cls) or ["x"])
        return cls, draw(st.dictionaries(keys, _hostile, max_size=6))
    return cls, draw(_hostile)


def _finite_all_the_way(value: object) -> bool:
    text = json.dumps(value)  # raises on anything not JSON-ready
    json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} reached a model"))
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies())
def test_any_body_gives_a_model_or_our_error_only(case: tuple[type, object]) -> None:
    cls, body = case
    model: Any
    try:
        model = structure(cls, body)
    except sc.InvalidResponseError as err:
        message = str(err)
    else:
        message = ""
    if message:
        assert message.startswith(f"Invalid {cls.__name__} response")
        return
    assert type(model) is cls
    assert _finite_all_the_way(unstructure(model))
    repr(model)


# --- item 13: liberal where the meaning is clear -----------------------------------


def test_an_int_reads_as_a_float() -> None:
    limit = structure(m.ChargeLimit, {"limit": 1})
    assert limit.limit == 1.0
    assert type(limit.limit) is float
    assert (
        structure(m.TirePressure, dict.fromkeys(_keys_of(m.TirePressure), 230)).front_left == 230.0
    )


def test_optional_fields_may_be_missing_or_null() -> None:
    assert structure(m.Fuel, {}) == m.Fuel()
    assert structure(m.Fuel, {"range": None, "amountRemaining": 3}) == m.Fuel(amount_remaining=3.0)
    lock = structure(
        m.LockStatus, {"isLocked": False, "doors": None, "windows": None, "chargingPort": None}
    )
    assert (lock.doors, lock.windows, lock.charging_port) == ((), (), ())
    assert structure(a.Compatibility, {"compatible": True, "capabilities": None}).capabilities == ()
    assert structure(m.NominalCapacity, {"capacity": None, "url": None}) == m.NominalCapacity()
    assert structure(mk.FordChargingSchedules, {"weekday": None}) == mk.FordChargingSchedules()


def test_tesla_battery_level_and_range_may_be_null() -> None:
    battery = structure(
        mk.TeslaBattery, {"percentRemaining": None, "range": None, "heaterOn": True}
    )
    assert (battery.percent_remaining, battery.range, battery.heater_on) == (None, None, True)
    assert structure(mk.TeslaBattery, {}) == mk.TeslaBattery()


# Smartcar's Java SDK fixture: serviceDetails is one object, not an array.
JAVA_SERVICE_HISTORY = [
    {
        "serviceId": 12345,
        "serviceDate": "2022-07-10T16:20:00.000Z",
        "odometerDistance": 50000,
        "serviceTasks": [{"taskId": 1, "taskDescription": "oil change"}],
        "serviceDetails": {"type": "dealership"},
        "serviceCost": {"totalCost": 100, "currency": "USD"},
    },
    {
        "serviceId": 23456,
        "serviceDate": "2023-01-15T10:30:00.000Z",
        "odometerDistance": 62000,
        "serviceTasks": [],
        "serviceDetails": [{"type": "Service Details Type 1", "value": None}],
        "serviceCost": {"totalCost": 150, "currency": "USD"},
    },
    {"serviceId": None, "serviceDetails": None, "serviceTasks": None},
]


def test_service_details_as_an_object_or_an_array_or_null() -> None:
    history = structure(m.ServiceHistory, JAVA_SERVICE_HISTORY)
    first, second, third = history.records
    assert first.service_details == (m.ServiceDetail(type="dealership"),)
    assert first.service_id == "12345"
    assert first.odometer_distance == 50000.0
    assert second.service_details == (m.ServiceDetail(type="Service Details Type 1"),)
    assert (third.service_details, third.service_tasks) == ((), ())
    err = _invalid(m.ServiceHistory, [{}, {"serviceDetails": "dealership"}])
    assert err.field == "[1].serviceDetails"
    assert "expected an array or an object, got string" in str(err)
    err = _invalid(m.ServiceHistory, [{"serviceDetails": {"type": 5}}])
    assert err.field == "[0].serviceDetails.type"


@pytest.mark.parametrize("body", [None, {}, {"status": None}])
def test_an_empty_answer_to_a_write_means_success(body: object) -> None:
    assert structure(m.Status, body) == m.Status("success")
    assert structure(m.Action, body) == m.Action("success", "")
    assert structure(m.Action, {"status": "success"}).message == ""
    # Reads stay strict: an empty body is no odometer.
    assert _invalid(m.Odometer, body).field in (None, "distance")


@pytest.mark.parametrize(("status", "text"), [(200, "{}"), (200, ""), (204, "")])
async def test_unsubscribe_and_disconnect_accept_an_empty_answer(status: int, text: str) -> None:
    canned = Canned(
        {
            ("DELETE", "/webhooks/wh-1"): (status, text),
            ("DELETE", "/application"): (status, text),
            ("POST", "/security"): (status, text),
        }
    )
    async with vehicle_on(canned) as car:
        assert (await car.unsubscribe("amt-PARSING-1", "wh-1")).status == "success"
        assert (await car.disconnect()).status == "success"
        assert (await car.lock()).status == "success"


async def test_tesla_battery_nulls_over_the_wire() -> None:
    body = '{"percentRemaining": null, "range": null, "rangeIdeal": 40}'
    async with vehicle_on(Canned({("GET", "/tesla/battery"): (200, body)})) as car:
        battery = await car.tesla.battery()
    assert (battery.percent_remaining, battery.range, battery.range_ideal) == (None, None, 40.0)


# --- items 5 and 12: webhooks ----------------------------------------------------

# The shape of a real v4 VEHICLE_STATE delivery (epoch milliseconds everywhere).
V4_STATE: dict[str, Any] = {
    "eventId": "0b7f5e0e-0000-4000-8000-000000000001",
    "eventType": "VEHICLE_STATE",
    "data": {
        "user": {"id": "u-1"},
        "vehicle": {"id": "v-1", "make": "VOLKSWAGEN", "model": "ID.7", "year": 2025},
        "signals": [
            {
                "code": "odometer-traveleddistance",
                "name": "TraveledDistance",
                "group": "Odometer",
                "body": {"value": 16342, "unit": "km"},
                "meta": {"oemUpdatedAt": 1767920000000, "retrievedAt": 1767920009000},
                "status": {"value": "SUCCESS"},
            },
            {
                "code": "vehicleidentification-vin",
                "name": "VIN",
                "group": "VehicleIdentification",
                "body": {"value": "1XKYP49X1RJ701910"},
                "meta": {"oemUpdatedAt": 0, "retrievedAt": 0},
                "status": {"value": "SUCCESS"},
            },
            {
                "code": "charge-chargerate",
                "name": "ChargeRate",
                "group": "Charge",
                "body": None,
                "status": {
                    "value": "ERROR",
                    "error": {"type": "VEHICLE_STATE", "code": "NOT_CHARGING"},
                },
            },
        ],
    },
    "triggers": [{"type": "SIGNAL_UPDATED", "signal": {"code": "odometer-traveleddistance"}}],
    "meta": {
        "deliveryId": "d-1",
        "deliveredAt": 1767920009942,
        "version": "4.0",
        "webhookId": "w-1",
        "webhookName": "AutoData",
        "mode": "LIVE",
        "signalCount": 3,
    },
}
DELIVERED = datetime(2026, 1, 9, 0, 53, 29, 942000, tzinfo=UTC)


def _with(body: dict[str, Any], **meta: Any) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(body))
    copied["meta"].update(meta)
    return copied


def test_a_real_v4_delivery_keeps_every_timestamp() -> None:
    payload = sc.parse_webhook(json.dumps(V4_STATE).encode())
    assert payload.delivered_at == DELIVERED
    assert (payload.event_type, payload.mode, payload.delivery_id) == (
        "VEHICLE_STATE",
        "LIVE",
        "d-1",
    )
    odometer, vin, rate = payload.signals
    assert odometer == sc.WebhookSignal(
        code="odometer-traveleddistance",
        name="TraveledDistance",
        group="Odometer",
        body={"value": 16342, "unit": "km"},
        status="SUCCESS",
        oem_updated_at=datetime(2026, 1, 9, 0, 53, 20, tzinfo=UTC),
        retrieved_at=datetime(2026, 1, 9, 0, 53, 29, tzinfo=UTC),
    )
    assert vin.oem_updated_at == datetime(1970, 1, 1, tzinfo=UTC)  # Smartcar's 0: a static value
    assert (rate.status, rate.body, rate.retrieved_at) == ("ERROR", None, None)
    assert rate.error == {"type": "VEHICLE_STATE", "code": "NOT_CHARGING"}
    assert payload.raw == V4_STATE
    json.dumps(unstructure(payload))


@pytest.mark.parametrize(
    "delivered",
    [
        1767920009942,
        1767920009.942,
        "2026-01-09T00:53:29.942Z",
        "2026-01-09T01:53:29.942+01:00",
        "2026-01-09T00:53:29.942",
    ],
)
def test_delivered_at_as_epoch_ms_seconds_or_iso(delivered: object) -> None:
    payload = sc.parse_webhook(_with(V4_STATE, deliveredAt=delivered))
    assert payload.delivered_at is not None
    assert abs(payload.delivered_at - DELIVERED) < timedelta(microseconds=2)
    assert payload.delivered_at.tzinfo is not None


def test_epoch_numbers_switch_to_milliseconds_at_1e11() -> None:
    below = parse_timestamp(EPOCH_MS_FROM - 1)
    at = parse_timestamp(EPOCH_MS_FROM)
    assert below.year == 5138  # seconds
    assert at == datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)  # milliseconds
    assert parse_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("delivered", [None, "absent"])
def test_a_missing_or_null_delivered_at_is_none(delivered: object) -> None:
    body = _with(V4_STATE, deliveredAt=delivered)
    if delivered == "absent":
        del body["meta"]["deliveredAt"]
    assert sc.parse_webhook(body).delivered_at is None


@pytest.mark.parametrize(
    "delivered", ["yesterday", True, -1, 10**20, 1e300, float("inf"), [1767920009942], {}]
)
def test_an_unreadable_delivered_at_is_never_dropped_silently(delivered: object) -> None:
    with pytest.raises(sc.InvalidResponseError) as info:
        sc.parse_webhook(_with(V4_STATE, deliveredAt=delivered))
    assert info.value.field == "meta.deliveredAt"


def test_an_unreadable_signal_timestamp_names_its_signal() -> None:
    body = json.loads(json.dumps(V4_STATE))
    body["data"]["signals"][1]["meta"]["retrievedAt"] = "later"
    with pytest.raises(sc.InvalidResponseError) as info:
        sc.parse_webhook(body)
    assert info.value.field == "data.signals[1].meta.retrievedAt"


def test_v2_and_v4_verify_events_with_epoch_times() -> None:
    v4 = {
        "eventId": "e",
        "eventType": "VERIFY",
        "data": {"challenge": "abc"},
        "meta": {"version": "4.0", "webhookId": "w", "deliveredAt": 1767920009942},
    }
    assert sc.parse_webhook(v4).delivered_at == DELIVERED
    assert sc.challenge_response("amt", v4) == {"challenge": sc.hash_challenge("amt", "abc")}
    v2 = {"version": "2.0", "webhookId": "w", "eventName": "verify", "payload": {"challenge": "c"}}
    assert sc.parse_webhook({**v2, "deliveredAt": 1767920009}).delivered_at == DELIVERED.replace(
        microsecond=0
    )
    assert sc.parse_webhook(v2).signals == ()


def _deep_text(depth: int) -> bytes:
    return ('{"eventType":"X","data":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()


def _deep_mapping(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {}
    top = {"eventType": "X", "data": inner}
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    return top


def _cyclic() -> dict[str, Any]:
    body: dict[str, Any] = {"eventType": "X"}
    body["data"] = body
    return body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_deep_text(100_000), id="100k-deep-text"),
        pytest.param(_deep_text(900), id="900-deep-text"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="deep-array"),
        pytest.param(_deep_mapping(100_000), id="100k-deep-mapping"),
        pytest.param(_cyclic(), id="cyclic-mapping"),
        pytest.param(b"\xff\xfe\xfa", id="not-utf8"),
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param(b'{"eventType": "X", "data": {"v": NaN}}', id="nan"),
        pytest.param(b'{"eventType": "X", "data": {"v": 1e400}}', id="1e400"),
        pytest.param(b'{"eventType": "X", "n": ' + b"9" * 5000 + b"}", id="5000-digit-int"),
        pytest.param({"eventType": "X", "n": 10**5000}, id="5000-digit-int-mapping"),
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b'"verify"', id="string"),
        pytest.param(b"", id="empty"),
        pytest.param({"eventType": 7}, id="event-type-number"),
        pytest.param({"eventType": "X", "meta": "m"}, id="meta-string"),
        pytest.param({"eventType": "X", "data": {"signals": {}}}, id="signals-object"),
        pytest.param({"eventType": "X", "data": {"signals": [1]}}, id="signal-number"),
        pytest.param({"eventType": "X", "data": {"signals": [{"meta": []}]}}, id="signal-meta"),
        pytest.param({"eventName": "dynamic", "payload": [1]}, id="v2-payload-array"),
    ],
)
def test_hostile_webhooks_raise_only_invalid_response_error(body: Any) -> None:
    with pytest.raises(sc.InvalidResponseError) as info:
        sc.parse_webhook(body)
    assert len(str(info.value)) < 5000


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64) | _hostile.map(json.dumps).map(str.encode))
def test_any_bytes_parse_or_raise_invalid_response_error(body: bytes | str) -> None:
    try:
        payload = sc.parse_webhook(body)
    except sc.InvalidResponseError:
        return
    assert _finite_all_the_way(unstructure(payload))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["eventType", "eventName", "eventId", "data", "payload", "meta", "mode"]),
        _hostile,
    )
)
def test_any_object_parses_or_raises_invalid_response_error(body: dict[str, Any]) -> None:
    try:
        payload = sc.parse_webhook(body)
    except sc.InvalidResponseError as err:
        message = str(err)
    else:
        message = ""
    if message:
        assert message.startswith("Invalid WebhookPayload response")
        return
    assert _finite_all_the_way(unstructure(payload))
    for when in [payload.delivered_at, *(s.retrieved_at for s in payload.signals)]:
        assert when is None or when.tzinfo is not None


def test_parse_webhook_rejects_non_json_types_as_type_error() -> None:
    with pytest.raises(TypeError):
        sc.parse_webhook(5)  # type: ignore[arg-type]
