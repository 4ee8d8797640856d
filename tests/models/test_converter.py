from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcar_async import _converter
from smartcar_async import _models as m
from smartcar_async import _models_account as a
from smartcar_async import _models_makes as mk
from smartcar_async._converter import structure, unstructure
from smartcar_async._exceptions import InvalidResponseError
from smartcar_async._models import EMPTY_META, Meta
from smartcar_async._v3_models import BUILDERS as V3_BUILDERS

META = Meta(
    data_age=datetime(2019, 10, 24, 0, 43, 46, tzinfo=UTC),
    unit_system="metric",
    request_id="26c14915-0c26-43c5-8e42-9edfc2a66a0f",
)

# Bodies quoted from the API reference (docs, SDK fixtures), one per model.
FIXTURES: dict[type, Any] = {
    m.Vin: {"vin": "1234A67Q90F2T4567"},
    m.Charge: {"isPluggedIn": True, "state": "FULLY_CHARGED"},
    m.Battery: {"percentRemaining": 0.3, "range": 40.5},
    m.BatteryCapacity: {"capacity": 28},
    m.NominalCapacity: {
        "availableCapacities": [
            {"capacity": 70.9, "description": None},
            {"capacity": 80.9, "description": None},
            {"capacity": 90.9, "description": "BEV:Extended Range"},
        ],
        "capacity": {"nominal": 80.9, "source": "USER_SELECTED"},
        "url": "https://connect.smartcar.com/battery-capacity?vehicle_id=36ab27d0",
    },
    m.Fuel: {"amountRemaining": 53.2, "percentRemaining": 0.3, "range": 40.5},
    m.TirePressure: {
        "backLeft": 219.3,
        "backRight": 219.2,
        "frontLeft": 219.1,
        "frontRight": 219.0,
    },
    m.EngineOil: {"lifeRemaining": 0.35},
    m.Odometer: {"distance": 37829},
    m.Location: {"latitude": 37.4292, "longitude": 122.1381},
    m.Attributes: {
        "id": "36ab27d0-fd9d-4455-823a-ce30af709ffc",
        "make": "TESLA",
        "model": "Model S",
        "year": 2014,
    },
    m.Permissions: {"paging": {"count": 25, "offset": 10}, "permissions": ["read_vehicle_info"]},
    m.ChargeLimit: {"limit": 0.8},
    m.LockStatus: {
        "isLocked": False,
        "doors": [
            {"type": "frontLeft", "status": "CLOSED"},
            {"type": "frontRight", "status": "OPEN"},
            {"type": "backRight", "status": "CLOSED"},
            {"type": "backLeft", "status": "LOCKED"},
        ],
        "windows": [{"type": "backRight", "status": "UNKNOWN"}],
        "sunroof": [{"type": "sunroof", "status": "CLOSED"}],
        "storage": [{"type": "rear", "status": "UNKNOWN"}, {"type": "front", "status": "CLOSED"}],
        "chargingPort": [{"type": "chargingPort", "status": "CLOSED"}],
    },
    m.ServiceHistory: [
        {
            "serviceId": None,
            "odometerDistance": 46047.22,
            "serviceDate": "2023-06-28T22:21:41.583Z",
            "serviceTasks": [
                {"taskId": "3262", "taskDescription": "Service Task 0"},
                {"taskId": 3041, "taskDescription": None},
                {"taskId": None, "taskDescription": None},
            ],
            "serviceDetails": [
                {"type": "Service Details Type 0", "value": "Service Details Value 0"},
                {"type": "Service Details Type 1", "value": None},
            ],
            "serviceCost": {"totalCost": None, "currency": None},
        },
        {"serviceId": 17, "serviceDate": None},
    ],
    m.DiagnosticSystemStatus: {
        "systems": [
            {
                "systemId": "SYSTEM_TPMS",
                "status": "ALERT",
                "description": "Left rear tire sensor battery low",
            },
            {"systemId": "SYSTEM_AIRBAG", "status": "OK", "description": None},
        ]
    },
    m.DiagnosticTroubleCodes: {
        "activeCodes": [
            {"code": "P302D", "timestamp": "2024-09-05T14:48:00.000Z"},
            {"code": "xxxxx", "timestamp": None},
        ]
    },
    m.Action: {"message": "Successfully sent request to vehicle", "status": "success"},
    m.Status: {"status": "success"},
    m.Subscribe: {
        "webhookId": "d0846f13-ef13-4014-9d90-6439e1dd0884",
        "vehicleId": "902da0a6-796b-4b7e-b092-639677ed1033",
    },
    m.Response: {"anything": [1, "two", None], "nested": {"ok": True}},
    a.User: {"id": "e0514ef4-5226-11e8-8c13-8f6e8f02e27e"},
    a.Vehicles: {
        "paging": {"count": 25, "offset": 10},
        "vehicles": ["36ab27d0-fd9d-4455-823a-ce30af709ffc"],
    },
    a.Connections: {
        "connections": [
            {
                "userId": "u1",
                "vehicleId": "v1",
                "connectedAt": "2021-11-03T21:18:36.000Z",
                "mode": "live",
            },
            {"userId": "u2", "vehicleId": "v2"},
        ],
        "paging": {"cursor": "AES-256-CBC::base64::utf8::abc", "count": 1},
    },
    a.DeleteConnections: {"connections": [{"userId": "u1", "vehicleId": "v1"}]},
    a.Compatibility: {
        "compatible": True,
        "reason": None,
        "capabilities": [
            {
                "capable": False,
                "endpoint": "/engine/oil",
                "permission": "read_engine_oil",
                "reason": "SMARTCAR_NOT_CAPABLE",
            },
            {"capable": True, "endpoint": "/battery", "permission": "read_battery", "reason": None},
        ],
    },
    a.CompatibilityMatrix: {
        "TESLA": [
            {
                "model": "Model 3",
                "startYear": 2017,
                "endYear": 2024,
                "type": "BEV",
                "endpoints": ["/battery", "/charge"],
                "permissions": ["read_battery", "read_charge"],
            }
        ],
        "LAND ROVER": [],
    },
    a.WebhookChallenge: {
        "version": "2.0",
        "webhookId": "5a8e5e38-1e12-4011-a36d-56f120053f9e",
        "eventName": "verify",
        "payload": {"challenge": "3ce6de2d-8cda-4ff3-b1db-2acc5d2e3a3b"},
    },
    a.WebhookPayload: {
        "eventId": "evt-1",
        "eventType": "VEHICLE_STATE",
        "data": {"vehicle": {"id": "v1"}, "signals": []},
        "meta": {
            "version": "4.0",
            "webhookId": "w1",
            "webhookName": "state",
            "deliveryId": "d1",
            "deliveredAt": "2025-05-09T17:27:26.712Z",
        },
    },
    mk.ChargeAmmeter: {"amperage": 30},
    mk.ChargeWattmeter: {"wattage": 3.5},
    mk.ChargeVoltmeter: {"voltage": 240},
    mk.ChargeCompletion: {"time": "2022-01-13T22:59:00.000Z"},
    mk.TeslaChargeSchedule: {
        "departureTime": {"enabled": False, "time": None},
        "startTime": {"enabled": True, "time": "18:30"},
    },
    mk.Compass: {"direction": "NE", "heading": 45},
    mk.Speedometer: {"speed": 84.32},
    mk.Thermometer: {"temperature": 21.5},
    mk.CabinClimate: {"status": "ON", "temperature": 20},
    mk.TeslaBattery: {
        "heaterOn": None,
        "maxRangeChargeCounter": None,
        "notEnoughPowerToHeat": True,
        "percentRemaining": 0.3,
        "percentRemainingUsable": 0.29,
        "range": 40.5,
        "rangeEstimated": 39.01,
        "rangeIdeal": 40.5,
    },
    mk.TeslaAttributes: {
        "driveUnit": {"front": "PM216MOSFET", "rear": "NoneOrSmall"},
        "driverAssistVersion": "TeslaAP3",
        "efficiencyPackage": "MY2021",
        "firmwareVersion": "2022.8.10.12 0ce482dac45d",
        "id": "36ab27d0-fd9d-4455-823a-ce30af709ffc",
        "make": "TESLA",
        "model": "Model S",
        "nickname": "Tommy",
        "performancePackage": "Base",
        "sentryMode": {"available": False, "enabled": True},
        "style": {"exteriorColor": "SolidBlack", "exteriorTrim": "Black", "interiorTrim": "Black2"},
        "trimBadging": "74d",
        "wheel": {"diameter": 482.6, "style": "Apollo"},
        "year": 2022,
        "atHome": True,
        "somethingNew": {"x": 1},
    },
    mk.NissanChargeSchedule: {
        "chargeSchedules": [
            {
                "end": "2020-01-01T02:00:00.000Z",
                "start": "2020-01-01T01:00:00.000Z",
                "days": ["MONDAY", "WEDNESDAY", "FRIDAY"],
            }
        ]
    },
    mk.FordChargeScheduleByLocation: {
        "chargingLocations": [
            {
                "chargeLimit": 0.8,
                "chargingSchedules": {
                    "weekday": [{"end": "17:00", "start": "09:00"}],
                    "weekend": [],
                },
                "location": {"latitude": 48.8566, "longitude": 2.3522},
            }
        ]
    },
    mk.BmwChargeRecords: {
        "records": [
            {
                "chargeStart": "2023-03-08T12:54:44Z",
                "chargeEnd": "2023-03-08T14:14:44Z",
                "location": "Cockfosters Road, Barnet, EN4 0",
                "energy": 34.22998046875,
                "isPublic": True,
                "startPercentRemaining": 0.57,
                "endPercentRemaining": 1,
                "chargingType": "DC",
            }
        ]
    },
}

PLANNED = sorted(_converter._PLANS, key=lambda cls: cls.__name__)


def test_every_response_model_has_a_plan_and_a_fixture() -> None:
    models = {
        obj
        for module in (m, a, mk)
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type) and attrs.has(obj)
    }
    # The v3 models have hand-written builders (`_v3_models.BUILDERS`).
    assert set(_converter._PLANS) == (models - {m.Meta, a.Access}) | set(V3_BUILDERS)
    top_level = {cls for cls in models if "meta" in attrs.fields_dict(cls)}
    assert top_level | {a.WebhookChallenge, a.WebhookPayload} <= set(FIXTURES)


@pytest.mark.parametrize("cls", list(FIXTURES), ids=lambda cls: cls.__name__)
def test_fixture_structures_and_unstructures(cls: type[Any]) -> None:
    body = copy.deepcopy(FIXTURES[cls])
    model = structure(cls, body, META)
    assert type(model) is cls
    if "meta" in attrs.fields_dict(cls):
        assert model.meta is META
    assert body == FIXTURES[cls]  # the input is not mutated
    json.dumps(unstructure(model))  # JSON-ready all the way down
    assert pickle.loads(pickle.dumps(model)) == model  # workers pass models between processes


@pytest.mark.parametrize("cls", list(FIXTURES), ids=lambda cls: cls.__name__)
def test_meta_defaults_to_the_shared_empty_meta(cls: type[Any]) -> None:
    model = structure(cls, FIXTURES[cls])
    if "meta" in attrs.fields_dict(cls):
        assert model.meta is EMPTY_META


# --- values -----------------------------------------------------------------


def test_core_values() -> None:
    odometer = structure(m.Odometer, {"distance": 37829}, META)
    assert odometer == m.Odometer(37829.0, meta=META)
    assert type(odometer.distance) is float
    assert structure(m.BatteryCapacity, {"capacity": 28}).capacity == 28.0
    assert structure(
        m.Fuel, {"amountRemaining": None, "percentRemaining": None, "range": None}
    ) == (m.Fuel())
    assert structure(m.Fuel, {}) == m.Fuel()
    assert structure(m.Attributes, FIXTURES[m.Attributes]).year == 2014
    permissions = structure(m.Permissions, FIXTURES[m.Permissions])
    assert permissions == m.Permissions(("read_vehicle_info",), m.Paging(count=25, offset=10))


def test_nominal_capacity() -> None:
    nominal = structure(m.NominalCapacity, FIXTURES[m.NominalCapacity])
    assert nominal.available_capacities[2] == m.AvailableCapacity(90.9, "BEV:Extended Range")
    assert nominal.capacity == m.NominalCapacityValue(80.9, "USER_SELECTED")
    ha: dict[str, Any] = {
        "availableCapacities": [],
        "capacity": {"nominal": 82, "source": "SMARTCAR"},
        "url": None,
    }
    assert structure(m.NominalCapacity, ha) == m.NominalCapacity(
        (), m.NominalCapacityValue(82.0, "SMARTCAR"), None
    )


def test_lock_status_full_and_partial() -> None:
    full = structure(m.LockStatus, FIXTURES[m.LockStatus])
    assert full.doors[1] == m.OpenStatus("frontRight", "OPEN")
    assert full.charging_port == (m.OpenStatus("chargingPort", "CLOSED"),)
    assert isinstance(full.doors, tuple)
    partial = structure(m.LockStatus, {"isLocked": True, "doors": []})
    assert partial == m.LockStatus(is_locked=True)


def test_service_history_from_a_bare_array() -> None:
    history = structure(m.ServiceHistory, FIXTURES[m.ServiceHistory], META)
    first, second = history.records
    assert first.service_id is None
    assert first.service_date == datetime(2023, 6, 28, 22, 21, 41, 583000, tzinfo=UTC)
    assert [task.task_id for task in first.service_tasks] == ["3262", "3041", None]
    assert first.service_cost == m.ServiceCost()
    assert second == m.ServiceRecord(service_id="17")
    assert structure(m.ServiceHistory, []) == m.ServiceHistory(())


def test_diagnostics() -> None:
    dtcs = structure(m.DiagnosticTroubleCodes, FIXTURES[m.DiagnosticTroubleCodes])
    assert dtcs.active_codes == (
        m.DiagnosticTroubleCode("P302D", datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        m.DiagnosticTroubleCode("xxxxx", None),
    )
    systems = structure(m.DiagnosticSystemStatus, FIXTURES[m.DiagnosticSystemStatus]).systems
    assert systems[1] == m.DiagnosticSystem("SYSTEM_AIRBAG", "OK", None)


@pytest.mark.parametrize("body", [[1, "x"], "text", None, 3.5, {"k": [None]}])
def test_response_keeps_any_json_value(body: object) -> None:
    response = structure(m.Response, body, META)
    assert response.body is body
    assert response.meta is META


def test_account_models() -> None:
    connections = structure(a.Connections, FIXTURES[a.Connections])
    assert connections.connections[0].connected_at == datetime(2021, 11, 3, 21, 18, 36, tzinfo=UTC)
    assert connections.connections[1] == a.Connection("u2", "v2")
    assert connections.paging == a.PagingCursor("AES-256-CBC::base64::utf8::abc")
    assert structure(a.Connections, {"connections": [], "paging": {"cursor": None}}).paging == (
        a.PagingCursor(None)
    )
    compat = structure(a.Compatibility, FIXTURES[a.Compatibility])
    assert compat.capabilities[0] == a.Capability(
        "read_engine_oil", "/engine/oil", False, "SMARTCAR_NOT_CAPABLE"
    )
    assert structure(a.Compatibility, {"compatible": False}) == a.Compatibility(False)


def test_compatibility_matrix_from_a_make_keyed_object() -> None:
    matrix = structure(a.CompatibilityMatrix, FIXTURES[a.CompatibilityMatrix], META)
    assert set(matrix.makes) == {"TESLA", "LAND ROVER"}
    assert matrix.makes["TESLA"][0] == a.CompatibilityMatrixEntry(
        "Model 3", 2017, 2024, "BEV", ("/battery", "/charge"), ("read_battery", "read_charge")
    )
    assert matrix.makes["LAND ROVER"] == ()
    assert matrix.meta is META


def test_tesla_attributes_keep_the_raw_body() -> None:
    body = FIXTURES[mk.TeslaAttributes]
    attributes = structure(mk.TeslaAttributes, body)
    assert attributes.wheel == mk.TeslaWheel(style="Apollo", diameter=482.6)
    assert attributes.sentry_mode == mk.TeslaSentryMode(available=False, enabled=True)
    assert attributes.at_home is True
    assert attributes.raw == body
    assert structure(mk.TeslaAttributes, {}) == mk.TeslaAttributes()


def test_make_models() -> None:
    schedule = structure(mk.TeslaChargeSchedule, FIXTURES[mk.TeslaChargeSchedule])
    assert schedule.start_time == mk.ChargeScheduleTime(True, "18:30")
    ford = structure(mk.FordChargeScheduleByLocation, FIXTURES[mk.FordChargeScheduleByLocation])
    location = ford.charging_locations[0]
    assert location.location == mk.Coordinates(48.8566, 2.3522)
    assert location.charging_schedules == mk.FordChargingSchedules(
        weekday=(mk.FordChargeWindow(start="09:00", end="17:00"),)
    )
    bmw = structure(mk.BmwChargeRecords, FIXTURES[mk.BmwChargeRecords]).records[0]
    assert bmw.end_percent_remaining == 1.0
    assert bmw.charge_start == datetime(2023, 3, 8, 12, 54, 44, tzinfo=UTC)
    assert structure(mk.ChargeCompletion, {"time": None}) == mk.ChargeCompletion(None)


# --- webhooks ----------------------------------------------------------------


def test_webhook_challenge_in_both_layouts() -> None:
    v2 = structure(a.WebhookChallenge, FIXTURES[a.WebhookChallenge])
    assert v2 == a.WebhookChallenge(
        "5a8e5e38-1e12-4011-a36d-56f120053f9e", "3ce6de2d-8cda-4ff3-b1db-2acc5d2e3a3b", "2.0"
    )
    v4_body = {
        "eventId": "e",
        "eventType": "VERIFY",
        "data": {"challenge": "abc"},
        "meta": {"version": "4.0", "webhookId": "w", "deliveredAt": "2025-01-01T00:00:00Z"},
    }
    assert structure(a.WebhookChallenge, v4_body) == a.WebhookChallenge("w", "abc", "4.0")
    bare = {"eventType": "VERIFY", "data": {"challenge": "abc"}}
    assert structure(a.WebhookChallenge, bare) == a.WebhookChallenge(None, "abc", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"eventName": "verify", "payload": {}}, "payload.challenge"),
        ({"eventName": "verify", "payload": {"challenge": 5}}, "payload.challenge"),
        ({"eventName": "verify"}, "payload"),
        ({"eventType": "VERIFY", "data": ["challenge"]}, "data"),
        ({"eventType": "VERIFY", "data": {"challenge": None}}, "data.challenge"),
        ([], None),
    ],
)
def test_webhook_challenge_errors_name_the_wire_path(body: object, field: str | None) -> None:
    with pytest.raises(InvalidResponseError) as info:
        structure(a.WebhookChallenge, body)
    assert info.value.field == field


def test_webhook_payload_v2_and_v4() -> None:
    v2_body = {
        "version": "2.0",
        "webhookId": "865ca68d",
        "eventName": "dynamic",
        "mode": "live",
        "payload": {"vehicles": []},
    }
    v2 = structure(a.WebhookPayload, v2_body)
    assert (v2.event_type, v2.webhook_id, v2.version, v2.mode) == (
        "dynamic",
        "865ca68d",
        "2.0",
        "live",
    )
    assert v2.data == {"vehicles": []}
    assert v2.raw == v2_body
    v4 = structure(a.WebhookPayload, FIXTURES[a.WebhookPayload])
    assert (v4.event_type, v4.event_id, v4.webhook_id, v4.version) == (
        "VEHICLE_STATE",
        "evt-1",
        "w1",
        "4.0",
    )
    assert (v4.webhook_name, v4.delivery_id) == ("state", "d1")
    assert v4.delivered_at == datetime(2025, 5, 9, 17, 27, 26, 712000, tzinfo=UTC)
    assert v4.data == {"vehicle": {"id": "v1"}, "signals": []}


def test_webhook_payload_keeps_ids_and_names_what_does_not_fit() -> None:
    # Deliberately changed with issue 11: a value of the wrong type used to be
    # dropped to None; now it is an InvalidResponseError naming the field.
    numeric_ids = {"eventType": "VERIFY", "eventId": 5, "meta": {"webhookId": 1}}
    payload = structure(a.WebhookPayload, numeric_ids)
    assert (payload.event_id, payload.webhook_id) == ("5", "1")
    assert payload == a.WebhookPayload(
        event_type="VERIFY", event_id="5", webhook_id="1", raw=numeric_ids
    )
    for odd, field in (
        ({"eventType": 7}, "eventType"),
        ({"eventType": "X", "data": "nope"}, "data"),
        ({"eventType": "X", "meta": {"deliveredAt": "whenever"}}, "meta.deliveredAt"),
        ({"eventType": "X", "meta": []}, "meta"),
    ):
        with pytest.raises(InvalidResponseError) as info:
            structure(a.WebhookPayload, odd)
        assert info.value.field == field
    verify = structure(a.WebhookPayload, {"eventName": "verify", "payload": {"challenge": "c"}})
    assert verify.is_verify
    assert verify.challenge == "c"


# --- strict but fair typing ---------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "body", "field", "reason"),
    [
        (m.Odometer, {"distance": True}, "distance", "expected a number, got boolean"),
        (m.Odometer, {"distance": "1.5"}, "distance", "expected a number, got string"),
        (m.Odometer, {"distance": None}, "distance", "expected a number, got null"),
        (m.Odometer, {"distance": 10**400}, "distance", "expected a number in float range"),
        (m.Odometer, {}, "distance", "required field is missing"),
        (m.Vin, {"vin": 1234}, "vin", "expected a string, got number"),
        (m.Charge, {"isPluggedIn": 1, "state": "CHARGING"}, "isPluggedIn", "expected a boolean"),
        (m.Attributes, {**FIXTURES[m.Attributes], "year": 2014.0}, "year", "expected an integer"),
        (m.Attributes, {**FIXTURES[m.Attributes], "year": True}, "year", "expected an integer"),
        (m.Attributes, {**FIXTURES[m.Attributes], "id": 36}, "id", "expected a string, got number"),
        (
            # Epoch numbers are timestamps since issue 11; a negative one is not.
            m.DiagnosticTroubleCodes,
            {"activeCodes": [{"code": "P1", "timestamp": -1725547680}]},
            "activeCodes[0].timestamp",
            "expected an ISO-8601 date-time string or epoch time, got number",
        ),
        (
            m.DiagnosticTroubleCodes,
            {"activeCodes": [{"code": "P1", "timestamp": "05/09/2024"}]},
            "activeCodes[0].timestamp",
            "expected an ISO-8601 date-time string or epoch time, got string",
        ),
        (
            m.Permissions,
            {"permissions": "read_vin", "paging": {"count": 1, "offset": 0}},
            "permissions",
            "expected an array, got string",
        ),
        (m.Permissions, {"permissions": [], "paging": [25, 10]}, "paging", "expected an object"),
        (m.Permissions, {"permissions": [], "paging": {"count": 1}}, "paging.offset", "missing"),
        (
            m.ServiceHistory,
            [{}, {"serviceTasks": [{"taskId": 1.5}]}],
            "[1].serviceTasks[0].taskId",
            "expected a string or integer id, got number",
        ),
        (m.ServiceHistory, [{"serviceId": True}], "[0].serviceId", "got boolean"),
    ],
)
def test_type_errors_name_the_field(cls: type, body: object, field: str, reason: str) -> None:
    with pytest.raises(InvalidResponseError) as info:
        structure(cls, body, META)
    err = info.value
    assert err.field == field
    assert reason in str(err)
    assert str(err).startswith(f"Invalid {cls.__name__} response: {field}: ")
    assert err.request_id == META.request_id


def test_paths_use_wire_names_through_arrays_and_objects() -> None:
    lock = copy.deepcopy(FIXTURES[m.LockStatus])
    lock["doors"][2]["status"] = 3
    with pytest.raises(InvalidResponseError) as info:
        structure(m.LockStatus, lock)
    assert info.value.field == "doors[2].status"

    nominal = copy.deepcopy(FIXTURES[m.NominalCapacity])
    nominal["availableCapacities"][0]["capacity"] = "70.9"
    with pytest.raises(InvalidResponseError) as info:
        structure(m.NominalCapacity, nominal)
    assert info.value.field == "availableCapacities[0].capacity"

    lock = copy.deepcopy(FIXTURES[m.LockStatus])
    lock["chargingPort"] = [{"type": "chargingPort"}]
    with pytest.raises(InvalidResponseError) as info:
        structure(m.LockStatus, lock)
    assert info.value.field == "chargingPort[0].status"


def test_paths_under_make_keys() -> None:
    entry = FIXTURES[a.CompatibilityMatrix]["TESLA"][0]
    for make, field in (
        ("TESLA", "TESLA[0].startYear"),
        ("LAND ROVER", '["LAND ROVER"][0].startYear'),
    ):
        body = {make: [{**entry, "startYear": "2017"}]}
        with pytest.raises(InvalidResponseError) as info:
            structure(a.CompatibilityMatrix, body)
        assert info.value.field == field
    with pytest.raises(InvalidResponseError) as info:
        structure(a.CompatibilityMatrix, {"TESLA": {}})
    assert info.value.field == "TESLA"


@pytest.mark.parametrize(
    ("cls", "body", "reason"),
    [
        (m.Odometer, [], "expected an object, got array"),
        (m.Odometer, None, "expected an object, got null"),
        (m.Odometer, "distance", "expected an object, got string"),
        (m.ServiceHistory, {"records": []}, "expected an array, got object"),
        (a.CompatibilityMatrix, [], "expected an object, got array"),
        (mk.TeslaAttributes, [1], "expected an object, got array"),
        (a.WebhookPayload, "x", "expected an object, got string"),
    ],
)
def test_a_body_of_the_wrong_shape_has_no_field(cls: type, body: object, reason: str) -> None:
    with pytest.raises(InvalidResponseError) as info:
        structure(cls, body)
    assert info.value.field is None
    assert str(info.value) == f"Invalid {cls.__name__} response: {reason}"


def test_all_problems_are_counted_but_the_first_is_named() -> None:
    with pytest.raises(InvalidResponseError) as info:
        structure(m.TirePressure, {"frontLeft": "1", "backLeft": None})
    assert info.value.field == "frontLeft"
    assert str(info.value).endswith("(and 3 more problems)")
    with pytest.raises(InvalidResponseError) as info:
        structure(m.Location, {"latitude": 1})
    assert str(info.value) == "Invalid Location response: longitude: required field is missing"


def test_messages_never_echo_received_values() -> None:
    with pytest.raises(InvalidResponseError) as info:
        structure(m.Vin, {"vin": ["sekrit-token"]})
    assert "sekrit" not in str(info.value) + repr(info.value)


def test_extra_keys_are_ignored() -> None:
    body = {"distance": 1.0, "unit": "km", "": "odd", "meta": {"data_age": "x"}}
    assert structure(m.Odometer, body) == m.Odometer(1.0)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2024-09-05T14:48:00.000Z", datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        ("2024-09-05T14:48:00", datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        ("2024-09-05T16:48:00+02:00", datetime(2024, 9, 5, 14, 48, tzinfo=UTC)),
        ("2024-09-05", datetime(2024, 9, 5, tzinfo=UTC)),
    ],
)
def test_datetimes_are_always_aware(wire: str, expected: datetime) -> None:
    code = structure(m.DiagnosticTroubleCode, {"code": "P1", "timestamp": wire})
    assert code.timestamp == expected
    assert code.timestamp is not None
    assert code.timestamp.tzinfo is not None


def test_an_offset_is_kept() -> None:
    code = structure(
        m.DiagnosticTroubleCode, {"code": "P1", "timestamp": "2024-09-05T16:48:00+02:00"}
    )
    assert code.timestamp is not None
    assert code.timestamp.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("cls", [a.Access, m.Meta, int, dict])
def test_structure_refuses_non_response_types(cls: type) -> None:
    with pytest.raises(TypeError):
        structure(cls, {})


# --- unstructure ---------------------------------------------------------------


def test_unstructure_is_snake_case_json() -> None:
    history = structure(m.ServiceHistory, FIXTURES[m.ServiceHistory], META)
    data = unstructure(history)
    assert data["meta"] == {
        "data_age": "2019-10-24T00:43:46+00:00",
        "fetched_at": None,
        "unit_system": "metric",
        "request_id": "26c14915-0c26-43c5-8e42-9edfc2a66a0f",
    }
    record = data["records"][0]
    assert record["service_date"] == "2023-06-28T22:21:41.583000+00:00"
    assert record["service_tasks"][1] == {"task_id": "3041", "task_description": None}
    assert isinstance(data["records"], list)
    assert isinstance(record["service_tasks"], list)
    lock = unstructure(structure(m.LockStatus, FIXTURES[m.LockStatus]))
    assert lock["charging_port"] == [{"type": "chargingPort", "status": "CLOSED"}]
    assert lock["is_locked"] is False
    matrix = unstructure(structure(a.CompatibilityMatrix, FIXTURES[a.CompatibilityMatrix]))
    assert matrix["makes"]["TESLA"][0]["start_year"] == 2017
    assert matrix["makes"]["TESLA"][0]["endpoints"] == ["/battery", "/charge"]


def test_unstructure_refuses_non_models() -> None:
    with pytest.raises(TypeError):
        unstructure({"distance": 1})


# --- properties ------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**300, max_value=10**400)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2024-09-05T14:48:00Z", "2024-13-45", "18:30", "", "0"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=15,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    copied = copy.copy(value)
    head, *rest = path
    if delete and not rest:
        del copied[head]
    else:
        copied[head] = _replace(value[head], tuple(rest), new, delete)
    return copied


def _check(cls: type[Any], body: object) -> None:
    try:
        model = structure(cls, body, META)
    except InvalidResponseError as err:
        error = err
    else:
        assert type(model) is cls
        json.dumps(unstructure(model))
        return
    assert str(error).startswith(f"Invalid {cls.__name__} response: ")
    assert error.request_id == META.request_id


@settings(max_examples=300)
@given(cls=st.sampled_from(PLANNED), body=json_values)
def test_arbitrary_json_raises_only_our_error(cls: type, body: object) -> None:
    _check(cls, body)


@settings(max_examples=400)
@given(data=st.data(), cls=st.sampled_from(list(FIXTURES)))
def test_corrupted_fixtures_raise_only_our_error(data: st.DataObject, cls: type) -> None:
    body = FIXTURES[cls]
    path = data.draw(st.sampled_from(_paths(body)))
    delete = bool(path) and data.draw(st.booleans())
    corrupted = _replace(body, path, data.draw(json_values), delete)
    _check(cls, corrupted)


@given(
    st.dictionaries(
        st.sampled_from(["distance", "latitude", "longitude", "isLocked", "doors", "activeCodes"]),
        json_values,
    )
)
def test_dicts_with_known_keys_raise_only_our_error(body: dict[str, Any]) -> None:
    for cls in (m.Odometer, m.Location, m.LockStatus, m.DiagnosticTroubleCodes):
        _check(cls, body)


# --- shared small value objects ------------------------------------------------


def _lock_body(*doors: object) -> dict[str, Any]:
    return {"isLocked": True, "doors": list(doors)}


def test_equal_door_statuses_are_one_shared_instance() -> None:
    door = {"type": "frontLeft", "status": "LOCKED"}
    first = structure(m.LockStatus, _lock_body(door, dict(door)))
    second = structure(m.LockStatus, _lock_body(dict(door)))
    assert first.doors[0] is first.doors[1] is second.doors[0]
    assert first.doors[0] == m.OpenStatus(type="frontLeft", status="LOCKED")


def test_a_bad_door_status_is_never_cached_and_still_names_its_field() -> None:
    good = {"type": "frontLeft", "status": "LOCKED"}
    for bad_status in (5, None, ["LOCKED"], {"x": 1}):
        bad = {"type": "frontLeft", "status": bad_status}
        structure(m.LockStatus, _lock_body(good))
        with pytest.raises(InvalidResponseError) as caught:
            structure(m.LockStatus, _lock_body(good, bad))
        assert caught.value.field == "doors[1].status"
        assert structure(m.LockStatus, _lock_body(good)).doors == (m.OpenStatus(**good),)
    with pytest.raises(InvalidResponseError) as caught:
        structure(m.LockStatus, _lock_body({"type": "frontLeft"}))
    assert caught.value.field == "doors[0].status"


def test_the_shared_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the bound, statuses are still built right, just not kept: a server
    # sending ever new strings cannot grow the client's memory.
    monkeypatch.setattr(_converter, "_SHARED_MAX", 0)
    door = {"type": "rareDoor", "status": "AJAR-0"}
    first = structure(m.LockStatus, _lock_body(door)).doors[0]
    second = structure(m.LockStatus, _lock_body(door)).doors[0]
    assert first == second == m.OpenStatus(type="rareDoor", status="AJAR-0")
    assert first is not second
