"""Regression tests for issue 11, items 1, 4, 7, 9 and 10, over loopback.

1. Durations from the network are bounded: a ``Retry-After`` of ``1e306``
   or an ``expires_in`` of ``10**12`` never overflows anything.
4. A connection lost mid-body is a lost connection: reads retried, writes not.
7. One rule for every time bound: a number > 0, or None.
9. Response bodies have a size cap.
10. No CR/LF or control character in a user agent or a source's token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.http_exceptions import (
    ContentEncodingError,
    ContentLengthError,
    HttpProcessingError,
    TransferEncodingError,
)
from raw_server import RawRequest, http_response, json_answer, raw_server
from support import TOKEN, assert_no_leftover_tasks
from transport_support import LoopWatch, make_client, web_server, works_afterwards

import smartcar_async as sc
from smartcar_async._account._auth import MAX_EXPIRES_IN
from smartcar_async._exceptions import MAX_RETRY_AFTER, parse_retry_after
from smartcar_async._gates import Gates, TokenBucket
from smartcar_async._models_account import Access
from smartcar_async._options import DEFAULT_MAX_RESPONSE_SIZE
from smartcar_async._policy import RetryConfig
from smartcar_async._poll_state import _VehicleState
from smartcar_async._transport import map_transport_error

pytestmark = pytest.mark.timeout(60)

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: a request would be an APIConnectionError


def _rate_limit_body(code: str) -> bytes:
    return json.dumps(
        {"type": "RATE_LIMIT", "code": code, "description": "Slow down.", "statusCode": 429}
    ).encode()


# ------------------------------------------------------ 1. absurd durations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1e306", MAX_RETRY_AFTER),
        ("1e400", MAX_RETRY_AFTER),  # a numeral past float range is still a numeral
        ("9" * 400, MAX_RETRY_AFTER),
        (10**400, MAX_RETRY_AFTER),
        (1e306, MAX_RETRY_AFTER),
        ("86401", MAX_RETRY_AFTER),
        ("86400", MAX_RETRY_AFTER),
        ("120", 120.0),
        ("-0", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
        ("inf", None),
        ("-inf", None),
        ("Infinity", None),
        ("nan", None),
        (float("inf"), None),
        (float("nan"), None),
        ("-1e400", None),
        ("-1", None),
    ],
)
def test_retry_after_is_clamped_to_one_day(value: object, expected: float | None) -> None:
    assert MAX_RETRY_AFTER == 86400.0
    assert parse_retry_after(value, now=1_700_000_000.0) == expected


async def test_an_absurd_app_wide_retry_after_fails_fast_everywhere_and_never_overflows() -> None:
    """The reported failure: Retry-After 1e306 on RATE_LIMIT:SMARTCAR_API."""
    answered = 0

    async def first_is_429(request: web.Request) -> web.StreamResponse:
        nonlocal answered
        answered += 1
        return web.Response(
            status=429,
            body=_rate_limit_body("SMARTCAR_API"),
            content_type="application/json",
            headers={"Retry-After": "1e306"},
        )

    async with LoopWatch(), web_server(first_is_429) as server:
        async with make_client(server.url, max_retry_after=60.0) as client:
            first = client.vehicle("car-1", access_token=TOKEN)
            with pytest.raises(sc.RateLimitError) as info:
                await first.odometer()
            assert info.value.retry_after == MAX_RETRY_AFTER
            server.heal()  # the server would answer now; the client must not ask

            other = client.vehicle("car-2", access_token=TOKEN)
            calls: list[Callable[[], Awaitable[Any]]] = [
                first.odometer,
                first.location,
                first.lock,
                other.odometer,
                other.unlock,
                lambda: _first_of(other.batch(["/odometer", "/location"])),
            ]
            for call in calls:
                with anyio.fail_after(5), pytest.raises(sc.RateLimitError) as info:
                    await call()
                assert info.value.retry_after is not None
                assert 0 < info.value.retry_after <= MAX_RETRY_AFTER

            # A poller's round ends with results, not with an ExceptionGroup.
            async with sc.FleetPoller(
                reads=("odometer", "location"),
                interval=10.0,
                rounds=1,
                vehicles=[first, other],
            ) as poller:
                with anyio.fail_after(10):
                    results = [r async for r in poller.results()]
            assert sorted(r.vehicle_id for r in results) == ["car-1", "car-2"]
            for result in results:
                assert set(result.errors) == {"odometer", "location"}
                assert all(isinstance(e, sc.RateLimitError) for e in result.errors.values())
                assert math.isfinite(result.backoff)
                assert 0 < result.backoff <= MAX_RETRY_AFTER
                json.dumps(result.to_dict())
            assert answered == 1
        await assert_no_leftover_tasks()


async def test_an_absurd_vehicle_retry_after_closes_only_that_vehicle() -> None:
    async def limited(request: web.Request) -> web.StreamResponse:
        if "/car-1/" in request.path:
            return web.Response(
                status=429,
                body=_rate_limit_body("VEHICLE"),
                content_type="application/json",
                headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
            )
        status, body = json_answer(RawRequest(request.method, request.path, {}, b""))
        return web.Response(status=status, body=body, content_type="application/json")

    async with LoopWatch(), web_server(limited) as server:
        async with make_client(server.url) as client:
            car = client.vehicle("car-1", access_token=TOKEN)
            for call in (car.odometer, car.odometer, car.lock):
                with anyio.fail_after(5), pytest.raises(sc.RateLimitError) as info:
                    await call()
                assert info.value.retry_after is not None
                assert info.value.retry_after <= MAX_RETRY_AFTER
            assert server.count("car-1") == 1
            server.heal()
            await works_afterwards(client)
        await assert_no_leftover_tasks()


async def _first_of(pending: Awaitable[sc.BatchResponse]) -> Any:
    return (await pending)["/odometer"]  # raises that path's error


def test_gates_bound_any_wait_they_are_given() -> None:
    gates = Gates()
    error = sc.RateLimitError("limited", code="VEHICLE", retry_after=float("inf"))
    assert gates.rate_limited("car-1", error, fallback=1.0) == MAX_RETRY_AFTER
    assert error.retry_after == MAX_RETRY_AFTER
    gates.block(None, 1e306, sc.RateLimitError("app", code="SMARTCAR_API"))
    gates.hold("car-2", float("inf"))
    gates.hold("car-3", float("nan"))
    gates.block("car-4", float("-inf"), sc.RateLimitError("past"))
    for vehicle in ("car-1", "car-2", "car-3", "car-4"):
        wait, _ = gates.blocked_for(vehicle)
        assert 0 < wait <= MAX_RETRY_AFTER
        failed = gates.fail_fast_error(vehicle, 60.0)
        assert failed is not None
        assert failed.retry_after is not None
        assert failed.retry_after <= MAX_RETRY_AFTER


async def test_a_token_bucket_with_a_tiny_rate_sleeps_without_overflow() -> None:
    bucket = TokenBucket(capacity=1, refill_per_minute=1e-300)
    await bucket.acquire(1)
    with anyio.move_on_after(0.05) as scope:
        await bucket.acquire(1)  # would wait ~1e302 s: bounded to a day, cut short here
    assert scope.cancelled_caught


def test_backoff_growth_never_overflows() -> None:
    config = RetryConfig(initial_backoff=0.5, max_backoff=8.0)
    for retry in (1, 64, 1025, 10**6):
        assert 0 < config.backoff(retry) <= 8.0
    assert RetryConfig(initial_backoff=0.0, max_backoff=8.0).backoff(10**6) == 0.0


async def test_a_poller_backoff_after_a_thousand_failures_does_not_overflow() -> None:
    # A vehicle asleep for a thousand rounds: the doubling must stop growing.
    async with sc.Client(api_origin=UNREACHABLE) as client:
        poller = sc.FleetPoller(reads=("odometer",), interval=60.0, max_backoff=3600.0)
        state = _VehicleState(client.vehicle("car-1", access_token=TOKEN))
        state.failures = 5000
        asleep = sc.VehicleStateError("asleep", type="VEHICLE_STATE", code="ASLEEP")
        assert poller._note_outcome(state, {"odometer": asleep}) == 3600.0


def _token_server(expires_in: object) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def token(request: web.Request) -> web.StreamResponse:
        body = {
            "access_token": "new-access",
            "refresh_token": "new-refresh",
            "token_type": "Bearer",
            "expires_in": expires_in,
        }
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    return token


@pytest.mark.parametrize("expires_in", [10**12, 10**100, MAX_EXPIRES_IN + 1])
async def test_an_absurd_expires_in_is_clamped_to_a_year(expires_in: int) -> None:
    async with (
        LoopWatch(),
        web_server(_token_server(expires_in)) as server,
        sc.AuthClient("id", "secret", auth_origin=server.url) as auth,
    ):
        for access in (
            await auth.exchange_code("the-code"),
            await auth.exchange_refresh_token("old-refresh"),
        ):
            assert access.expires_in == MAX_EXPIRES_IN == 365 * 24 * 3600
            left = access.expiration - dt.datetime.now(dt.UTC)
            assert dt.timedelta(days=364) < left <= dt.timedelta(days=365)
            assert access.refresh_token == "new-refresh"  # the new pair is not lost
        # ... and a token source built on it keeps working.
        source = sc.RefreshingTokenSource(auth, access)
        assert await source.token() == "new-access"


@pytest.mark.parametrize("expires_in", [-1, 1.5, "7200", None, float("inf")])
async def test_a_malformed_expires_in_is_still_refused(expires_in: object) -> None:
    async with (
        web_server(_token_server(expires_in)) as server,
        sc.AuthClient("id", "secret", auth_origin=server.url) as auth,
    ):
        with pytest.raises(sc.InvalidResponseError) as info:
            await auth.exchange_code("the-code")
        assert info.value.field == "expires_in"


def _access(expiration: dt.datetime) -> Access:
    now = dt.datetime.now(dt.UTC)
    return Access("acc", "Bearer", 7200, expiration, "ref", now + dt.timedelta(days=60))


class _NoExchange:
    async def exchange_refresh_token(self, refresh_token: str) -> Access:
        raise AssertionError("no refresh expected")


class _Exchange:
    async def exchange_refresh_token(self, refresh_token: str) -> Access:
        fresh = _access(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
        return Access("acc-2", "Bearer", 7200, fresh.expiration, "ref-2", fresh.refresh_expiration)


@pytest.mark.parametrize("margin", [float("inf"), float("nan"), -1.0, 1e300, 10**400])
def test_a_refresh_margin_that_cannot_be_a_duration_is_a_value_error(margin: float) -> None:
    with pytest.raises(ValueError, match="refresh_margin"):
        sc.RefreshingTokenSource(
            _NoExchange(), _access(dt.datetime.now(dt.UTC)), refresh_margin=margin
        )


async def test_a_far_expiration_and_a_large_margin_do_not_overflow() -> None:
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    # now + margin would pass datetime.max; the margin is compared with what is left.
    source = sc.RefreshingTokenSource(_NoExchange(), _access(far), refresh_margin=1e9)
    assert await source.token() == "acc"
    source = sc.RefreshingTokenSource(_Exchange(), _access(far), refresh_margin=1e12)
    assert await source.token() == "acc-2"  # 31 700 years of margin: refresh now


# ---------------------------------------------- 4. a connection lost mid-body


def _cut_first(times: int) -> Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]:
    seen = 0

    async def script(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
        nonlocal seen
        seen += 1
        status, body = json_answer(request)
        if seen <= times:
            writer.write(http_response(status, body)[:-4])  # headers and part of the body
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.transport.abort()
            return False
        writer.write(http_response(status, body))
        await writer.drain()
        return True

    return script


async def test_a_read_whose_body_is_cut_is_retried() -> None:
    async with LoopWatch(), raw_server(_cut_first(2)) as server:
        async with make_client(server.url, max_retries=2) as client:
            odometer = await client.vehicle("car-1", access_token=TOKEN).odometer()
            assert odometer.distance == 1234.5
            assert len(server.requests) == 3
        await assert_no_leftover_tasks()


async def test_a_read_whose_body_is_always_cut_fails_as_a_lost_connection() -> None:
    async with LoopWatch(), raw_server(_cut_first(100)) as server:
        async with make_client(server.url, max_retries=2) as client:
            with pytest.raises(sc.APIConnectionError, match="broke while the answer was read"):
                await client.vehicle("car-1", access_token=TOKEN).odometer()
            assert len(server.requests) == 3
        await assert_no_leftover_tasks()


async def test_a_write_whose_body_is_cut_is_not_sent_again() -> None:
    async with LoopWatch(), raw_server(_cut_first(1)) as server:
        async with make_client(server.url, max_retries=2) as client:
            with pytest.raises(sc.APIConnectionError):
                await client.vehicle("car-1", access_token=TOKEN).lock()
            assert [r.method for r in server.requests] == ["POST"]
        await assert_no_leftover_tasks()


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (ContentLengthError("Not enough data to satisfy content length header."), "lost"),
        (TransferEncodingError("Not enough data to satisfy transfer length header."), "lost"),
        (None, "lost"),
        (ContentEncodingError("Can not decode content-encoding: gzip"), "invalid"),
    ],
)
def test_a_payload_error_is_a_lost_connection_unless_the_body_came_whole(
    cause: BaseException | None, expected: str
) -> None:
    exc = aiohttp.ClientPayloadError("Response payload is not completed")
    exc.__cause__ = cause
    mapped = map_transport_error(exc)
    if expected == "lost":
        assert type(mapped) is sc.APIConnectionError
    else:
        assert type(mapped) is sc.InvalidResponseError


def _walk(cls: type[BaseException]) -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_walk(sub))
    return list(dict.fromkeys(found))


@pytest.mark.parametrize(
    "cls", [HttpProcessingError, *_walk(HttpProcessingError)], ids=lambda c: c.__name__
)
def test_every_aiohttp_parser_error_is_mapped(cls: type[HttpProcessingError]) -> None:
    # aiohttp's pure-Python parser raises these bare (the C one wraps them).
    factory: Any = cls  # each class has its own signature
    exc = factory(message="bad") if cls is HttpProcessingError else factory("HTTZ/9 banana")
    mapped = map_transport_error(exc)
    assert isinstance(mapped, sc.TransportError)
    assert type(mapped) is not sc.TransportError
    wrapped = aiohttp.ClientResponseError(None, (), status=400, message="bad")  # type: ignore[arg-type]
    wrapped.__cause__ = exc
    from_response = map_transport_error(wrapped)
    assert isinstance(from_response, sc.InvalidResponseError)
    assert from_response.status_code is None  # aiohttp's 400, not the server's


# ------------------------------------------------------- 7. one rule for bounds

BAD_VALUES: list[tuple[object, type[Exception]]] = [
    (0, ValueError),
    (0.0, ValueError),
    (-1, ValueError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (10**400, ValueError),
    ("1", TypeError),
    (True, TypeError),
    ([1], TypeError),
]


def _bound_takers() -> dict[str, Callable[[object], Any]]:
    def client_with(**kw: object) -> Any:
        return sc.Client(api_origin=UNREACHABLE, **kw)  # type: ignore[arg-type]

    def handle(**kw: object) -> Any:
        car = sc.Client(api_origin=UNREACHABLE).vehicle("car-1", access_token=TOKEN)
        return car.with_options(**kw)  # type: ignore[arg-type]

    return {
        "Client.timeout": lambda v: client_with(timeout=v),
        "Client.deadline": lambda v: client_with(deadline=v),
        "with_options.timeout": lambda v: handle(timeout=v),
        "with_options.deadline": lambda v: handle(deadline=v),
        "AuthClient.timeout": lambda v: sc.AuthClient("id", "secret", timeout=v),
        "FleetPoller.timeout": lambda v: sc.FleetPoller(
            reads=("odometer",),
            interval=1.0,
            timeout=v,
        ),
        "FleetPoller.interval": lambda v: sc.FleetPoller(reads=("odometer",), interval=v),
    }


TAKERS = _bound_takers()


@pytest.mark.parametrize(("value", "error"), BAD_VALUES, ids=repr)
@pytest.mark.parametrize("taker", sorted(TAKERS))
async def test_every_bound_refuses_what_is_not_a_positive_number(
    taker: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        TAKERS[taker](value)


@pytest.mark.parametrize("taker", sorted(TAKERS))
async def test_every_bound_takes_a_positive_number(taker: str) -> None:
    for value in (1, 0.001, 310.0, 1e300):
        TAKERS[taker](value)


@pytest.mark.parametrize("taker", [t for t in sorted(TAKERS) if t != "FleetPoller.interval"])
async def test_none_means_no_bound(taker: str) -> None:
    TAKERS[taker](None)


ACCOUNT_CALLS: dict[str, Callable[[object], Any]] = {
    "get_user": lambda v: sc.get_user(TOKEN, api_origin=UNREACHABLE, timeout=v),  # type: ignore[arg-type]
    "get_vehicles": lambda v: sc.get_vehicles(TOKEN, api_origin=UNREACHABLE, timeout=v),  # type: ignore[arg-type]
    "iter_vehicles": lambda v: sc.iter_vehicles(TOKEN, api_origin=UNREACHABLE, timeout=v),  # type: ignore[arg-type]
    "get_connections": lambda v: sc.get_connections(
        "amt",
        management_origin=UNREACHABLE,
        timeout=v,  # type: ignore[arg-type]
    ),
    "iter_connections": lambda v: sc.iter_connections(
        "amt",
        management_origin=UNREACHABLE,
        timeout=v,  # type: ignore[arg-type]
    ),
    "delete_connections": lambda v: sc.delete_connections(
        "amt",
        vehicle_id="car-1",
        management_origin=UNREACHABLE,
        timeout=v,  # type: ignore[arg-type]
    ),
    "get_compatibility": lambda v: sc.get_compatibility(
        "1HGCM82633A004352",
        ["read_odometer"],
        client_id="id",
        client_secret="secret",
        api_origin=UNREACHABLE,
        timeout=v,  # type: ignore[arg-type]
    ),
}


@pytest.mark.parametrize(("value", "error"), BAD_VALUES, ids=repr)
@pytest.mark.parametrize("name", sorted(ACCOUNT_CALLS))
async def test_account_functions_use_the_same_rule_before_any_io(
    name: str, value: object, error: type[Exception]
) -> None:
    async def call() -> None:
        pending = ACCOUNT_CALLS[name](value)  # the iter_* helpers check when called
        if asyncio.iscoroutine(pending):
            await pending

    with pytest.raises(error):
        await call()


@pytest.mark.parametrize(
    "name",
    ["batch_window", "retry_backoff", "max_backoff", "min_vehicle_interval", "close_timeout"],
)
def test_waits_where_zero_means_none_still_take_zero(name: str) -> None:
    sc.Client(api_origin=UNREACHABLE, **{name: 0})  # type: ignore[arg-type]
    for bad in (-1, float("nan"), float("inf"), 10**400):
        with pytest.raises(ValueError, match=name):
            sc.Client(api_origin=UNREACHABLE, **{name: bad})  # type: ignore[arg-type]


async def test_a_zero_timeout_no_longer_means_no_timeout() -> None:
    # It used to: a read waited out a 5 s stall. Now it is refused up front.
    with pytest.raises(ValueError, match="timeout"):
        sc.Client(api_origin=UNREACHABLE, timeout=0)
    with pytest.raises(ValueError, match="deadline"):
        sc.Client(api_origin=UNREACHABLE).vehicle("car-1", access_token=TOKEN).with_options(
            deadline=0
        )


async def test_a_huge_bound_is_no_bound_at_all_and_overflows_nothing() -> None:
    async with (
        web_server() as server,
        make_client(server.url, timeout=1e300, deadline=1e300) as client,
    ):
        car = client.vehicle("car-1", access_token=TOKEN)
        assert (await car.odometer()).distance == 1234.5
        assert (await car.with_options(deadline=1e308).lock()).status == "success"


# ------------------------------------------------------------ 9. size cap


def test_the_default_cap_is_8_mib() -> None:
    assert DEFAULT_MAX_RESPONSE_SIZE == 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("value", "error"),
    [(None, TypeError), (0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)],
)
def test_max_response_size_is_a_positive_int(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="max_response_size"):
        sc.Client(api_origin=UNREACHABLE, max_response_size=value)  # type: ignore[arg-type]
    with pytest.raises(error, match="max_response_size"):
        sc.AuthClient("id", "secret", max_response_size=value)  # type: ignore[arg-type]


def _padded(size: int) -> bytes:
    return b'{"distance": 1' + b" " * size + b"}"


async def test_the_default_cap_refuses_a_larger_body_and_is_not_retried() -> None:
    big = _padded(DEFAULT_MAX_RESPONSE_SIZE)

    async def huge(request: web.Request) -> web.StreamResponse:
        return web.Response(body=big, content_type="application/json")

    async with LoopWatch(), web_server(huge) as server:
        async with sc.Client(api_origin=server.url, max_retries=2, timeout=10) as client:
            with pytest.raises(sc.InvalidResponseError, match="max_response_size"):
                await client.vehicle("car-1", access_token=TOKEN).odometer()
            assert len(server.seen) == 1
            server.heal()
            assert (await client.vehicle("car-2", access_token=TOKEN).odometer()).distance
        await assert_no_leftover_tasks()


async def test_a_body_just_under_the_cap_is_read() -> None:
    body = _padded(4000)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async with web_server(answer) as server:
        async with make_client(server.url, max_response_size=len(body)) as client:
            assert (await client.vehicle("car-1", access_token=TOKEN).odometer()).distance == 1
        async with make_client(server.url, max_response_size=len(body) - 1) as client:
            with pytest.raises(sc.InvalidResponseError):
                await client.vehicle("car-1", access_token=TOKEN).odometer()


async def test_auth_client_and_account_functions_have_the_cap() -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=_padded(DEFAULT_MAX_RESPONSE_SIZE), content_type="application/json"
        )

    async with LoopWatch(), web_server(huge) as server:
        async with sc.AuthClient("id", "secret", auth_origin=server.url) as auth:
            with pytest.raises(sc.InvalidResponseError, match="max_response_size"):
                await auth.exchange_code("the-code")
        small = sc.AuthClient("id", "secret", auth_origin=server.url, max_response_size=100)
        server.fault = _token_server(7200)
        with pytest.raises(sc.InvalidResponseError, match="max_response_size"):
            await small.exchange_code("the-code")
        assert await sc.AuthClient("id", "secret", auth_origin=server.url).exchange_code("c")

        server.fault = huge
        with pytest.raises(sc.InvalidResponseError, match="max_response_size"):
            await sc.get_user(TOKEN, api_origin=server.url)
        await assert_no_leftover_tasks()


# ------------------------------------------------- 10. user agent and tokens


@pytest.mark.parametrize(
    "agent", ["app\r\nX-Evil: 1", "app\n", "app\r", "app\x00", "app\x7f", "app\x1b[31m", "a\u2028b"]
)
def test_a_user_agent_with_a_control_character_is_a_value_error(agent: str) -> None:
    with pytest.raises(ValueError, match="user_agent"):
        sc.Client(api_origin=UNREACHABLE, user_agent=agent)


def test_a_user_agent_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="user_agent"):
        sc.Client(api_origin=UNREACHABLE, user_agent=b"app/1.0")  # type: ignore[arg-type]


async def test_a_plain_user_agent_is_sent_as_given() -> None:
    agents: list[str] = []

    async def record(request: web.Request) -> web.StreamResponse:
        agents.append(request.headers["User-Agent"])
        return web.Response(body=b'{"distance": 1}', content_type="application/json")

    async with (
        web_server(record) as server,
        make_client(server.url, user_agent="my-fleet/2.1 (ops; é)") as client,
    ):
        await client.vehicle("car-1", access_token=TOKEN).odometer()
    assert agents == ["my-fleet/2.1 (ops; é)"]


BAD_TOKENS: list[object] = [
    "tok\r\nX-Evil: 1",
    "tok\n",
    "tok\x00",
    "tok\x7f",
    "tok en",
    "tok\ten",
    "tok\u2028",
    "tok\xa0en",
    "",
    "   ",
    None,
    42,
    b"tok",
]


class _Source:
    """A token source whose token() or refresh() hands out ``bad``."""

    def __init__(self, bad: object, *, on_refresh: bool) -> None:
        self.bad = bad
        self.on_refresh = on_refresh

    async def token(self) -> str:
        return "good-token" if self.on_refresh else self.bad  # type: ignore[return-value]

    async def refresh(self, stale: str) -> str:
        return self.bad  # type: ignore[return-value]


def _sources(bad: object) -> dict[str, object]:
    async def from_callable() -> str:
        return bad  # type: ignore[return-value]

    return {
        "token": _Source(bad, on_refresh=False),
        "refresh": _Source(bad, on_refresh=True),
        "callable": from_callable,
    }


@pytest.mark.parametrize("which", ["token", "refresh", "callable"])
@pytest.mark.parametrize("bad", BAD_TOKENS, ids=repr)
async def test_a_bad_token_from_a_source_is_an_authentication_error_before_any_io(
    which: str, bad: object
) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        body = {"type": "AUTHENTICATION", "code": None, "description": "bad", "statusCode": 401}
        return web.Response(
            status=401, body=json.dumps(body).encode(), content_type="application/json"
        )

    async with web_server(refuse) as server:
        async with make_client(server.url) as client:
            car = client.vehicle("car-1", access_token=_sources(bad)[which])  # type: ignore[call-overload]
            for call in (car.odometer, car.lock):
                with pytest.raises(sc.AuthenticationError) as info:
                    await call()
                error = info.value
                assert error.type == "AUTHENTICATION"
                assert "token source returned an unusable token" in str(error)
                if isinstance(bad, str) and bad.strip():
                    assert bad not in str(error)
                    assert bad not in repr(error)
        # Only the refresh case sent anything: the request the 401 answered.
        sent_with = [path for _, path in server.seen]
        assert len(sent_with) == (2 if which == "refresh" else 0)
