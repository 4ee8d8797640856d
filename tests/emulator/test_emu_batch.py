"""Batch semantics (reference §4): envelope, per-path results, whole-batch rejections."""

from __future__ import annotations

from typing import Any

import pytest
from emu_support import Api, assert_error, assert_error_shape

from smartcar_async.testing import Emulator, RateLimits


def items(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in body["responses"]}


async def test_envelope_order_and_headers(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    ev = emu.fleet.vehicles[0]
    paths = ["/odometer", "location", "/vin", "/", "/battery", "tires/pressure"]
    reply = await api.batch(ev.id, paths, units="imperial")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    responses = reply.body["responses"]
    assert [r["path"] for r in responses] == [
        "/odometer",
        "/location",
        "/vin",
        "/",
        "/battery",
        "/tires/pressure",
    ]
    for entry in responses:
        assert entry["code"] == 200
        assert set(entry) == {"path", "code", "body", "headers"}
        assert "sc-request-id" not in entry["headers"]
    by_path = items(reply.body)
    assert by_path["/odometer"]["headers"]["sc-unit-system"] == "imperial"
    assert set(by_path["/odometer"]["headers"]) == {
        "sc-data-age",
        "sc-fetched-at",
        "sc-unit-system",
    }
    assert set(by_path["/location"]["headers"]) == {"sc-data-age", "sc-fetched-at"}
    assert by_path["/vin"]["headers"] == {}
    assert by_path["/"]["body"]["id"] == ev.id
    # Whole miles, as the real API sends the odometer.
    assert by_path["/odometer"]["body"]["distance"] == round(ev.odometer_km / 1.609344)
    # Items answer exactly what the direct GET answers.
    direct = await api.vget(ev.id, "/tires/pressure", units="imperial")
    assert by_path["/tires/pressure"]["body"] == direct.body


async def test_per_path_errors_fail_only_their_item(api: Api, emu: Emulator) -> None:
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    emu.register_token("narrow", scopes=["read_odometer", "read_fuel", "read_battery"])
    reply = await api.batch(ice.id, ["/odometer", "/battery", "/location", "/fuel"], token="narrow")
    assert reply.status == 200
    request_id = reply.headers["SC-Request-Id"]
    by_path = items(reply.body)
    assert by_path["/odometer"]["code"] == 200
    assert by_path["/fuel"]["code"] == 200
    capability = by_path["/battery"]
    assert capability["code"] == 501
    assert "headers" not in capability
    assert (capability["body"]["type"], capability["body"]["code"]) == (
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
    )
    assert_error_shape(capability["body"], 501, request_id)
    denied = by_path["/location"]
    assert denied["code"] == 403
    assert denied["body"]["type"] == "PERMISSION"
    assert_error_shape(denied["body"], 403, request_id)

    on_ev = items((await api.batch(ev.id, ["/fuel", "/engine/oil", "/battery"])).body)
    assert [on_ev[p]["code"] for p in ("/fuel", "/engine/oil", "/battery")] == [501, 501, 200]


async def test_vehicle_state_inside_batch(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    emu.faults.asleep.add(vehicle.id)
    by_path = items((await api.batch(vehicle.id, ["/odometer", "/vin", "/"])).body)
    assert by_path["/odometer"]["code"] == 409
    assert by_path["/odometer"]["body"]["code"] == "ASLEEP"
    # Smartcar serves these from its own records, so a sleeping car does not matter.
    assert by_path["/vin"]["code"] == 200
    assert by_path["/"]["code"] == 200
    emu.faults.asleep.clear()
    emu.faults.unreachable.add(vehicle.id)
    by_path = items((await api.batch(vehicle.id, ["/odometer"])).body)
    assert by_path["/odometer"]["body"]["code"] == "UNREACHABLE"


async def test_vehicle_rate_limit_per_item(api: Api, emu: Emulator) -> None:
    emu.freeze_clock()
    emu.rate_limits = RateLimits(vehicle_requests=2, vehicle_window=60)
    vehicle = emu.fleet.vehicles[0]
    reply = await api.batch(vehicle.id, ["/odometer", "/location", "/vin", "/security"])
    assert reply.status == 200
    codes = [r["code"] for r in reply.body["responses"]]
    assert codes == [200, 200, 429, 429]
    limited = reply.body["responses"][2]
    assert limited["headers"] == {"Retry-After": 60}
    assert (limited["body"]["type"], limited["body"]["code"]) == ("RATE_LIMIT", "VEHICLE")
    assert limited["body"]["resolution"] == {"type": "RETRY_LATER"}
    emu.advance_clock(20)
    again = await api.batch(vehicle.id, ["/odometer"])
    assert again.body["responses"][0]["headers"] == {"Retry-After": 40}


async def test_injected_item_errors(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    emu.inject(
        status=429,
        type="RATE_LIMIT",
        code="VEHICLE",
        retry_after=12,
        in_batch=True,
        path="/location",
    )
    emu.inject(type="UPSTREAM", code="NO_RESPONSE", in_batch=True, path="/odometer", times=2)
    reply = await api.batch(vehicle.id, ["/odometer", "/location", "/vin"])
    by_path = items(reply.body)
    assert by_path["/location"]["code"] == 429
    assert by_path["/location"]["headers"] == {"Retry-After": 12}
    assert by_path["/odometer"]["code"] == 502
    assert by_path["/odometer"]["body"]["type"] == "UPSTREAM"
    assert by_path["/vin"]["code"] == 200
    second = items((await api.batch(vehicle.id, ["/odometer", "/location"])).body)
    assert second["/odometer"]["code"] == 502
    assert second["/location"]["code"] == 200
    third = items((await api.batch(vehicle.id, ["/odometer"])).body)
    assert third["/odometer"]["code"] == 200
    # in_batch injections never touch direct requests.
    emu.inject(in_batch=True)
    assert (await api.vget(vehicle.id, "/odometer")).status == 200


async def test_item_error_rate(api: Api, emu: Emulator) -> None:
    emu.faults.item_error_rate = 1.0
    reply = await api.batch(emu.fleet.ids[0], ["/odometer", "/location"])
    assert reply.status == 200
    for entry in reply.body["responses"]:
        assert entry["code"] == 500
        assert (entry["body"]["type"], entry["body"]["code"]) == ("SERVER", "INTERNAL")


async def test_sub_paths_with_query_strings(api: Api, emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    direct = await api.vget(vehicle.id, "/permissions", params={"limit": "5", "offset": "2"})
    history = await api.vget(vehicle.id, "/service/history", params={"startDate": "2000-01-01"})
    reply = await api.batch(
        vehicle.id, ["/permissions?limit=5&offset=2", "/service/history?startDate=2000-01-01"]
    )
    by_path = items(reply.body)
    assert by_path["/permissions?limit=5&offset=2"]["body"] == direct.body
    assert by_path["/service/history?startDate=2000-01-01"]["body"] == history.body
    bad = items((await api.batch(vehicle.id, ["/permissions?limit=zero"])).body)
    assert bad["/permissions?limit=zero"]["code"] == 400


async def test_duplicates_and_make_paths(api: Api, emu: Emulator) -> None:
    tesla, nissan = emu.fleet.vehicles[0], emu.fleet.vehicles[3]
    reply = await api.batch(tesla.id, ["/vin", "/vin", "tesla/speedometer", "/TESLA/compass"])
    responses = reply.body["responses"]
    assert [r["code"] for r in responses] == [200, 200, 200, 403]
    wrong = (await api.batch(nissan.id, ["/tesla/speedometer"])).body["responses"][0]
    assert wrong["code"] == 403
    assert wrong["body"]["type"] == "PERMISSION"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"request": [{"path": "/odometer"}]}, ["requests"]),
        ({"requests": {"path": "/odometer"}}, ["requests"]),
        ({"requests": []}, ["requests"]),
        ({"requests": ["/odometer"]}, ["requests", 0]),
        ({"requests": [{"path": "/odometer"}, {}]}, ["requests", 1, "path"]),
        ({"requests": [{"path": 7}]}, ["requests", 0, "path"]),
        ({"requests": [{"path": "/odometer", "method": "GET"}]}, ["requests", 0, "method"]),
        ({"requests": [{"path": "/LOCATIONNNN"}]}, ["requests", 0, "path"]),
        ({"requests": [{"path": "/navigation/destination"}]}, ["requests", 0, "path"]),
        ({"requests": [{"path": "/application"}]}, ["requests", 0, "path"]),
        ({"requests": [{"path": "/batch"}]}, ["requests", 0, "path"]),
        ({"requests": [{"path": "/webhooks/abc"}]}, ["requests", 0, "path"]),
        (["/odometer"], []),
    ],
)
async def test_whole_batch_validation(api: Api, emu: Emulator, body: Any, field: list[Any]) -> None:
    reply = await api.post(api.vpath(emu.fleet.ids[0], "/batch"), body)
    error = assert_error(reply, 400, "VALIDATION")
    assert error["detail"][0]["field"] == field
    assert all(isinstance(d["message"], str) and d["message"] for d in error["detail"])


async def test_batch_request_errors_are_java_fixture_shaped(api: Api, emu: Emulator) -> None:
    reply = await api.post(api.vpath(emu.fleet.ids[0], "/batch"), {"request": []})
    assert assert_error(reply, 400, "VALIDATION")["detail"] == [
        {"field": ["requests"], "message": '"requests" is required'},
        {"field": ["request"], "message": '"request" is not allowed'},
    ]


async def test_batch_rejections_that_cover_the_whole_request(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    broken = await api.call(
        "POST",
        api.vpath(vid, "/batch"),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert_error(broken, 400, "VALIDATION")
    assert_error(await api.batch(vid, ["/odometer"], token=None), 401, "AUTHENTICATION")
    emu.register_token("other-car", vehicle_ids=[emu.fleet.ids[1]])
    assert_error(await api.batch(vid, ["/odometer"], token="other-car"), 403, "PERMISSION")
    assert_error(await api.batch(vid, ["/odometer"], units="nautical"), 400, "VALIDATION")
    emu.inject(status=500, path="/batch")
    assert_error(await api.batch(vid, ["/odometer"]), 500, "SERVER", "INTERNAL")
    assert (await api.batch(vid, ["/odometer"])).status == 200
