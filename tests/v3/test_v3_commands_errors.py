"""v3 commands (200 and held 202), JSON:API errors, retries, and the v3 origin."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from v3_support import make_v3_client, serve, v3_requests

from smartcar_async import (
    Action,
    Client,
    CommandResult,
    CompatibilityError,
    RateLimitError,
    ServerError,
    UpstreamError,
    ValidationError,
    VehicleStateError,
)
from smartcar_async._exceptions import error_from_response
from smartcar_async.testing import Emulator, SimulatedVehicle


async def test_commands_go_to_v3_paths_with_v3_bodies(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = client.vehicle(ev.id, access_token=token, api_version="3")
    emu.clear_requests()
    unlocked = await car.unlock()
    assert isinstance(unlocked, CommandResult)
    assert isinstance(unlocked, Action)
    assert unlocked.status == "SUCCESS"
    assert unlocked.http_status == 200
    assert not unlocked.running
    assert unlocked.command_type == "security-unlock"
    assert unlocked.id is not None
    assert not ev.is_locked
    await car.lock()
    assert ev.is_locked
    limit = await car.set_charge_limit(0.8)
    assert limit.parameters == {"percent": 80}
    assert ev.charge_limit == 0.8
    await car.send_destination(48.85, 2.35)
    assert ev.destination == (48.85, 2.35)
    await car.open_charge_port()
    await car.close_charge_port()
    sent = [r for r in emu.requests if r.path.startswith("/v3/")]
    assert [r.path.rsplit("/commands/", 1)[1] for r in sent] == [
        "security/unlock",
        "security/lock",
        "charge/set-limit",
        "navigation/set-destination",
        "charge-port/open",
        "charge-port/close",
    ]
    assert sent[2].body == {"data": {"attributes": {"percent": 80}}}
    with pytest.raises(ValueError):
        await car.set_charge_limit(0.805)  # v3 takes a whole percent
    with pytest.raises(ValueError):
        await car.set_charge_limit(0.4)


async def test_a_held_202_returns_its_final_result_or_raises_its_errors(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = client.vehicle(ev.id, access_token=token, api_version="3")
    emu.slow_command_seconds = 0.1
    result = await car.unlock()
    assert result.http_status == 202
    assert result.status == "SUCCESS"
    assert not result.running
    assert result.execution_mode == "async"
    ev.open_doors.add("frontLeft")  # lock then fails while held
    with pytest.raises(VehicleStateError) as caught:
        await car.lock()
    assert caught.value.code == "DOOR_OPEN"
    assert caught.value.status_code == 409


async def test_a_202_without_a_final_result_is_still_running() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/security/lock"):
            return web.Response(status=202)
        body = {"data": {"id": "exec_1", "attributes": {"status": {"value": "PENDING"}}}}
        return web.json_response(body, status=202)

    async with serve(handler) as stub, Client(vehicle_api_origin=stub.url) as client:
        car = client.vehicle("car", access_token="t", api_version="3")
        empty = await car.lock()
        pending = await car.unlock()
    assert empty.running
    assert empty.status == "PENDING"
    assert empty.http_status == 202
    assert pending.running
    assert pending.id == "exec_1"


async def test_commands_are_never_retried(emu: Emulator, ev: SimulatedVehicle, token: str) -> None:
    async with make_v3_client(emu, max_retries=3, retry_backoff=0.01) as client:
        car = client.vehicle(ev.id, access_token=token, api_version="3")
        emu.inject(type="SERVER", code="INTERNAL", path="/v3/commands/security/lock", times=1)
        emu.clear_requests()
        with pytest.raises(ServerError) as caught:
            await car.lock()
    assert caught.value.status_code == 500
    assert len(v3_requests(emu)) == 1


async def test_v3_reads_retry_under_the_send_policy(
    emu: Emulator, ev: SimulatedVehicle, token: str
) -> None:
    async with make_v3_client(emu, max_retries=2, retry_backoff=0.01) as client:
        car = client.vehicle(ev.id, access_token=token, api_version="3")
        emu.inject(type="RATE_LIMIT", code="VEHICLE", path="/v3/signals", retry_after=1, times=1)
        emu.inject(type="UPSTREAM", code="UNKNOWN", path="/v3/signals", times=1)
        emu.clear_requests()
        odometer, battery = await asyncio.gather(car.odometer(), car.battery())
        assert odometer.distance > 0
        assert battery.percent_remaining > 0
        assert v3_requests(emu) == [("GET", "signals")] * 3
        assert client.stats.retries == 2


async def test_v3_error_bodies_map_to_the_v2_classes(
    emu: Emulator, client: Client, ev: SimulatedVehicle, token: str
) -> None:
    car = client.vehicle(ev.id, access_token=token, api_version="3")
    emu.inject(type="COMPATIBILITY", code="VEHICLE_NOT_CAPABLE", path="/v3/signals", times=1)
    with pytest.raises(CompatibilityError) as caught:
        await car.get_signals()
    error = caught.value
    assert error.status_code == 501
    assert type(error.status_code) is int
    assert error.type == "COMPATIBILITY"
    assert error.code == "VEHICLE_NOT_CAPABLE"
    assert error.description
    assert len(error.errors) == 1
    assert error.resolution is not None
    assert error.doc_url is not None


def test_every_error_of_the_list_is_kept_and_v2_parsing_is_unchanged() -> None:
    body = {
        "errors": [
            {
                "status": "429",
                "type": "RATE_LIMIT",
                "code": "VEHICLE",
                "title": "Vehicle Rate Limit",
                "detail": "Slow down.",
                "resolution": {"type": "RETRY_LATER"},
                "suggestedUserMessage": "Try later.",
            },
            {"status": "502", "type": "UPSTREAM", "code": "INVALID_DATA", "title": "Bad Gateway"},
            "not an object",
        ]
    }
    error = error_from_response(429, body, {"Retry-After": "7", "SC-Request-Id": "r-1"})
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert error.status_code == 429
    assert error.description == "Slow down."
    assert error.request_id == "r-1"
    assert error.suggested_user_message == "Try later."
    assert [type(e) for e in error.errors][:2] == [RateLimitError, UpstreamError]
    assert error.errors[1].description == "Bad Gateway"
    assert error.errors[1].status_code == 502
    assert len(error.errors) == 3
    v2 = error_from_response(
        400, {"type": "VALIDATION", "code": None, "description": "bad", "statusCode": 400}
    )
    assert isinstance(v2, ValidationError)
    assert v2.errors == ()
    assert str(v2) == "VALIDATION - bad"


async def test_the_v3_origin_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        return web.Response(text=json.dumps({"data": []}), content_type="application/json")

    async with serve(handler) as stub:
        monkeypatch.setenv("SMARTCAR_VEHICLE_API_V3_ORIGIN", stub.url + "/")
        async with Client() as client:
            assert client.vehicle_api_origin == stub.url
            await client.vehicle("c1", access_token="t", api_version="3").get_signals()
    monkeypatch.delenv("SMARTCAR_VEHICLE_API_V3_ORIGIN")
    assert seen == ["/v3/vehicles/c1/signals"]
    assert Client().vehicle_api_origin == "https://vehicle.api.smartcar.com"
    with pytest.raises(ValueError):
        Client(vehicle_api_origin="ftp://x")
