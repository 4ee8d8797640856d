"""Every core and make-specific endpoint over loopback HTTP: shapes, headers, units, state."""

from __future__ import annotations

import io
import re
import uuid

import aiohttp
import pytest
from emu_support import Api, assert_error

from smartcar_async.testing import Emulator

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def is_uuid4(value: str) -> bool:
    return uuid.UUID(value).version == 4


async def test_all_vehicles_paging(api: Api, emu: Emulator) -> None:
    first = await api.get("/v2.0/vehicles")
    assert first.status == 200
    assert first.body == {"paging": {"count": 12, "offset": 0}, "vehicles": emu.fleet.ids[:10]}
    tail = await api.get("/v2.0/vehicles/", params={"limit": "5", "offset": "10"})
    assert tail.body == {"paging": {"count": 12, "offset": 10}, "vehicles": emu.fleet.ids[10:]}
    most = await api.get("/v2.0/vehicles", params={"limit": "50"})
    assert most.body["vehicles"] == emu.fleet.ids
    for params in ({"limit": "51"}, {"limit": "0"}, {"offset": "-1"}, {"limit": "ten"}):
        body = assert_error(await api.get("/v2.0/vehicles", params=params), 400, "VALIDATION")
        assert body["detail"][0]["field"] == [next(iter(params))]


async def test_user_with_and_without_slash(api: Api, emu: Emulator) -> None:
    for path in ("/v2.0/user", "/v2.0/user/"):
        reply = await api.get(path)
        assert reply.body == {"id": emu.fleet.users[0]}
        assert "SC-Data-Age" not in reply.headers


@pytest.mark.parametrize("suffix", ["", "/"])
async def test_attributes_and_flags(api: Api, emu: Emulator, suffix: str) -> None:
    vehicle = emu.fleet.vehicles[0]
    reply = await api.vget(vehicle.id, suffix, params={"flags": "country:DE flag:true"})
    assert reply.body == {
        "id": vehicle.id,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
    }
    assert isinstance(reply.body["year"], int)


async def test_core_read_shapes(api: Api, emu: Emulator) -> None:
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    expected = {
        "/vin": {"vin"},
        "/permissions": {"paging", "permissions"},
        "/odometer": {"distance"},
        "/location": {"latitude", "longitude"},
        "/battery": {"percentRemaining", "range"},
        "/battery/capacity": {"capacity"},
        "/battery/nominal_capacity": {"availableCapacities", "capacity", "url"},
        "/charge": {"isPluggedIn", "state"},
        "/charge/limit": {"limit"},
        "/tires/pressure": {"frontLeft", "frontRight", "backLeft", "backRight"},
        "/security": {"isLocked", "doors", "windows", "sunroof", "storage", "chargingPort"},
        "/diagnostics/system_status": {"systems"},
        "/diagnostics/dtcs": {"activeCodes"},
    }
    for sub, keys in expected.items():
        reply = await api.vget(ev.id, sub)
        assert reply.status == 200, (sub, reply.body)
        assert set(reply.body) == keys, sub
    for sub, keys in {
        "/fuel": {"amountRemaining", "percentRemaining", "range"},
        "/engine/oil": {"lifeRemaining"},
    }.items():
        reply = await api.vget(ice.id, sub)
        assert set(reply.body) == keys
    history = await api.vget(ev.id, "/service/history", params={"startDate": "2000-01-01"})
    assert isinstance(history.body, list)
    assert history.body
    record = history.body[0]
    assert set(record) == {
        "serviceId",
        "odometerDistance",
        "serviceDate",
        "serviceTasks",
        "serviceDetails",
        "serviceCost",
    }
    assert ISO_MS.match(record["serviceDate"])


async def test_response_headers(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    data = await api.vget(vid, "/odometer")
    assert is_uuid4(data.headers["SC-Request-Id"])
    assert data.headers["Content-Type"] == "application/json"
    assert ISO_MS.match(data.headers["SC-Data-Age"])
    assert ISO_MS.match(data.headers["SC-Fetched-At"])
    assert data.headers["SC-Data-Age"] <= data.headers["SC-Fetched-At"]
    assert data.headers["SC-Unit-System"] == "metric"
    location = await api.vget(vid, "/location")
    assert "SC-Data-Age" in location.headers
    assert "SC-Unit-System" not in location.headers
    for sub in ("/vin", "/permissions", "/"):
        reply = await api.vget(vid, sub)
        assert "SC-Data-Age" not in reply.headers
        assert "SC-Unit-System" not in reply.headers
    action = await api.post(api.vpath(vid, "/security"), {"action": "LOCK"})
    assert "SC-Data-Age" not in action.headers
    ids = set()
    for reply in (
        data,
        await api.get("/not/a/path"),
        await api.call("PUT", api.vpath(vid, "/odometer")),
        await api.get("/v2.0/vehicles", token=None),
        await api.call("POST", "/oauth/token"),
    ):
        assert reply.headers["Content-Type"] == "application/json"
        assert is_uuid4(reply.headers["SC-Request-Id"])
        ids.add(reply.headers["SC-Request-Id"])
    assert len(ids) == 5


async def test_unknown_paths(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    for path in (
        "/v2.0/nope",
        api.vpath(vid, "/nope"),
        api.vpath(vid, "/odometer/extra"),
        "/",
        "/v2.0/vehicles//odometer",
    ):
        assert_error(await api.get(path), 404, "RESOURCE_NOT_FOUND", "PATH")
    # Known path, wrong method: Smartcar routes by method and path, so it is unknown too.
    assert_error(
        await api.call("PUT", api.vpath(vid, "/odometer")), 404, "RESOURCE_NOT_FOUND", "PATH"
    )
    assert_error(
        await api.get(f"/vabc/vehicles/{vid}/odometer"), 404, "RESOURCE_NOT_FOUND", "VERSION"
    )
    # Any \d+.\d+ version is served as the latest, as Smartcar documents.
    assert (await api.get(f"/v99999999.99/vehicles/{vid}/odometer")).status == 200


async def test_units_convert(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    metric = (await api.vget(ice.id, "/odometer")).body["distance"]
    imperial = await api.vget(ice.id, "/odometer", units="IMPERIAL")
    assert imperial.headers["SC-Unit-System"] == "imperial"
    # The odometer is whole kilometres or miles, as the real API sends it.
    assert imperial.body["distance"] == round(ice.odometer_km / 1.609344)
    assert metric == round(ice.odometer_km)

    fuel_m = (await api.vget(ice.id, "/fuel")).body
    fuel_i = (await api.vget(ice.id, "/fuel", units="imperial")).body
    assert fuel_i["amountRemaining"] == pytest.approx(
        fuel_m["amountRemaining"] / 3.785411784, abs=0.01
    )
    assert fuel_i["range"] == pytest.approx(fuel_m["range"] / 1.609344, abs=0.01)
    assert fuel_i["percentRemaining"] == fuel_m["percentRemaining"]

    tires_m = (await api.vget(ev.id, "/tires/pressure")).body
    tires_i = (await api.vget(ev.id, "/tires/pressure", units="imperial")).body
    for name, kpa in tires_m.items():
        assert tires_i[name] == pytest.approx(kpa * 0.1450377377, abs=0.01)
        assert kpa == pytest.approx(ev.tire_pressure_kpa[name], abs=0.01)

    battery_m = (await api.vget(ev.id, "/battery")).body
    battery_i = (await api.vget(ev.id, "/battery", units="imperial")).body
    assert battery_i["range"] == pytest.approx(battery_m["range"] / 1.609344, abs=0.01)

    ev.exterior_temperature_c = 20.0
    outside = await api.vget(ev.id, "/tesla/thermometer/exterior", units="imperial")
    assert outside.body == {"temperature": 68.0}
    assert outside.headers["SC-Unit-System"] == "imperial"
    assert (await api.vget(ev.id, "/tesla/thermometer/exterior")).body == {"temperature": 20.0}

    body = assert_error(await api.vget(ev.id, "/odometer", units="furlongs"), 400, "VALIDATION")
    assert body["detail"][0]["field"] == ["SC-Unit-System"]


async def test_lock_and_unlock(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[2]
    path = api.vpath(vehicle.id, "/security")
    unlocked = await api.post(path, {"action": "UNLOCK"})
    assert unlocked.body == {"message": "Successfully sent request to vehicle", "status": "success"}
    status = (await api.get(path)).body
    assert status["isLocked"] is False
    assert {d["status"] for d in status["doors"]} == {"CLOSED"}
    await api.post(path, {"action": "LOCK"})
    status = (await api.get(path)).body
    assert status["isLocked"] is True
    assert {d["status"] for d in status["doors"]} == {"LOCKED"}
    assert vehicle.is_locked is True

    vehicle.open_doors.add("backLeft")
    await api.post(path, {"action": "UNLOCK"})
    assert_error(await api.post(path, {"action": "LOCK"}), 409, "VEHICLE_STATE", "DOOR_OPEN")
    assert vehicle.is_locked is False
    for bad in ({"action": "OPEN"}, {}, None, ["LOCK"]):
        assert_error(await api.post(path, bad), 400, "VALIDATION")


async def test_charging_state_machine(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev = emu.fleet.vehicles[0]
    path = api.vpath(ev.id, "/charge")
    ev.is_plugged_in, ev.is_charging, ev.battery_level, ev.charge_limit = False, False, 0.5, 0.8
    assert (await api.get(path)).body == {"isPluggedIn": False, "state": "NOT_CHARGING"}
    assert_error(
        await api.post(path, {"action": "START"}),
        409,
        "VEHICLE_STATE",
        "CHARGING_PLUG_NOT_CONNECTED",
    )
    ev.is_plugged_in = True
    assert (await api.post(path, {"action": "START"})).body["status"] == "success"
    assert (await api.get(path)).body == {"isPluggedIn": True, "state": "CHARGING"}
    assert_error(
        await api.post(path, {"action": "START"}), 409, "VEHICLE_STATE", "CHARGING_IN_PROGRESS"
    )
    assert (await api.post(path, {"action": "STOP"})).status == 200
    assert (await api.get(path)).body["state"] == "NOT_CHARGING"
    assert_error(await api.post(path, {"action": "STOP"}), 409, "VEHICLE_STATE", "NOT_CHARGING")

    # Charging runs on the emulator clock and stops at the limit.
    await api.post(path, {"action": "START"})
    emu.advance_clock(10 * 3600)
    assert (await api.get(path)).body["state"] == "FULLY_CHARGED"
    assert (await api.vget(ev.id, "/battery")).body["percentRemaining"] == pytest.approx(0.8)
    assert_error(await api.post(path, {"action": "START"}), 409, "VEHICLE_STATE", "FULLY_CHARGED")
    assert_error(await api.post(path, {"action": "PAUSE"}), 400, "VALIDATION")


async def test_charge_limit(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    path = api.vpath(vid, "/charge/limit")
    assert (await api.post(path, {"limit": 0.65})).body["status"] == "success"
    assert (await api.get(path)).body == {"limit": 0.65}
    assert (await api.post(path, {"limit": "0.75"})).status == 200
    assert (await api.get(path)).body == {"limit": 0.75}
    assert (await api.post(path, {"limit": 1})).status == 200
    assert (await api.post(path, {"limit": 0.5})).status == 200
    cases = {
        0.49: '"limit" must be greater than or equal to 0.5',
        1.01: '"limit" must be less than or equal to 1',
        "abc": '"limit" must be a number',
        True: '"limit" must be a number',
    }
    for value, message in cases.items():
        body = assert_error(await api.post(path, {"limit": value}), 400, "VALIDATION")
        assert body["detail"] == [{"field": ["limit"], "message": message}]
    missing = assert_error(await api.post(path, {}), 400, "VALIDATION")
    assert missing["detail"] == [{"field": ["limit"], "message": '"limit" is required'}]
    assert (await api.get(path)).body == {"limit": 0.5}


async def test_send_destination(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[1]
    path = api.vpath(vehicle.id, "/navigation/destination")
    ok = await api.post(path, {"latitude": 48.85, "longitude": "2.35"})
    assert ok.body["status"] == "success"
    assert vehicle.destination == (48.85, 2.35)
    for body in (
        {"latitude": 91, "longitude": 0},
        {"latitude": -90.5, "longitude": 0},
        {"latitude": 0, "longitude": 180.1},
        {"latitude": 0, "longitude": -181},
        {"latitude": 0},
        {"latitude": "north", "longitude": 0},
    ):
        error = assert_error(await api.post(path, body), 400, "VALIDATION")
        assert error["detail"][0]["field"][0] in ("latitude", "longitude")
    assert (await api.post(path, {"latitude": -90, "longitude": 180})).status == 200


async def test_service_history_filters(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    dates = sorted(r["serviceDate"] for r in vehicle.service_records)
    middle = dates[len(dates) // 2][:10]
    everything = await api.vget(
        vehicle.id, "/service/history", params={"startDate": "1990-01-01", "endDate": "2999-12-31"}
    )
    assert len(everything.body) == len(dates)
    for params in ({"startDate": middle}, {"start_date": middle}):
        reply = await api.vget(vehicle.id, "/service/history", params=params)
        assert [r["serviceDate"] for r in reply.body] == [d for d in dates if d[:10] >= middle]
    for params in ({"endDate": middle}, {"end_date": middle}):
        reply = await api.vget(vehicle.id, "/service/history", params=params)
        assert [r["serviceDate"] for r in reply.body] == [d for d in dates if d[:10] <= middle]
    assert_error(
        await api.vget(vehicle.id, "/service/history", params={"startDate": "soon"}),
        400,
        "VALIDATION",
    )
    assert_error(
        await api.vget(
            vehicle.id,
            "/service/history",
            params={"startDate": "2024-02-01", "endDate": "2024-01-01"},
        ),
        400,
        "VALIDATION",
    )
    default = await api.vget(vehicle.id, "/service/history")
    assert all(r in everything.body for r in default.body)


async def test_state_drifts_with_the_clock(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ice = emu.fleet.vehicles[1]
    ev = emu.fleet.vehicles[0]
    ev.is_plugged_in, ev.battery_level = False, 0.9
    before = [(await api.vget(v.id, s)).body for v in (ice, ev) for s in ("/odometer", "/location")]
    battery_before = (await api.vget(ev.id, "/battery")).body["percentRemaining"]
    readings = []
    for _ in range(5):
        emu.advance_clock(1800)
        readings.append((await api.vget(ice.id, "/odometer")).body["distance"])
    assert readings == sorted(readings)
    assert readings[0] > before[0]["distance"]
    after = [(await api.vget(v.id, s)).body for v in (ice, ev) for s in ("/odometer", "/location")]
    assert after[1] != before[1]
    assert after[3] != before[3]
    assert after[2]["distance"] > before[2]["distance"]
    assert (await api.vget(ev.id, "/battery")).body["percentRemaining"] < battery_before
    # Drift is plausible: at most a few hundred km in 2.5 hours.
    assert after[0]["distance"] - before[0]["distance"] < 250


async def test_make_specific_endpoints(api: Api, emu: Emulator) -> None:
    tesla, nissan, bmw, audi, chevy, cadillac = (emu.fleet.vehicles[i] for i in (0, 3, 4, 5, 6, 7))
    assert [v.make for v in (tesla, nissan, bmw, audi, chevy, cadillac)] == [
        "TESLA",
        "NISSAN",
        "BMW",
        "AUDI",
        "CHEVROLET",
        "CADILLAC",
    ]
    shapes = {
        "/tesla/charge/ammeter": {"amperage"},
        "/tesla/charge/wattmeter": {"wattage"},
        "/tesla/charge/voltmeter": {"voltage"},
        "/tesla/charge/completion": {"time"},
        "/tesla/charge/schedule": {"departureTime", "startTime"},
        "/tesla/compass": {"direction", "heading"},
        "/tesla/speedometer": {"speed"},
        "/tesla/thermometer/exterior": {"temperature"},
        "/tesla/thermometer/interior": {"temperature"},
        "/tesla/climate/cabin": {"status", "temperature"},
        "/tesla/battery": {
            "heaterOn",
            "maxRangeChargeCounter",
            "notEnoughPowerToHeat",
            "percentRemaining",
            "percentRemainingUsable",
            "range",
            "rangeEstimated",
            "rangeIdeal",
        },
        "/tesla/attributes": {
            "id",
            "make",
            "model",
            "year",
            "driveUnit",
            "driverAssistVersion",
            "efficiencyPackage",
            "firmwareVersion",
            "nickname",
            "performancePackage",
            "sentryMode",
            "style",
            "trimBadging",
            "wheel",
            "atHome",
        },
    }
    for sub, keys in shapes.items():
        reply = await api.vget(tesla.id, sub)
        assert reply.status == 200, (sub, reply.body)
        assert set(reply.body) == keys, sub
    ammeter = api.vpath(tesla.id, "/tesla/charge/ammeter")
    assert (await api.post(ammeter, {"amperage": 48})).body == {
        "message": "Successfully sent the following amperage: 48",
        "status": "success",
    }
    assert (await api.get(ammeter)).body == {"amperage": 48.0}
    schedule = api.vpath(tesla.id, "/tesla/charge/schedule")
    await api.post(schedule, {"type": "START_TIME", "enabled": True, "time": "18:30"})
    assert (await api.get(schedule)).body["startTime"] == {"enabled": True, "time": "18:30"}
    assert_error(
        await api.post(schedule, {"type": "START_TIME", "enabled": True, "time": "25:00"}),
        400,
        "VALIDATION",
    )

    nissan_path = api.vpath(nissan.id, "/nissan/charge/schedule")
    plan = {"chargeSchedules": [{"start": "01:00", "end": "02:00", "days": ["MONDAY", "FRIDAY"]}]}
    assert (await api.call("PUT", nissan_path, json=plan)).status == 200
    assert (await api.get(nissan_path)).body == {
        "chargeSchedules": [
            {
                "end": "2020-01-01T02:00:00.000Z",
                "start": "2020-01-01T01:00:00.000Z",
                "days": ["MONDAY", "FRIDAY"],
            }
        ]
    }
    too_many = {"chargeSchedules": plan["chargeSchedules"] * 4}
    assert_error(await api.call("PUT", nissan_path, json=too_many), 400, "VALIDATION")

    records = await api.vget(
        bmw.id, "/bmw/charge/records", params={"startDate": "2024-01-01", "endDate": "2024-03-01"}
    )
    assert records.status == 200
    assert records.body["records"]
    assert all(r["chargeStart"] >= "2024-01-01" for r in records.body["records"])
    again = await api.vget(
        bmw.id, "/bmw/charge/records", params={"startDate": "2024-01-01", "endDate": "2024-03-01"}
    )
    assert again.body == records.body
    assert (await api.vget(audi.id, "/audi/charge")).body["state"] in (
        "CHARGING",
        "FULLY_CHARGED",
        "NOT_CHARGING",
    )
    for vehicle, make in ((chevy, "chevrolet"), (cadillac, "cadillac")):
        assert set((await api.vget(vehicle.id, f"/{make}/charge/completion")).body) == {"time"}
        assert set((await api.vget(vehicle.id, f"/{make}/charge/voltmeter")).body) == {"voltage"}


async def test_ford_schedule_by_location(session: aiohttp.ClientSession) -> None:
    async with Emulator(vehicles=40, seed=1) as emu:
        api = Api(emu, session)
        ford_ice = emu.fleet.vehicles[1]
        ford = next(v for v in emu.fleet.with_make("ford") if v.powertrain != "ICE")
        ford_path = api.vpath(ford.id, "/ford/charge/schedule_by_location")
        put = await api.call(
            "PUT",
            ford_path,
            params={"latitude": "48.8566", "longitude": "2.3522"},
            json={
                "chargeLimit": 0.8,
                "chargingSchedules": {
                    "weekday": [{"start": "09:00", "end": "17:00"}],
                    "weekend": [],
                },
            },
        )
        assert put.body == {"message": "Successfully sent request to vehicle", "status": "success"}
        locations = (await api.get(ford_path)).body["chargingLocations"]
        assert locations == [
            {
                "chargeLimit": 0.8,
                "chargingSchedules": {
                    "weekday": [{"start": "09:00", "end": "17:00"}],
                    "weekend": [],
                },
                "location": {"latitude": 48.8566, "longitude": 2.3522},
            }
        ]
        # The F-150 is a Ford but has no battery.
        assert_error(
            await api.vget(ford_ice.id, "/ford/charge/schedule_by_location"),
            501,
            "COMPATIBILITY",
            "VEHICLE_NOT_CAPABLE",
        )


async def test_wrong_make_and_case(api: Api, emu: Emulator) -> None:
    tesla, nissan = emu.fleet.vehicles[0], emu.fleet.vehicles[3]
    # Another make's endpoint, or an upper-case make: PERMISSION, as Smartcar documents.
    assert_error(await api.vget(nissan.id, "/tesla/charge/ammeter"), 403, "PERMISSION")
    assert_error(await api.vget(tesla.id, "/TESLA/charge/ammeter"), 403, "PERMISSION")
    assert_error(await api.vget(tesla.id, "/Tesla/compass"), 403, "PERMISSION")
    assert_error(await api.vget(tesla.id, "/tesla/unknown"), 404, "RESOURCE_NOT_FOUND", "PATH")
    assert_error(await api.vget(tesla.id, "/acme/compass"), 404, "RESOURCE_NOT_FOUND", "PATH")


async def test_capability_can_be_removed(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    vehicle.capabilities.discard("/tires/pressure")
    assert_error(
        await api.vget(vehicle.id, "/tires/pressure"), 501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"
    )


async def test_webhooks_and_disconnect(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[4]
    hook = api.vpath(vehicle.id, "/webhooks/hook-1")
    assert (await api.post(hook)).body == {"webhookId": "hook-1", "vehicleId": vehicle.id}
    assert vehicle.webhooks == {"hook-1"}
    # Unsubscribe takes the Application Management Token as Bearer; any unless one is set.
    emu.management_token = "amt"
    assert_error(await api.call("DELETE", hook, token="not-amt"), 401, "AUTHENTICATION")
    assert (await api.call("DELETE", hook, token="amt")).body == {"status": "success"}
    assert vehicle.webhooks == set()

    bye = await api.call("DELETE", api.vpath(vehicle.id, "/application"))
    assert bye.body == {"status": "success"}
    assert_error(await api.vget(vehicle.id, "/odometer"), 401, "AUTHENTICATION")
    assert (
        vehicle.id not in (await api.get("/v2.0/vehicles", params={"limit": "50"})).body["vehicles"]
    )
    vehicle.connected = True
    assert (await api.vget(vehicle.id, "/odometer")).status == 200


async def test_lowering_the_limit_stops_charging(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev = emu.fleet.vehicles[0]
    ev.is_plugged_in, ev.is_charging, ev.battery_level, ev.charge_limit = True, True, 0.7, 0.9
    assert (await api.vget(ev.id, "/charge")).body["state"] == "CHARGING"
    await api.post(api.vpath(ev.id, "/charge/limit"), {"limit": 0.6})
    assert (await api.vget(ev.id, "/charge")).body["state"] == "FULLY_CHARGED"
    emu.advance_clock(3600)
    assert (await api.vget(ev.id, "/battery")).body["percentRemaining"] == 0.7


async def test_errors_aiohttp_raises_are_json_too(api: Api, emu: Emulator) -> None:
    # Bodies over aiohttp's 1 MiB limit fail inside aiohttp; the middleware renders them.
    reply = await api.call(
        "POST",
        api.vpath(emu.fleet.ids[0], "/batch"),
        data=io.BytesIO(b" " * (2 * 1024 * 1024)),
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 413
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body["type"] == "VALIDATION"
    assert reply.body["requestId"] == reply.headers["SC-Request-Id"]


async def test_bmw_charge_records_are_stable_per_day(api: Api, emu: Emulator) -> None:
    bmw = emu.fleet.vehicles[4]
    wide = await api.vget(
        bmw.id, "/bmw/charge/records", params={"startDate": "2024-01-01", "endDate": "2024-03-31"}
    )
    narrow = await api.vget(
        bmw.id, "/bmw/charge/records", params={"startDate": "2024-02-01", "endDate": "2024-02-29"}
    )
    february = [r for r in wide.body["records"] if r["chargeStart"].startswith("2024-02")]
    assert narrow.body["records"] == february
    assert_error(
        await api.vget(bmw.id, "/bmw/charge/records", params={"startDate": "01/02/2024"}),
        400,
        "VALIDATION",
    )
