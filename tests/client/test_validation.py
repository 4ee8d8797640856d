"""Bad arguments fail before any request; ids are quoted; tokens never leak."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp import web
from support import NO_RETRY, TOKEN, json_response, make_client, serve

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle

NAN = float("nan")
INF = float("inf")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"vehicle_id": ""}, ValueError),
        ({"vehicle_id": "   "}, ValueError),
        ({"vehicle_id": "."}, ValueError),
        ({"vehicle_id": ".."}, ValueError),
        ({"vehicle_id": 42}, TypeError),
        ({"vehicle_id": None}, TypeError),
        ({"access_token": ""}, ValueError),
        ({"access_token": " \t"}, ValueError),
        ({"access_token": None}, TypeError),
        ({"access_token": b"bytes"}, TypeError),
        ({"access_token": "tok\r\nX-Evil: 1"}, ValueError),
        ({"access_token": "tok\x00en"}, ValueError),
        ({"access_token": "tok\ten"}, ValueError),
        ({"access_token": "tok\x7fen"}, ValueError),
        ({"unit_system": "si"}, ValueError),
        ({"unit_system": "METRIC"}, ValueError),
        ({"unit_system": None}, ValueError),
        ({"flags": {"bad name": "x"}}, ValueError),
        ({"flags": {"country": "D E"}}, ValueError),
        ({"flags": {"country": "a:b"}}, ValueError),
        ({"flags": {"country": ""}}, ValueError),
    ],
)
async def test_bad_vehicle_arguments(
    emu: Emulator, client: Client, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    args: dict[str, Any] = {"vehicle_id": "v1", "access_token": TOKEN, **kwargs}
    vehicle_id = args.pop("vehicle_id")
    with pytest.raises(error) as info:
        client.vehicle(vehicle_id, **args)
    assert TOKEN not in str(info.value)
    assert emu.requests == []


Call = Callable[[sc.Vehicle], Awaitable[Any]]

BAD_CALLS: list[tuple[str, Call, type[Exception]]] = [
    ("limit-low", lambda c: c.set_charge_limit(0.49), ValueError),
    ("limit-high", lambda c: c.set_charge_limit(1.01), ValueError),
    ("limit-percent", lambda c: c.set_charge_limit(80), ValueError),
    ("limit-bool", lambda c: c.set_charge_limit(True), TypeError),
    ("limit-nan", lambda c: c.set_charge_limit(NAN), ValueError),
    ("limit-inf", lambda c: c.set_charge_limit(INF), ValueError),
    ("limit-str", lambda c: c.set_charge_limit("0.8"), TypeError),  # type: ignore[arg-type]
    ("lat-high", lambda c: c.send_destination(90.5, 0.0), ValueError),
    ("lat-low", lambda c: c.send_destination(-91, 0.0), ValueError),
    ("lon-high", lambda c: c.send_destination(0.0, 180.01), ValueError),
    ("lon-low", lambda c: c.send_destination(0.0, -181), ValueError),
    ("lat-nan", lambda c: c.send_destination(NAN, 0.0), ValueError),
    ("lon-inf", lambda c: c.send_destination(0.0, INF), ValueError),
    ("lat-bool", lambda c: c.send_destination(True, 0.0), TypeError),
    ("lat-str", lambda c: c.send_destination("1", 0.0), TypeError),  # type: ignore[arg-type]
    ("url", lambda c: c.request("GET", "https://evil.example/odometer"), ValueError),
    ("url-no-scheme", lambda c: c.request("GET", "//evil.example/odometer"), ValueError),
    ("dotdot", lambda c: c.request("GET", "../other/odometer"), ValueError),
    ("dotdot-inner", lambda c: c.request("GET", "/tesla/../../x"), ValueError),
    ("dotdot-only", lambda c: c.request("GET", ".."), ValueError),
    ("dot", lambda c: c.request("GET", "./odometer"), ValueError),
    ("enc-dotdot", lambda c: c.request("GET", "%2e%2e/x"), ValueError),
    ("enc-dotdot-upper", lambda c: c.request("GET", "/%2E%2E/%2E%2E/x"), ValueError),
    ("enc-dot-mixed", lambda c: c.request("GET", "/.%2e/x"), ValueError),
    ("enc-slash", lambda c: c.request("GET", "tesla%2f..%2fx"), ValueError),
    ("backslash", lambda c: c.request("GET", "..\\x"), ValueError),
    ("query", lambda c: c.request("GET", "odometer?x=1"), ValueError),
    ("fragment", lambda c: c.request("GET", "odometer#x"), ValueError),
    ("space", lambda c: c.request("GET", "odo meter"), ValueError),
    ("newline", lambda c: c.request("GET", "odometer\r\nX: 1"), ValueError),
    ("empty-segment", lambda c: c.request("GET", "/tesla//x"), ValueError),
    ("method", lambda c: c.request("TRACE", "/odometer"), ValueError),
    ("method-type", lambda c: c.request(None, "/odometer"), ValueError),  # type: ignore[arg-type]
    ("path-type", lambda c: c.request("GET", None), TypeError),  # type: ignore[arg-type]
    ("post-dotdot", lambda c: c.request("POST", "../x", body={}), ValueError),
    ("batch-str", lambda c: c.batch("/odometer"), TypeError),
    ("batch-empty", lambda c: c.batch([]), ValueError),
    ("batch-dotdot", lambda c: c.batch(["/odometer", "../x"]), ValueError),
    ("batch-url", lambda c: c.batch(["http://evil.example/x"]), ValueError),
    ("paging-limit", lambda c: c.permissions(limit=0), ValueError),
    ("paging-offset", lambda c: c.permissions(offset=-1), ValueError),
    ("paging-bool", lambda c: c.permissions(limit=True), TypeError),
    ("date-text", lambda c: c.service_history(start_date="last week"), ValueError),
    # Only the first ten characters were checked; the rest went out as given.
    ("date-tail", lambda c: c.service_history(start_date="2020-01-01&x=1"), ValueError),
    ("date-type", lambda c: c.service_history(end_date=20240101), TypeError),  # type: ignore[arg-type]
    ("webhook-slash", lambda c: c.subscribe("a/b"), ValueError),
    ("webhook-dotdot", lambda c: c.subscribe(".."), ValueError),
    ("webhook-empty", lambda c: c.unsubscribe("amt", ""), ValueError),
    ("amt-empty", lambda c: c.unsubscribe("", "hook"), ValueError),
    ("amt-newline", lambda c: c.unsubscribe("a\nb", "hook"), ValueError),
    ("amt-nul", lambda c: c.unsubscribe("amt-\x00-token", "hook"), ValueError),
    ("limit-huge-int", lambda c: c.set_charge_limit(10**400), ValueError),
    ("destination-huge-int", lambda c: c.send_destination(10**400, 0.0), ValueError),
]


@pytest.mark.parametrize(
    ("call", "error"), [b[1:] for b in BAD_CALLS], ids=[b[0] for b in BAD_CALLS]
)
async def test_bad_call_arguments_fail_before_any_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle, call: Call, error: type[Exception]
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    with pytest.raises(error) as info:
        await call(car)
    assert not isinstance(info.value, sc.SmartcarError)
    assert TOKEN not in str(info.value)
    assert emu.requests == []
    # Nothing was queued either.
    assert client._coalescer.queue_count == 0


async def test_edge_values_are_accepted(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    await car.set_charge_limit(0.5)
    await car.set_charge_limit(1.0)
    await car.send_destination(-90, 180)
    await car.send_destination(90.0, -180.0)
    await car.service_history(start_date="2020-01-01", end_date=dt.date(2030, 1, 1))
    await car.service_history(start_date="2020-01-01T00:00:00Z", end_date="2030-01-01T00:00:00")
    assert [r.body for r in emu.requests[:4]] == [
        {"limit": 0.5},
        {"limit": 1.0},
        {"latitude": -90.0, "longitude": 180.0},
        {"latitude": 90.0, "longitude": -180.0},
    ]


async def test_vehicle_ids_are_quoted_as_one_segment() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.raw_path.endswith("/batch"):
            return json_response(
                {
                    "responses": [
                        {"path": "/odometer", "code": 200, "body": {"distance": 1.0}},
                        {"path": "/vin", "code": 200, "body": {"vin": "V"}},
                    ]
                }
            )
        if request.method == "POST":
            return json_response({"status": "success", "message": "ok"})
        return json_response({"distance": 1.0})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        hostile = ["a/b", "a b", "../admin", "x?y=1#z", "%2F", "ü/€", "...", "%2E%2E", ". ."]
        for vehicle_id in hostile:
            stub.seen.clear()
            car = client.vehicle(vehicle_id, access_token=TOKEN)
            await car.odometer()
            await asyncio.gather(car.odometer(), car.vin())
            await car.lock()
            tails = []
            for seen in stub.seen:
                assert seen.query == {}, vehicle_id
                root, version, vehicles, segment, *tail = seen.raw_path.split("/")
                assert (root, version, vehicles) == ("", "v2.0", "vehicles")
                assert "/" not in segment
                assert "?" not in segment
                assert "#" not in segment
                assert unquote(segment) == vehicle_id
                tails.append("/".join(tail))
            assert tails == ["odometer", "batch", "security"], vehicle_id


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__])
    return seen


async def test_tokens_never_leak(
    emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Any] = []

    def noisy_hook(event: Any) -> None:
        events.append(event)
        raise RuntimeError("hook failure")  # logged by the client

    errors: list[BaseException] = []
    client = make_client(
        emu.url, timeout=0.3, on_batch=[noisy_hook], on_response=[noisy_hook], **NO_RETRY
    )
    async with client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        combustion = client.vehicle(ice.id, access_token=TOKEN)
        texts = [repr(client), str(client), repr(car), str(car), repr(combustion)]

        outcomes: list[object] = []
        outcomes += await asyncio.gather(
            car.odometer(),
            car.fuel(),
            combustion.battery(),
            combustion.vin(),
            return_exceptions=True,
        )
        scripted: list[tuple[dict[str, Any], Callable[[], Awaitable[object]]]] = [
            (
                {"status": 401, "type": "AUTHENTICATION", "code": None, "path": "/odometer"},
                car.odometer,
            ),
            ({"fault": "malformed", "path": "/security"}, car.lock),
            ({"fault": "slow", "seconds": 5, "path": "/location"}, car.location),
            ({"fault": "drop", "path": "/security"}, car.unlock),
        ]
        for inject, call in scripted:
            emu.inject(**inject)
            outcomes += await asyncio.gather(call(), return_exceptions=True)
        emu.inject(fault="drop", path="/batch")
        outcomes += await asyncio.gather(
            combustion.odometer(), combustion.fuel(), return_exceptions=True
        )
        emu.inject(
            in_batch=True, status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=3, path="/vin"
        )
        outcomes += await asyncio.gather(
            combustion.vin(), combustion.location(), return_exceptions=True
        )
        outcomes.append(await car.batch(["/fuel", "/odometer"]))
        emu.revoke_token(TOKEN)
        outcomes += await asyncio.gather(
            car.odometer(), car.location(), car.unlock(), return_exceptions=True
        )
        for bad in (lambda: car.set_charge_limit(2), lambda: car.request("GET", "../x")):
            try:
                await bad()
            except Exception as exc:
                errors.append(exc)
    try:
        await car.odometer()
    except Exception as exc:
        errors.append(exc)

    for outcome in outcomes:
        if isinstance(outcome, sc.BatchResponse):
            texts.append(repr(outcome))
            errors.extend(outcome.errors.values())
        elif isinstance(outcome, BaseException):
            errors.append(outcome)
    assert len(errors) >= 12
    assert {type(e) for e in errors} >= {
        sc.CompatibilityError,
        sc.AuthenticationError,
        sc.RateLimitError,
        sc.InvalidResponseError,
        sc.APITimeoutError,
        sc.APIConnectionError,
        sc.ClientClosedError,
        ValueError,
    }
    for err in errors:
        for link in _chain(err):
            texts += [str(link), repr(link), repr(link.args), repr(vars(link))]
    texts += [repr(e) for e in events]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), str(record.exc_text)]
    texts.append(caplog.text)
    assert any("hook failure" in t for t in texts), "the hook failures were logged"
    leaks = [t for t in texts if TOKEN in t]
    assert leaks == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("odometer", "/odometer"),
        ("/odometer", "/odometer"),
        ("/tires/pressure/", "/tires/pressure"),
        ("tesla/charge/ammeter", "/tesla/charge/ammeter"),
        ("", "/"),
        ("/", "/"),
        ("/a.b", "/a.b"),  # not plain: the full check, which allows a dot inside a name
        ("/x~y", "/x~y"),
    ],
)
def test_request_paths_come_back_with_one_leading_slash(path: str, expected: str) -> None:
    from smartcar_async._validate import check_request_path

    assert check_request_path(path) == expected
