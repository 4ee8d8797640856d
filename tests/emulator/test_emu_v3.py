"""The emulator's Smartcar API v3, over loopback HTTP with plain aiohttp.

Shapes, per-signal statuses, paging, application tokens and ``sc-user-id``,
commands (200 and held 202), JSON:API errors, both rate limits, billed-request
counts, and agreement between a v2 read and the matching v3 signal of one car.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from emu_support import Api, Reply

from smartcar_async.testing import Emulator, Faults, RateLimits, SimulatedVehicle

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def v3(vehicle_id: str, sub: str = "") -> str:
    return f"/v3/vehicles/{vehicle_id}{sub}"


def signals_of(reply: Reply) -> dict[str, dict[str, Any]]:
    assert reply.status == 200, reply.body
    return {s["id"]: s for s in reply.body["data"]}


def status_of(signal: dict[str, Any]) -> tuple[str, str | None, str | None]:
    status = signal["attributes"]["status"]
    error = status.get("error") or {}
    return status["value"], error.get("type"), error.get("code")


def assert_v3_error(reply: Reply, status: int, type_: str, code: str | None) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json"
    assert set(reply.body) == {"errors"}
    (item,) = reply.body["errors"]
    assert item["status"] == str(status)
    assert (item["type"], item["code"]) == (type_, code)
    assert isinstance(item["title"], str)
    assert isinstance(item["detail"], str)
    assert item["links"]["about"].startswith("https://smartcar.com/docs/errors/")
    assert "type" in item["resolution"]
    assert "statusCode" not in item
    assert "requestId" not in item
    return dict(item)


def first(emu: Emulator, powertrain: str) -> SimulatedVehicle:
    return emu.fleet.with_powertrain(powertrain)[0]  # type: ignore[arg-type]


# -- shapes -------------------------------------------------------------------


async def test_vehicle_is_wrapped_in_data(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    for path in (v3(car.id), v3(car.id, "/")):
        reply = await api.get(path)
        assert reply.status == 200, reply.body
        data = reply.body["data"]
        assert data["id"] == car.id
        assert data["type"] == "vehicle"
        assert data["attributes"] == {
            "make": car.make,
            "model": car.model,
            "year": car.year,
            "powertrainType": "BEV",
            "mode": "live",
        }
        assert data["links"]["self"] == f"{emu.url}/v3/vehicles/{car.id}"
    ice = first(emu, "ICE")
    reply = await api.get(v3(ice.id))
    assert reply.body["data"]["attributes"]["powertrainType"] == "ICE"


async def test_signals_document(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    reply = await api.get(v3(car.id, "/signals"))
    body = reply.body
    assert set(body) == {"data", "meta", "links", "included"}
    codes = [s["id"] for s in body["data"]]
    assert codes == sorted(codes) == list(emu.signal_codes)
    total = len(codes)
    assert body["meta"] == {"totalCount": total, "pageSize": total, "pageNumber": 1}
    assert body["links"] == {"self": f"{emu.url}/v3/vehicles/{car.id}/signals"}
    assert body["included"]["vehicle"]["id"] == car.id
    assert body["included"]["vehicle"]["type"] == "vehicle"
    for signal in body["data"]:
        attributes = signal["attributes"]
        assert signal["type"] == "signal"
        assert attributes["code"] == signal["id"]
        assert attributes["code"] == f"{attributes['group']}-{attributes['name']}".lower()
        assert signal["links"]["self"].endswith(f"/signals/{signal['id']}")
        assert all(ISO.match(value) for value in signal["meta"].values()), signal
        assert "ingestedAt" in signal["meta"]
    by_code = signals_of(reply)
    odometer = by_code["odometer-traveleddistance"]
    assert odometer["attributes"]["name"] == "TraveledDistance"
    assert odometer["attributes"]["group"] == "Odometer"
    assert odometer["attributes"]["body"]["unit"] == "km"
    assert set(odometer["meta"]) == {"ingestedAt", "retrievedAt", "oemUpdatedAt"}
    assert set(by_code["vehicleidentification-vin"]["meta"]) == {"ingestedAt"}
    limits = by_code["charge-chargelimits"]["attributes"]["body"]
    assert limits["unit"] == "percent"
    assert limits["values"][0]["type"] == "GLOBAL"
    doors = by_code["closure-doors"]["attributes"]["body"]
    assert (doors["rowCount"], doors["columnCount"]) == (2, 2)
    assert {(d["row"], d["column"]) for d in doors["values"]} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    rng = by_code["tractionbattery-range"]["attributes"]["body"]
    assert rng["type"] == "DEFAULT"
    assert rng["additionalValues"] == []


async def test_ice_car_battery_and_charge_signals_fail_with_compatibility(
    api: Api, emu: Emulator
) -> None:
    ice = first(emu, "ICE")
    by_code = signals_of(await api.get(v3(ice.id, "/signals")))
    for code in ("tractionbattery-stateofcharge", "charge-ischarging", "charge-chargelimits"):
        signal = by_code[code]
        assert status_of(signal) == ("ERROR", "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"), code
        assert "body" not in signal["attributes"]
        assert set(signal["meta"]) == {"ingestedAt"}
        error = signal["attributes"]["status"]["error"]
        assert error["title"] == "Vehicle Not Capable"
        assert error["description"] == "Deprecated. Use detail"
        assert error["resolution"] == {"type": "UNKNOWN_RESOLUTION_TYPE"}
    assert status_of(by_code["internalcombustionengine-fuellevel"]) == ("SUCCESS", None, None)
    ev = first(emu, "EV")
    ev_codes = signals_of(await api.get(v3(ev.id, "/signals")))
    assert status_of(ev_codes["internalcombustionengine-fuellevel"])[1] == "COMPATIBILITY"
    assert status_of(ev_codes["tractionbattery-stateofcharge"])[0] == "SUCCESS"


async def test_a_removed_capability_fails_its_signal(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    car.capabilities.discard("/tires/pressure")
    by_code = signals_of(await api.get(v3(car.id, "/signals")))
    assert status_of(by_code["wheel-tires"])[1] == "COMPATIBILITY"


async def test_asleep_car_signals_answer_vehicle_state(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    emu.faults = Faults(asleep={car.id})
    by_code = signals_of(await api.get(v3(car.id, "/signals")))
    odometer = by_code["odometer-traveleddistance"]
    assert status_of(odometer) == ("ERROR", "VEHICLE_STATE", "ASLEEP")
    # Recorded REST errors keep the last known body and its meta.
    assert odometer["attributes"]["body"]["unit"] == "km"
    assert "oemUpdatedAt" in odometer["meta"]
    assert status_of(by_code["vehicleidentification-vin"])[0] == "SUCCESS"
    assert by_code["connectivitystatus-isasleep"]["attributes"]["body"] == {"value": True}
    single = await api.get(v3(car.id, "/signals/location-preciselocation"))
    assert single.status == 200
    assert status_of(single.body["data"]) == ("ERROR", "VEHICLE_STATE", "ASLEEP")
    command = await api.post(v3(car.id, "/commands/security/lock"))
    assert_v3_error(command, 409, "VEHICLE_STATE", "ASLEEP")


async def test_charging_figures_fail_while_not_charging(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    car.is_plugged_in = False
    by_code = signals_of(await api.get(v3(car.id, "/signals")))
    wattage = by_code["charge-wattage"]
    assert status_of(wattage) == ("ERROR", "VEHICLE_STATE", "NOT_CHARGING")
    assert wattage["attributes"]["body"]["unit"] == "watts"
    assert status_of(by_code["charge-ischarging"]) == ("SUCCESS", None, None)


async def test_missing_scope_fails_only_that_signal(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    emu.register_token("narrow", ["read_odometer"], [car.id])
    by_code = signals_of(await api.get(v3(car.id, "/signals"), token="narrow"))
    assert status_of(by_code["odometer-traveleddistance"])[0] == "SUCCESS"
    location = by_code["location-preciselocation"]
    assert status_of(location) == ("ERROR", "PERMISSION", "UNKNOWN")
    assert location["attributes"]["status"]["error"]["resolution"] == {"type": "REAUTHENTICATE"}
    assert "body" not in location["attributes"]
    denied = await api.get(v3(car.id), token="narrow")
    assert_v3_error(denied, 403, "PERMISSION", None)
    other = await api.get(v3(emu.fleet[1].id, "/signals"), token="narrow")
    assert_v3_error(other, 403, "PERMISSION", None)


async def test_single_signal_and_unknown_code(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    reply = await api.get(v3(car.id, "/signals/vehicleidentification-vin"))
    assert reply.status == 200
    assert set(reply.body) == {"data", "included"}
    assert reply.body["data"]["attributes"]["body"] == {"value": car.vin}
    assert reply.body["included"]["vehicle"]["id"] == car.id
    missing = await api.get(v3(car.id, "/signals/climate-nosuchthing"))
    item = assert_v3_error(missing, 404, "RESOURCE_NOT_FOUND", "SIGNAL_NOT_FOUND")
    assert car.id in item["detail"]


async def test_paging_when_a_page_size_is_set(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    emu.signals_page_size = 10
    seen: list[str] = []
    url: str | None = emu.url + v3(car.id, "/signals")
    numbers = []
    while url is not None:
        reply = await api.get(url.removeprefix(emu.url))
        body = reply.body
        assert body["meta"]["totalCount"] == len(emu.signal_codes)
        assert body["meta"]["pageSize"] == 10
        numbers.append(body["meta"]["pageNumber"])
        seen += [s["id"] for s in body["data"]]
        url = body["links"].get("next")
    assert seen == list(emu.signal_codes)
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == -(-len(emu.signal_codes) // 10)
    explicit = await api.get(
        v3(car.id, "/signals"), params={"page[number]": "2", "page[size]": "5"}
    )
    assert [s["id"] for s in explicit.body["data"]] == list(emu.signal_codes[5:10])
    assert explicit.body["meta"] == {
        "totalCount": len(emu.signal_codes),
        "pageSize": 5,
        "pageNumber": 2,
    }
    bad = await api.get(v3(car.id, "/signals"), params={"page[number]": "0"})
    assert_v3_error(bad, 400, "VALIDATION", "INVALID_PARAMETER")
    with pytest.raises(ValueError, match=">= 1"):
        emu.signals_page_size = 0


# -- v2 and v3 agree ------------------------------------------------------------


def _body(signals: dict[str, dict[str, Any]], code: str) -> Any:
    signal = signals[code]
    assert signal["attributes"]["status"]["value"] == "SUCCESS", signal
    return signal["attributes"]["body"]


async def _agree_ev(api: Api, car: SimulatedVehicle, s: dict[str, dict[str, Any]]) -> None:
    battery = (await api.vget(car.id, "/battery")).body
    soc = _body(s, "tractionbattery-stateofcharge")
    assert soc["value"] / 100 == pytest.approx(battery["percentRemaining"])
    assert _body(s, "tractionbattery-range")["value"] == battery["range"]
    charge = (await api.vget(car.id, "/charge")).body
    assert _body(s, "charge-ischargingcableconnected")["value"] == charge["isPluggedIn"]
    assert _body(s, "charge-detailedchargingstatus")["value"] == charge["state"]
    limit = (await api.vget(car.id, "/charge/limit")).body["limit"]
    assert _body(s, "charge-chargelimits")["values"][0]["limit"] / 100 == pytest.approx(limit)
    capacity = (await api.vget(car.id, "/battery/nominal_capacity")).body
    nominal = _body(s, "tractionbattery-nominalcapacity")
    assert nominal["capacity"] == capacity["capacity"]["nominal"]


async def _agree_ice(api: Api, car: SimulatedVehicle, s: dict[str, dict[str, Any]]) -> None:
    fuel = (await api.vget(car.id, "/fuel")).body
    level = _body(s, "internalcombustionengine-fuellevel")["value"]
    assert level / 100 == pytest.approx(fuel["percentRemaining"])
    assert _body(s, "internalcombustionengine-amountremaining")["value"] == fuel["amountRemaining"]
    assert _body(s, "internalcombustionengine-range")["value"] == fuel["range"]
    oil = (await api.vget(car.id, "/engine/oil")).body
    life = _body(s, "internalcombustionengine-oillife")["value"]
    assert life / 100 == pytest.approx(oil["lifeRemaining"])


async def test_v2_reads_and_v3_signals_agree(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    emu.fleet[0].open_doors.add("backLeft")
    for car in emu.fleet:
        s = signals_of(await api.get(v3(car.id, "/signals")))
        odometer = (await api.vget(car.id, "/odometer")).body["distance"]
        assert _body(s, "odometer-traveleddistance") == {"value": odometer, "unit": "km"}
        location = (await api.vget(car.id, "/location")).body
        precise = _body(s, "location-preciselocation")
        assert (precise["latitude"], precise["longitude"]) == (
            location["latitude"],
            location["longitude"],
        )
        assert (
            _body(s, "vehicleidentification-vin")["value"]
            == ((await api.vget(car.id, "/vin")).body["vin"])
        )
        attributes = (await api.vget(car.id, "/")).body
        included = (await api.get(v3(car.id))).body["data"]["attributes"]
        assert (included["make"], included["model"], included["year"]) == (
            attributes["make"],
            attributes["model"],
            attributes["year"],
        )
        tires = (await api.vget(car.id, "/tires/pressure")).body
        grid = {
            (t["row"], t["column"]): t["tirePressure"] for t in _body(s, "wheel-tires")["values"]
        }
        assert grid == {
            (0, 0): tires["frontLeft"],
            (0, 1): tires["frontRight"],
            (1, 0): tires["backLeft"],
            (1, 1): tires["backRight"],
        }
        security = (await api.vget(car.id, "/security")).body
        assert _body(s, "closure-islocked")["value"] == security["isLocked"]
        doors = {(d["row"], d["column"]): d["isOpen"] for d in _body(s, "closure-doors")["values"]}
        v2_doors = {d["type"]: d["status"] == "OPEN" for d in security["doors"]}
        assert doors[(1, 0)] == v2_doors["backLeft"]
        assert doors[(0, 0)] == v2_doors["frontLeft"]
        if car.has_battery:
            await _agree_ev(api, car, s)
        if car.has_tank:
            await _agree_ice(api, car, s)


# -- application tokens ------------------------------------------------------------


async def _app_token(api: Api, **form: str) -> Reply:
    fields = {"grant_type": "client_credentials", "client_id": "client_a", "client_secret": "s"}
    fields.update(form)
    return await api.post("/oauth2/token", json=fields, token=None)


async def test_token_endpoint_json_and_form(api: Api, emu: Emulator) -> None:
    reply = await _app_token(api)
    assert reply.status == 200
    assert set(reply.body) == {"access_token", "token_type", "expires_in"}
    assert reply.body["expires_in"] == 3600
    assert reply.body["token_type"] == "Bearer"
    form = await api.call(
        "POST",
        "/oauth2/token",
        token=None,
        data={"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"},
    )
    assert form.status == 200
    assert form.body["access_token"] != reply.body["access_token"]
    assert emu.app_token_requests == 2
    assert emu.iam_url == emu.url
    recorded = [r for r in emu.requests if r.path == "/oauth2/token"]
    assert recorded[0].body["grant_type"] == "client_credentials"
    assert recorded[1].body["client_id"] == "c"


async def test_token_endpoint_errors(api: Api, emu: Emulator) -> None:
    wrong = await _app_token(api, grant_type="refresh_token")
    assert (wrong.status, wrong.body["error"]) == (400, "unsupported_grant_type")
    missing = await api.post("/oauth2/token", json={"grant_type": "client_credentials"}, token=None)
    assert (missing.status, missing.body["error"]) == (400, "invalid_request")
    emu.register_client("client_a", "right")
    refused = await _app_token(api, client_secret="wrong")
    assert (refused.status, refused.body["error"]) == (401, "invalid_client")
    accepted = await _app_token(api, client_secret="right")
    assert accepted.status == 200
    assert emu.app_token_requests == 1


async def test_app_token_needs_sc_user_id(api: Api, emu: Emulator) -> None:
    token = (await _app_token(api)).body["access_token"]
    car = emu.fleet[0]
    for reply in (
        await api.get(v3(car.id, "/signals"), token=token),
        await api.get(v3(car.id, "/signals/odometer-traveleddistance"), token=token),
        await api.post(v3(car.id, "/commands/security/unlock"), token=token),
    ):
        item = assert_v3_error(reply, 400, "VALIDATION", "MISSING_PARAMETER")
        assert item["detail"] == "missing userId"
    # The spec lists no sc-user-id on GET /vehicles/{id}.
    assert (await api.get(v3(car.id), token=token)).status == 200
    own = {"sc-user-id": car.user_id}
    assert (await api.get(v3(car.id, "/signals"), token=token, headers=own)).status == 200
    strangers = [v for v in emu.fleet if v.user_id != car.user_id]
    other = await api.get(v3(strangers[0].id, "/signals"), token=token, headers=own)
    assert_v3_error(other, 403, "PERMISSION", None)
    nobody = await api.get(v3(car.id, "/signals"), token=token, headers={"sc-user-id": "nobody"})
    assert_v3_error(nobody, 403, "PERMISSION", None)


async def test_app_token_acts_for_an_issued_users_grant(api: Api, emu: Emulator) -> None:
    car = emu.fleet[3]
    emu.issue_tokens([car.id], scopes=["read_odometer"], user_id="user-7")
    token = emu.issue_app_token()
    headers = {"sc-user-id": "user-7"}
    by_code = signals_of(await api.get(v3(car.id, "/signals"), token=token, headers=headers))
    assert status_of(by_code["odometer-traveleddistance"])[0] == "SUCCESS"
    assert status_of(by_code["location-preciselocation"])[1] == "PERMISSION"
    other = await api.get(v3(emu.fleet[0].id, "/signals"), token=token, headers=headers)
    assert other.status == 403


async def test_app_token_expires_after_an_hour(api: Api, emu: Emulator) -> None:
    token = (await _app_token(api)).body["access_token"]
    car = emu.fleet[0]
    headers = {"sc-user-id": car.user_id}
    assert (await api.get(v3(car.id, "/signals"), token=token, headers=headers)).status == 200
    emu.advance_clock(3601)
    expired = await api.get(v3(car.id, "/signals"), token=token, headers=headers)
    assert_v3_error(expired, 401, "AUTHENTICATION", None)
    short = emu.issue_app_token()
    emu.expire_app_token(short)
    assert (await api.get(v3(car.id), token=short)).status == 401


async def test_one_app_token_serves_many_vehicles(api: Api, emu: Emulator) -> None:
    token = (await _app_token(api)).body["access_token"]
    for car in emu.fleet:
        reply = await api.get(
            v3(car.id, "/signals"), token=token, headers={"sc-user-id": car.user_id}
        )
        assert reply.status == 200
    assert emu.app_token_requests == 1
    sent = [r for r in emu.requests if r.path.startswith("/v3/")]
    assert len(sent) == len(emu.fleet)
    assert all(r.headers.get("sc-user-id") for r in sent)


# -- commands ---------------------------------------------------------------------


async def test_commands_answer_an_execution(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    car.open_doors.clear()
    car.is_plugged_in = True
    car.is_charging = False
    car.battery_level = 0.3
    for path, command_type in (
        ("/commands/security/unlock", "security-unlock"),
        ("/commands/security/lock", "security-lock"),
        ("/commands/charge/start", "charge-start"),
        ("/commands/charge/stop", "charge-stop"),
        ("/commands/charge-port/open", "charge-port-open"),
        ("/commands/charge-port/close", "charge-port-close"),
    ):
        reply = await api.post(v3(car.id, path))
        assert reply.status == 200, (path, reply.body)
        data = reply.body["data"]
        assert data["id"].startswith("exec_")
        assert data["type"] == "command-execution"
        assert data["attributes"]["commandType"] == command_type
        assert data["attributes"]["status"] == {"value": "SUCCESS"}
        assert data["attributes"]["executionMode"] == "sync"
        assert ISO.match(data["meta"]["executedAt"])
        assert ISO.match(data["meta"]["completedAt"])
    assert car.is_locked


async def test_set_limit_and_destination(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    reply = await api.post(
        v3(car.id, "/commands/charge/set-limit"), json={"data": {"attributes": {"percent": 75}}}
    )
    assert reply.status == 200, reply.body
    assert reply.body["data"]["attributes"]["parameters"] == {"percent": 75}
    assert (await api.vget(car.id, "/charge/limit")).body["limit"] == 0.75
    for bad in ({"percent": 49}, {"percent": 101}, {"percent": 75.5}, {"percent": "x"}):
        reply = await api.post(
            v3(car.id, "/commands/charge/set-limit"), json={"data": {"attributes": bad}}
        )
        assert_v3_error(reply, 400, "VALIDATION", "INVALID_PARAMETER")
    missing: Any
    for missing in (None, {"percent": 75}, {"data": {"attributes": {}}}):
        reply = await api.post(v3(car.id, "/commands/charge/set-limit"), json=missing)
        assert_v3_error(reply, 400, "VALIDATION", "MISSING_PARAMETER")
    reply = await api.post(
        v3(car.id, "/commands/navigation/set-destination"),
        json={"data": {"attributes": {"latitude": 48.85, "longitude": 2.35}}},
    )
    assert reply.status == 200
    assert car.destination == (48.85, 2.35)


async def test_command_failures_are_json_api(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    car.open_doors.add("frontLeft")
    assert_v3_error(
        await api.post(v3(car.id, "/commands/security/lock")), 409, "VEHICLE_STATE", "DOOR_OPEN"
    )
    car.is_plugged_in = False
    assert_v3_error(
        await api.post(v3(car.id, "/commands/charge/start")),
        409,
        "VEHICLE_STATE",
        "CHARGING_PLUG_NOT_CONNECTED",
    )
    ice = first(emu, "ICE")
    item = assert_v3_error(
        await api.post(v3(ice.id, "/commands/charge/start")),
        501,
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
    )
    assert item["status"] == "501"
    emu.register_token("reader", ["read_security"])
    assert_v3_error(
        await api.post(v3(car.id, "/commands/security/unlock"), token="reader"),
        403,
        "PERMISSION",
        None,
    )


async def test_charge_port_command_shows_in_v2_and_v3(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    car.is_plugged_in = False
    assert (await api.post(v3(car.id, "/commands/charge-port/open"))).status == 200
    flap = await api.get(v3(car.id, "/signals/charge-ischargingportflapopen"))
    assert flap.body["data"]["attributes"]["body"] == {"value": True}
    security = (await api.vget(car.id, "/security")).body
    assert security["chargingPort"][0]["status"] == "OPEN"


async def test_slow_command_answers_202_then_its_result(api: Api, emu: Emulator) -> None:
    car = first(emu, "EV")
    car.open_doors.clear()
    car.is_locked = False
    emu.slow_command_seconds = 0.3
    started = time.monotonic()
    async with api.session.post(
        emu.url + v3(car.id, "/commands/security/lock"),
        headers={"Authorization": "Bearer t"},
    ) as resp:
        assert resp.status == 202
        assert "Content-Length" not in resp.headers
        assert resp.headers["Content-Type"] == "application/json"
        assert not car.is_locked  # still running
        body = await resp.json()
    assert time.monotonic() - started >= 0.25
    assert body["data"]["attributes"]["status"] == {"value": "SUCCESS"}
    assert body["data"]["attributes"]["executionMode"] == "async"
    assert car.is_locked
    car.open_doors.add("frontRight")
    failed = await api.post(v3(car.id, "/commands/security/lock"))
    assert failed.status == 202
    (item,) = failed.body["errors"]
    assert (item["status"], item["code"]) == ("409", "DOOR_OPEN")
    emu.slow_command_seconds = None
    assert (await api.post(v3(car.id, "/commands/security/unlock"))).status == 200


# -- errors, limits, billing, recording ------------------------------------------


async def test_v3_errors_are_json_api(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    assert_v3_error(await api.get(v3(car.id, "/signals"), token=None), 401, "AUTHENTICATION", None)
    assert_v3_error(await api.get("/v3/nowhere"), 404, "RESOURCE_NOT_FOUND", "INVALID_PATH")
    assert_v3_error(
        await api.call("DELETE", v3(car.id, "/signals")), 404, "RESOURCE_NOT_FOUND", "INVALID_PATH"
    )
    assert_v3_error(
        await api.get(v3(car.id, "/commands/security/lock")),
        404,
        "RESOURCE_NOT_FOUND",
        "INVALID_PATH",
    )
    assert_v3_error(await api.get(v3("no-such-car", "/signals")), 403, "PERMISSION", None)
    emu.inject(path="/v3/signals")
    item = assert_v3_error(await api.get(v3(car.id, "/signals")), 500, "SERVER", "INTERNAL")
    assert item["resolution"] == {"type": "RETRY_LATER"}
    assert isinstance(item["suggestedUserMessage"], str)
    # v2 errors keep the v2 shape.
    v2 = await api.vget("no-such-car", "/odometer")
    assert v2.body["statusCode"] == 403


async def test_both_rate_limits_apply_to_v3(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    emu.rate_limits = RateLimits(vehicle_requests=2, vehicle_window=60)
    assert (await api.get(v3(car.id, "/signals"))).status == 200
    assert (await api.vget(car.id, "/odometer")).status == 200  # one shared window
    limited = await api.get(v3(car.id, "/signals"))
    assert_v3_error(limited, 429, "RATE_LIMIT", "VEHICLE")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    emu.rate_limits = RateLimits(app_capacity=1, app_refill_per_minute=1)
    assert (await api.get(v3(car.id))).status == 200
    bucket = await api.get(v3(car.id, "/signals"))
    assert_v3_error(bucket, 429, "RATE_LIMIT", "SMARTCAR_API")
    assert int(bucket.headers["Retry-After"]) >= 1


async def test_billed_requests(api: Api, emu: Emulator) -> None:
    ev, other = first(emu, "EV"), emu.fleet[1]
    assert emu.billed_requests == 0
    await api.vget(ev.id, "/odometer")
    await api.batch(ev.id, ["/odometer", "/location", "/vin"])
    assert emu.billed_requests == 4
    await api.vget(ev.id, "/permissions")
    await api.get("/v2.0/vehicles")
    await api.post("/oauth2/token", json={"grant_type": "client_credentials"}, token=None)
    assert emu.billed_requests == 4
    await api.get(v3(ev.id, "/signals"))  # one bill, however many signals
    await api.get(v3(ev.id, "/signals/odometer-traveleddistance"))
    await api.get(v3(ev.id))
    await api.post(v3(ev.id, "/commands/security/unlock"))
    assert emu.billed_requests == 8
    await api.get(v3(ev.id, "/signals/nope"))  # failed: free
    await api.get(v3(other.id, "/signals"))
    assert emu.billed_requests_by_vehicle == {ev.id: 8, other.id: 1}
    emu.signals_page_size = 10
    await api.get(v3(other.id, "/signals"))
    await api.get(v3(other.id, "/signals"), params={"page[number]": "2"})
    assert emu.billed_requests_by_vehicle[other.id] == 3
    emu.reset_billed_requests()
    assert emu.billed_requests == 0


async def test_v3_requests_are_recorded(api: Api, emu: Emulator) -> None:
    car = emu.fleet[0]
    emu.clear_requests()
    await api.get(v3(car.id, "/signals"), headers={"sc-user-id": "u"})
    await api.post(
        v3(car.id, "/commands/charge/set-limit"), json={"data": {"attributes": {"percent": 80}}}
    )
    first_request, second = emu.requests
    assert first_request.path == f"/v3/vehicles/{car.id}/signals"
    assert first_request.headers["SC-User-Id"] == "u"
    assert second.method == "POST"
    assert second.body == {"data": {"attributes": {"percent": 80}}}


def test_app_bucket_refill_has_no_float_noise() -> None:
    """30 s at 2/min refills exactly one token, whatever the clock's value.

    (t + 30) - t is not exactly 30 for some t; unrounded, the refill came to
    0.99999... and a request that must pass got 429 (seen once in a full run).
    """
    from smartcar_async.testing._clock import Clock
    from smartcar_async.testing._ratelimit import RateLimiter

    clock = Clock()
    clock.freeze()
    rate = 2 / 60
    step = 0.0
    for candidate in range(1, 200_000):
        now = clock.now() + candidate * 0.37
        if ((now + 30) - now) * rate < 1:
            step = candidate * 0.37
            break
    assert step, "no noisy instant found"
    clock.advance(step)
    limits = RateLimits(app_capacity=1, app_refill_per_minute=2)
    limiter = RateLimiter(clock)
    assert limiter.take_app(limits, 1) is None
    clock.advance(30)
    assert limiter.take_app(limits, 1) is None
