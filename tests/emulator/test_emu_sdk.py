"""Fidelity check with a client we did not write: the official (sync) Smartcar SDK.

Every Vehicle method and the module-level calls run against a threaded
emulator over loopback HTTP and must parse, or fail with a typed
SmartcarException where the vehicle is not capable.
"""

from __future__ import annotations

import pytest
import smartcar
import smartcar.config
import smartcar.smartcar
from smartcar import SmartcarException

from smartcar_async.testing import Emulator

TOKEN = "sdk-token"
AMT = "management-token"


@pytest.fixture
def sdk(smartcar_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Point the SDK at the emulator; monkeypatch restores the real origins afterwards."""
    emu = smartcar_emulator
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(smartcar.config, "API_ORIGIN", emu.url)
    # Name used by SDK releases up to 6.18; harmless on 6.19.
    monkeypatch.setattr(smartcar.config, "API_URL", emu.url, raising=False)
    monkeypatch.setattr(smartcar.config, "AUTH_ORIGIN", f"{emu.url}/oauth/token")
    monkeypatch.setattr(smartcar.config, "MANAGEMENT_API_ORIGIN", emu.url)
    monkeypatch.setenv("SMARTCAR_CLIENT_ID", "client-id")
    monkeypatch.setenv("SMARTCAR_CLIENT_SECRET", "client-secret")
    emu.management_token = AMT
    return emu


def test_module_level_calls(sdk: Emulator) -> None:
    vehicles = smartcar.get_vehicles(TOKEN)
    assert vehicles.vehicles == sdk.fleet.ids
    assert vehicles.paging.count == len(sdk.fleet)
    assert vehicles.meta.request_id
    page = smartcar.get_vehicles(TOKEN, {"limit": 3, "offset": 2})
    assert page.vehicles == sdk.fleet.ids[2:5]
    assert page.paging.offset == 2

    user = smartcar.get_user(TOKEN)
    assert user.id == sdk.fleet.users[0]


def test_every_read_on_an_ev(sdk: Emulator) -> None:
    ev = sdk.fleet.vehicles[0]
    assert ev.powertrain == "EV"
    v = smartcar.Vehicle(ev.id, TOKEN)

    assert v.vin().vin == ev.vin
    charge = v.charge()
    assert charge.is_plugged_in == ev.is_plugged_in
    assert charge.state in ("CHARGING", "FULLY_CHARGED", "NOT_CHARGING")
    battery = v.battery()
    assert 0 <= battery.percent_remaining <= 1
    assert battery.range > 0
    assert battery.meta.unit_system == "metric"
    assert battery.meta.data_age
    assert battery.meta.fetched_at
    assert v.battery_capacity().capacity == ev.battery_capacity_kwh
    nominal = v.nominal_capacity()
    assert nominal.availableCapacities[0].capacity == ev.battery_capacity_kwh
    assert nominal.capacity["nominal"] == ev.battery_capacity_kwh
    tires = v.tire_pressure()
    assert all(150 < p < 350 for p in tires[:4])
    assert v.odometer().distance > 0
    location = v.location()
    assert -90 <= location.latitude <= 90
    assert -180 <= location.longitude <= 180
    attributes = v.attributes()
    assert (attributes.id, attributes.make, attributes.model, attributes.year) == (
        ev.id,
        ev.make,
        ev.model,
        ev.year,
    )
    permissions = v.permissions()
    assert "read_odometer" in permissions.permissions
    paged = v.permissions({"limit": 2, "offset": 1})
    assert paged.permissions == permissions.permissions[1:3]
    assert paged.paging.offset == 1
    assert v.get_charge_limit().limit == ev.charge_limit
    lock = v.lock_status()
    assert lock.is_locked == ev.is_locked
    assert {d["type"] for d in lock.doors} == {"frontLeft", "frontRight", "backLeft", "backRight"}
    assert lock.charging_port
    assert lock.storage
    history = v.service_history()
    assert isinstance(history.items, list)
    everything = v.service_history("2000-01-01", "2100-01-01")
    assert len(everything.items) == len(ev.service_records)
    systems = v.diagnostic_system_status()
    assert {s.system_id for s in systems.systems} >= {"SYSTEM_TPMS", "SYSTEM_ENGINE"}
    assert all(s.status in ("OK", "ALERT") for s in systems.systems)
    dtcs = v.diagnostic_trouble_codes()
    assert [c.code for c in dtcs.active_codes] == [c["code"] for c in ev.dtcs]

    for call in (v.fuel, v.engine_oil):
        with pytest.raises(SmartcarException) as info:
            call()
        assert info.value.status_code == 501
        assert info.value.type == "COMPATIBILITY"
        assert info.value.code == "VEHICLE_NOT_CAPABLE"
        assert info.value.request_id


def test_ice_and_phev_reads(sdk: Emulator) -> None:
    ice, phev = sdk.fleet.vehicles[1], sdk.fleet.vehicles[2]
    assert (ice.powertrain, phev.powertrain) == ("ICE", "PHEV")
    car = smartcar.Vehicle(ice.id, TOKEN)
    fuel = car.fuel()
    assert fuel.amount_remaining > 0
    assert 0 < fuel.percent_remaining <= 1
    assert fuel.range > 0
    assert 0 <= car.engine_oil().life_remaining <= 1
    for call in (
        car.battery,
        car.battery_capacity,
        car.nominal_capacity,
        car.charge,
        car.get_charge_limit,
        car.start_charge,
        car.stop_charge,
    ):
        with pytest.raises(SmartcarException) as info:
            call()
        assert (info.value.status_code, info.value.code) == (501, "VEHICLE_NOT_CAPABLE")
    hybrid = smartcar.Vehicle(phev.id, TOKEN)
    assert hybrid.fuel().amount_remaining > 0
    assert hybrid.battery().percent_remaining > 0


def test_imperial_units(sdk: Emulator) -> None:
    ice = sdk.fleet.vehicles[1]
    sdk.freeze_clock()
    metric = smartcar.Vehicle(ice.id, TOKEN)
    imperial = smartcar.Vehicle(ice.id, TOKEN, {"unit_system": "imperial"})
    km = metric.odometer()
    miles = imperial.odometer()
    assert miles.meta.unit_system == "imperial"
    # Whole kilometres and miles, each rounded from the same reading.
    assert miles.distance == pytest.approx(km.distance / 1.609344, abs=1)
    assert imperial.fuel().amount_remaining == pytest.approx(
        metric.fuel().amount_remaining / 3.785411784, abs=0.01
    )


def test_actions_change_state(sdk: Emulator) -> None:
    ev = sdk.fleet.vehicles[0]
    ev.is_plugged_in, ev.is_charging, ev.battery_level, ev.charge_limit = True, False, 0.4, 0.9
    v = smartcar.Vehicle(ev.id, TOKEN)

    unlocked = v.unlock()
    assert (unlocked.status, unlocked.message) == (
        "success",
        "Successfully sent request to vehicle",
    )
    assert v.lock_status().is_locked is False
    v.lock()
    status = v.lock_status()
    assert status.is_locked is True
    assert {d["status"] for d in status.doors} == {"LOCKED"}

    v.start_charge()
    assert v.charge().state == "CHARGING"
    v.stop_charge()
    assert v.charge().state == "NOT_CHARGING"
    with pytest.raises(SmartcarException) as info:
        v.stop_charge()
    assert (info.value.status_code, info.value.type) == (409, "VEHICLE_STATE")

    assert v.set_charge_limit(0.7).status == "success"
    assert v.get_charge_limit().limit == 0.7
    with pytest.raises(SmartcarException) as info:
        v.set_charge_limit(0.2)
    assert info.value.type == "VALIDATION"
    assert info.value.detail

    assert v.send_destination(37.77, -122.42).status == "success"
    assert ev.destination == (37.77, -122.42)
    with pytest.raises(SmartcarException):
        v.send_destination(123.0, 0.0)

    subscribed = v.subscribe("webhook-1")
    assert (subscribed.webhook_id, subscribed.vehicle_id) == ("webhook-1", ev.id)
    assert "webhook-1" in ev.webhooks
    assert v.unsubscribe(AMT, "webhook-1").status == "success"
    assert "webhook-1" not in ev.webhooks
    with pytest.raises(SmartcarException) as info:
        v.unsubscribe("wrong-amt", "webhook-1")
    assert info.value.status_code == 401


def test_batch_and_request(sdk: Emulator) -> None:
    ev = sdk.fleet.vehicles[0]
    v = smartcar.Vehicle(ev.id, TOKEN)
    batch = v.batch(
        [
            "/odometer",
            "/location",
            "/battery",
            "/fuel",
            "/charge/limit",
            "/tires/pressure",
            "/security",
            "/",
            "/diagnostics/dtcs",
            "/diagnostics/system_status",
        ]
    )
    assert batch.odometer().distance > 0
    assert batch.odometer().meta.request_id == batch.meta.request_id
    assert batch.location().latitude
    assert batch.battery().meta.unit_system == "metric"
    assert batch.get_charge_limit().limit == ev.charge_limit
    assert batch.tire_pressure().front_left > 0
    assert batch.lock_status().is_locked == ev.is_locked
    assert batch.attributes().id == ev.id
    assert isinstance(batch.diagnostic_trouble_codes().active_codes, list)
    assert batch.diagnostic_system_status().systems
    with pytest.raises(SmartcarException) as info:
        batch.fuel()
    assert (info.value.status_code, info.value.code) == (501, "VEHICLE_NOT_CAPABLE")

    sdk.rate_limits.vehicle_requests = 1
    limited = v.batch(["/odometer", "/location"])
    assert limited.odometer().distance > 0
    with pytest.raises(SmartcarException) as info:
        limited.location()
    assert (info.value.type, info.value.code) == ("RATE_LIMIT", "VEHICLE")
    assert int(info.value.retry_after) >= 1
    sdk.rate_limits.vehicle_requests = None

    response = v.request("GET", "odometer", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.body["distance"] > 0
    assert response.meta.unit_system == "metric"
    speed = v.request("GET", "tesla/speedometer", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "speed" in speed.body
    with pytest.raises(SmartcarException) as info:
        v.request("GET", "TESLA/speedometer", headers={"Authorization": f"Bearer {TOKEN}"})
    assert info.value.type == "PERMISSION"


def test_disconnect(sdk: Emulator) -> None:
    ev = sdk.fleet.vehicles[3]
    v = smartcar.Vehicle(ev.id, TOKEN)
    assert v.disconnect().status == "success"
    assert ev.connected is False
    with pytest.raises(SmartcarException) as info:
        v.odometer()
    assert info.value.type == "AUTHENTICATION"
    assert ev.id not in smartcar.get_vehicles(TOKEN).vehicles


def test_errors_are_typed(sdk: Emulator) -> None:
    sdk.register_token("narrow", scopes=["read_vin"])
    v = smartcar.Vehicle(sdk.fleet.ids[0], "narrow")
    assert v.vin().vin
    with pytest.raises(SmartcarException) as info:
        v.odometer()
    assert (info.value.status_code, info.value.type) == (403, "PERMISSION")
    assert info.value.resolution == {"type": "REAUTHENTICATE", "url": None}

    sdk.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=7, path="/odometer")
    with pytest.raises(SmartcarException) as info:
        smartcar.Vehicle(sdk.fleet.ids[0], TOKEN).odometer()
    assert info.value.retry_after == "7"
    assert info.value.suggested_user_message

    sdk.inject(type="BILLING", code="VEHICLE_LIMIT")
    with pytest.raises(SmartcarException) as info:
        smartcar.get_vehicles(TOKEN)
    assert (info.value.status_code, info.value.type) == (430, "BILLING")

    sdk.expire_token(TOKEN)
    with pytest.raises(SmartcarException) as info:
        smartcar.get_user(TOKEN)
    assert info.value.status_code == 401


@pytest.mark.filterwarnings(
    # AuthClient computes expirations with datetime.utcnow(), deprecated from Python 3.12.
    "ignore:datetime.datetime.utcnow:DeprecationWarning"
)
def test_oauth_management_and_compatibility(sdk: Emulator) -> None:
    sdk.register_client("client-id", "client-secret", "https://example.com/callback")
    client = smartcar.AuthClient("client-id", "client-secret", "https://example.com/callback")
    ev = sdk.fleet.vehicles[0]
    code = sdk.issue_code(scopes=["read_odometer"], vehicle_ids=[ev.id])
    access = client.exchange_code(code)
    assert access.token_type == "Bearer"
    assert access.expires_in == 7200
    assert smartcar.Vehicle(ev.id, access.access_token).odometer().distance > 0
    with pytest.raises(SmartcarException) as info:
        smartcar.Vehicle(ev.id, access.access_token).location()
    assert info.value.status_code == 403
    refreshed = client.exchange_refresh_token(access.refresh_token)
    assert refreshed.access_token != access.access_token
    with pytest.raises(SmartcarException) as info:
        client.exchange_code(code)
    assert info.value.status_code == 400
    assert info.value.message == f"Invalid code: {code}."

    listed = smartcar.get_connections(AMT, paging={"limit": 5})
    assert len(listed.connections) == 5
    assert listed.paging.cursor
    rest = smartcar.get_connections(AMT, paging={"limit": 100, "cursor": listed.paging.cursor})
    every = {c.vehicle_id for c in listed.connections} | {c.vehicle_id for c in rest.connections}
    assert every == set(sdk.fleet.ids)
    deleted = smartcar.delete_connections(AMT, {"vehicle_id": ev.id})
    assert [(c.vehicle_id, c.user_id) for c in deleted.connections] == [(ev.id, ev.user_id)]
    assert ev.connected is False

    compatible = smartcar.get_compatibility(ev.vin, ["read_battery", "read_fuel"])
    assert compatible.compatible is True
    capable = {c.endpoint: c.capable for c in compatible.capabilities}
    assert capable["/battery"] is True
    assert capable["/fuel"] is False
    matrix = smartcar.smartcar.get_compatibility_matrix("US", "TESLA")
    assert {m.model for m in matrix["TESLA"]} >= {"Model 3", "Model Y"}
