"""Errors: one typed class per Smartcar error, transport failures, odd bodies."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiohttp import web
from support import NO_RETRY, TOKEN, json_response, make_client, serve

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, RateLimits, SimulatedVehicle

# (status, type, code, class)
API_ERRORS: list[tuple[int, str, str | None, type[sc.APIError]]] = [
    (400, "VALIDATION", None, sc.ValidationError),
    (400, "CONNECTED_SERVICES_ACCOUNT", "ACCOUNT_ISSUE", sc.ConnectedServicesAccountError),
    (401, "AUTHENTICATION", None, sc.AuthenticationError),
    (403, "PERMISSION", None, sc.PermissionDeniedError),
    (404, "RESOURCE_NOT_FOUND", "PATH", sc.ResourceNotFoundError),
    (409, "VEHICLE_STATE", "ASLEEP", sc.VehicleStateError),
    (429, "RATE_LIMIT", "VEHICLE", sc.RateLimitError),
    (430, "BILLING", "VEHICLE_LIMIT", sc.BillingError),
    (500, "SERVER", "INTERNAL", sc.ServerError),
    (501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", sc.CompatibilityError),
    (502, "UPSTREAM", "INVALID_DATA", sc.UpstreamError),
]
IDS = [f"{s}-{t}" for s, t, _, _ in API_ERRORS]


def _check_api_error(
    err: BaseException, status: int, kind: str, code: str | None, cls: type[sc.APIError]
) -> None:
    assert type(err) is cls, repr(err)
    assert isinstance(err, sc.APIError)
    assert isinstance(err, sc.SmartcarError)
    assert (err.status_code, err.type, err.code) == (status, kind, code)
    assert err.description
    assert err.description in str(err)
    assert err.doc_url is not None
    assert err.doc_url.startswith("https://smartcar.com/docs/")
    assert isinstance(err.request_id, str)
    assert err.request_id
    assert err.resolution is None or isinstance(err.resolution, sc.Resolution)
    if kind == "RATE_LIMIT":
        assert err.retry_after == 7
    else:
        assert err.retry_after is None


@pytest.mark.parametrize(("status", "kind", "code", "cls"), API_ERRORS, ids=IDS)
async def test_http_error_types(
    emu: Emulator,
    client: Client,
    ev: SimulatedVehicle,
    status: int,
    kind: str,
    code: str | None,
    cls: type[sc.APIError],
) -> None:
    retry_after = 7 if kind == "RATE_LIMIT" else None
    emu.inject(status=status, type=kind, code=code, path="/odometer", retry_after=retry_after)
    car = client.vehicle(ev.id, access_token=TOKEN)
    with pytest.raises(sc.SmartcarError) as info:
        await car.odometer()
    _check_api_error(info.value, status, kind, code, cls)
    assert len(emu.requests) == 1


@pytest.mark.parametrize(("status", "kind", "code", "cls"), API_ERRORS, ids=IDS)
async def test_batch_item_error_types(
    emu: Emulator,
    client: Client,
    ev: SimulatedVehicle,
    status: int,
    kind: str,
    code: str | None,
    cls: type[sc.APIError],
) -> None:
    retry_after = 7 if kind == "RATE_LIMIT" else None
    emu.inject(
        status=status,
        type=kind,
        code=code,
        path="/odometer",
        retry_after=retry_after,
        in_batch=True,
    )
    car = client.vehicle(ev.id, access_token=TOKEN)
    odo, vin = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
    assert isinstance(vin, sc.Vin)
    assert isinstance(odo, BaseException)
    _check_api_error(odo, status, kind, code, cls)
    assert len(emu.requests) == 1


async def test_write_errors_are_typed(emu: Emulator, client: Client, ev: SimulatedVehicle) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    ev.open_doors.add("frontLeft")
    with pytest.raises(sc.VehicleStateError) as info:
        await car.lock()
    assert info.value.code == "DOOR_OPEN"
    with pytest.raises(sc.VehicleStateError):
        await car.stop_charge()  # not charging
    emu.register_token("narrow", scopes=["read_odometer"])
    with pytest.raises(sc.PermissionDeniedError):
        await client.vehicle(ev.id, access_token="narrow").unlock()


async def test_expired_and_revoked_tokens(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    emu.register_token("short-lived")
    emu.expire_token("short-lived")
    with pytest.raises(sc.AuthenticationError):
        await client.vehicle(ev.id, access_token="short-lived").odometer()
    emu.revoke_token(TOKEN)
    with pytest.raises(sc.AuthenticationError):
        await client.vehicle(ev.id, access_token=TOKEN).lock()


# ------------------------------------------------------- transport failures


async def test_dropped_connection(emu: Emulator, ev: SimulatedVehicle) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        # aiohttp may not silently re-send a dropped GET (see
        # test_a_dropped_get_is_sent_once_with_retries_off): one drop is one failure.
        emu.inject(fault="drop", path="/odometer", times=1)
        with pytest.raises(sc.APIConnectionError):
            await car.odometer()
        emu.inject(fault="drop", path="/batch")
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [sc.APIConnectionError] * 2
        emu.inject(fault="drop", path="/security")
        with pytest.raises(sc.APIConnectionError):
            await car.lock()
        assert isinstance(await car.odometer(), sc.Odometer)


async def test_a_dropped_get_is_sent_once_with_retries_off(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    events: list[sc.ResponseReceived] = []
    async with make_client(emu.url, on_response=[events.append], **NO_RETRY) as client:
        emu.inject(fault="drop", path="/odometer")
        outcome = await asyncio.gather(
            client.vehicle(ev.id, access_token=TOKEN).odometer(), return_exceptions=True
        )
        assert client.stats.http_requests == len(events) == len(emu.requests)
        assert isinstance(outcome[0], sc.APIConnectionError)


async def test_slow_answer_times_out(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.inject(fault="slow", seconds=30, path="/odometer")
    emu.inject(fault="slow", seconds=30, path="/batch")
    async with make_client(emu.url, timeout=0.2, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        with pytest.raises(sc.APITimeoutError):
            await car.odometer()
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [sc.APITimeoutError] * 2
        assert isinstance(await car.odometer(), sc.Odometer)


async def test_malformed_json(emu: Emulator, ev: SimulatedVehicle) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        emu.inject(fault="malformed", path="/odometer")
        with pytest.raises(sc.InvalidResponseError):
            await car.odometer()
        emu.inject(fault="malformed", path="/batch")
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [sc.InvalidResponseError] * 2
        emu.inject(fault="malformed", path="/security")
        with pytest.raises(sc.InvalidResponseError):
            await car.lock()
        assert ev.is_locked  # the emulator serves malformed answers after the state change


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    async with make_client(f"http://127.0.0.1:{port}", **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        with pytest.raises(sc.APIConnectionError):
            await car.odometer()
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [sc.APIConnectionError] * 2


# -------------------------------------------- bodies the emulator never sends


def _fixed(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("status", "body", "cls", "kind", "description"),
    [
        (
            409,
            b'{"error": "vehicle_state_error", "message": "Vehicle is asleep", "code": "VS_001"}',
            sc.VehicleStateError,
            "vehicle_state_error",
            "Vehicle is asleep",
        ),
        (
            430,
            b'{"error": "monthly_limit_exceeded_error", "message": "Over the limit"}',
            sc.BillingError,
            "monthly_limit_exceeded_error",
            "Over the limit",
        ),
        (
            501,
            b'{"error": "vehicle_not_capable_error", "message": "Nope"}',
            sc.CompatibilityError,
            "vehicle_not_capable_error",
            "Nope",
        ),
        (
            400,
            b'{"error": "invalid_grant", "error_description": "Code expired"}',
            sc.AuthenticationError,
            "invalid_grant",
            "Code expired",
        ),
        (
            400,
            b'{"error": "invalid_request", "error_description": "Missing code"}',
            sc.ValidationError,
            "invalid_request",
            "Missing code",
        ),
        (401, b'{"error": "invalid_client"}', sc.AuthenticationError, "invalid_client", None),
    ],
    ids=["v1-state", "v1-billing", "v1-capable", "oauth-grant", "oauth-request", "oauth-client"],
)
async def test_legacy_and_oauth_error_bodies(
    status: int,
    body: bytes,
    cls: type[sc.APIError],
    kind: str,
    description: str | None,
) -> None:
    async with (
        serve(_fixed(status, body, **{"SC-Request-Id": "rid-legacy"})) as stub,
        make_client(stub.url, **NO_RETRY) as client,
    ):
        car = client.vehicle("v1", access_token=TOKEN)
        with pytest.raises(sc.SmartcarError) as info:
            await car.odometer()
        err = info.value
        assert type(err) is cls
        assert (err.type, err.status_code, err.description) == (kind, status, description)
        assert err.request_id == "rid-legacy"
        with pytest.raises(cls):
            await car.lock()


@pytest.mark.parametrize(
    ("status", "body", "content_type", "cls"),
    [
        (
            502,
            b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>",
            "text/html",
            sc.UpstreamError,
        ),
        (503, b"", "text/plain", sc.UpstreamError),
        (504, b"upstream timed out", "text/plain", sc.UpstreamError),
        (500, b"{not json", "application/json", sc.ServerError),
        (507, b"", "text/plain", sc.ServerError),
        (418, b"I'm a teapot", "text/plain", sc.APIError),
        (404, b'{"unexpected": "shape"}', "application/json", sc.ResourceNotFoundError),
    ],
    ids=["502-html", "503-empty", "504-text", "500-bad-json", "507", "418", "404-odd-json"],
)
async def test_error_statuses_without_a_smartcar_body(
    status: int, body: bytes, content_type: str, cls: type[sc.APIError]
) -> None:
    async with (
        serve(_fixed(status, body, content_type)) as stub,
        make_client(stub.url, **NO_RETRY) as client,
    ):
        car = client.vehicle("v1", access_token=TOKEN)
        with pytest.raises(sc.SmartcarError) as info:
            await car.odometer()
        assert type(info.value) is cls
        assert info.value.status_code == status
        if content_type == "text/html":
            assert "502 Bad Gateway" in str(info.value)
            assert "\n" not in str(info.value)
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [cls, cls]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>hello</html>", "text/html"),
        (b'{"distance": ', "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
    ],
    ids=["html", "truncated", "not-utf8"],
)
async def test_a_2xx_that_is_not_json(body: bytes, content_type: str) -> None:
    async with (
        serve(_fixed(200, body, content_type)) as stub,
        make_client(stub.url, **NO_RETRY) as client,
    ):
        car = client.vehicle("v1", access_token=TOKEN)
        with pytest.raises(sc.InvalidResponseError):
            await car.odometer()
        outcomes = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        assert [type(o) for o in outcomes] == [sc.InvalidResponseError] * 2
        with pytest.raises(sc.InvalidResponseError):
            await car.lock()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"distanc": 12.0}, "distance"),
        ({"distance": "12.0"}, "distance"),
        ({"distance": True}, "distance"),
        ({"distance": None}, "distance"),
    ],
    ids=["missing", "string", "bool", "null"],
)
async def test_a_missing_or_mistyped_field_is_named(payload: dict[str, Any], field: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(payload, headers={"SC-Request-Id": "rid-field"})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        with pytest.raises(sc.InvalidResponseError) as info:
            await client.vehicle("v1", access_token=TOKEN).odometer()
        assert info.value.field == field
        assert field in str(info.value)
        assert info.value.request_id == "rid-field"


async def test_nested_field_errors_are_named_in_wire_terms() -> None:
    lock = {
        "isLocked": True,
        "doors": [{"type": "frontLeft", "status": "LOCKED"}, {"type": "frontRight", "status": 5}],
    }

    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(lock)

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        with pytest.raises(sc.InvalidResponseError) as info:
            await client.vehicle("v1", access_token=TOKEN).lock_status()
        assert info.value.field == "doors[1].status"


async def test_extra_fields_are_tolerated() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/batch"):
            return json_response(
                {
                    "responses": [
                        {"path": "/odometer", "code": 200, "body": {"distance": 1.0, "new": [1]}},
                        {"path": "/vin", "code": 200, "body": {"vin": "V", "x": None}, "y": 1},
                    ],
                    "somethingNew": True,
                }
            )
        return json_response({"distance": 2, "unit": "km", "nested": {"a": 1}})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        odo = await car.odometer()
        assert odo.distance == 2.0
        assert isinstance(odo.distance, float)
        odo, vin = await asyncio.gather(car.odometer(), car.vin())
        assert (odo.distance, vin.vin) == (1.0, "V")


async def test_a_bad_field_inside_a_batch_fails_only_that_path() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "responses": [
                    {"path": "/odometer", "code": 200, "body": {"distance": "far"}},
                    {"path": "/vin", "code": 200, "body": {"vin": "V"}},
                ]
            },
            headers={"SC-Request-Id": "rid-b"},
        )

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        odo, odo2, vin = await asyncio.gather(
            car.odometer(), car.odometer(), car.vin(), return_exceptions=True
        )
        assert isinstance(vin, sc.Vin)
        for err in (odo, odo2):
            assert isinstance(err, sc.InvalidResponseError)
            assert err.field == "distance"
            assert err.request_id == "rid-b"
        assert odo is not odo2


@pytest.mark.parametrize(
    "envelope",
    [
        {"responses": "nope"},
        {"nothing": []},
        [],
        {"responses": [{"path": "/odometer"}]},
        {"responses": [{"code": 200, "body": {}}]},
        {"responses": [42]},
    ],
    ids=["not-a-list", "no-responses", "array", "no-code", "no-path", "not-an-object"],
)
async def test_a_malformed_batch_envelope_fails_every_caller(envelope: Any) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return json_response(envelope)

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        outcomes = await asyncio.gather(
            car.odometer(), car.vin(), car.odometer(), return_exceptions=True
        )
        assert [type(o) for o in outcomes] == [sc.InvalidResponseError] * 3


async def test_a_pathologically_nested_body_is_an_invalid_response() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000

    async def handler(request: web.Request) -> web.StreamResponse:
        status = 500 if request.path.endswith("/vin") else 200
        return web.Response(status=status, body=deep, content_type="application/json")

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        outcomes = await asyncio.gather(
            car.odometer(),
            car.lock(),
            car.permissions(limit=1),
            asyncio.gather(car.location(), car.fuel()),
            return_exceptions=True,
        )
        assert [type(o) for o in outcomes] == [sc.InvalidResponseError] * 4
        with pytest.raises(sc.ServerError):
            await car.vin()


async def test_emulator_vehicle_rate_limit_inside_a_batch(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    emu.rate_limits = RateLimits(vehicle_requests=2, vehicle_window=60)
    car = client.vehicle(ev.id, access_token=TOKEN)
    outcomes = await asyncio.gather(
        car.odometer(), car.location(), car.tire_pressure(), return_exceptions=True
    )
    limited = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(limited) == 1, outcomes
    (err,) = limited
    assert isinstance(err, sc.RateLimitError)
    assert (err.code, err.status_code) == ("VEHICLE", 429)
    assert err.retry_after is not None
    assert 0 < err.retry_after <= 60
    assert len(emu.requests) == 1


async def test_emulator_application_bucket_fails_the_whole_batch(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    emu.rate_limits = RateLimits(app_capacity=1, app_refill_per_minute=2)
    car = client.vehicle(ev.id, access_token=TOKEN)
    # One batch, one token (the bucket counts requests): it spends the bucket.
    await asyncio.gather(car.odometer(), car.location(), car.vin())
    outcomes = await asyncio.gather(
        car.odometer(), car.location(), car.odometer(), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [sc.RateLimitError] * 3
    for err in outcomes:
        assert isinstance(err, sc.RateLimitError)
        assert err.code == "SMARTCAR_API"
        assert err.retry_after is not None
        assert err.retry_after > 0
    assert len(emu.requests) == 2
