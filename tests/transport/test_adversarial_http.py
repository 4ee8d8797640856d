"""A hostile or broken server, over real loopback sockets (issue 11).

Two servers: an ``aiohttp.web`` app for faults that are well-formed HTTP
(absurd Retry-After values, 5xx HTML pages, wrong content types, empty or
oversized bodies, slow bodies, 429 storms), and a raw asyncio server for
malformed HTTP (cut bodies, resets after the headers, slow headers, bad
chunking, a lying Content-Length, a garbage status line, nothing at all).

Every case runs the same callers at once: three coalesced reads of one
vehicle, a lone read of another, a write to a third. Each caller must get a
model or a SmartcarError subclass; nothing may hang; reads are retried as
the error deserves and writes never; no task is left behind; the loop
reports nothing (no "never retrieved", no "destroyed but pending", no
unclosed session); and the same client then works against a healed server.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from raw_server import RawRequest, http_response, json_answer, raw_server
from support import TOKEN, assert_no_leftover_tasks
from transport_support import (
    Callers,
    LoopWatch,
    call_everyone,
    is_model_or_error,
    make_client,
    web_server,
    works_afterwards,
)

import smartcar_async as sc
from smartcar_async._exceptions import MAX_RETRY_AFTER

pytestmark = pytest.mark.timeout(60)

MODEL = "model"
Outcome = type[sc.SmartcarError] | str

# Requests seen for car-a (its coalesced batch), car-b (a lone GET) and
# car-c (a write): a transient failure is tried 1 + max_retries times for a
# read and once for a write; a final one once.
RETRIED = (3, 3, 1)
ONCE = (1, 1, 1)


@attrs.frozen
class Case:
    id: str
    fault: Any  # a web fault, or a raw server script
    expect: tuple[Outcome, ...]  # what each caller may get
    # Requests seen per vehicle: one of these shapes; None: at most one each.
    attempts: tuple[int, int, int] | list[tuple[int, int, int]] | None
    blocks_app: bool = False  # a RATE_LIMIT:SMARTCAR_API that closes the whole client
    check: Callable[[Callers], None] | None = None


def _check_outcomes(case: Case, callers: Callers) -> None:
    for outcome in callers.all():
        assert is_model_or_error(outcome), (case.id, outcome)
        kind: Outcome = type(outcome) if isinstance(outcome, sc.SmartcarError) else MODEL
        assert any(
            kind == allowed or (isinstance(allowed, type) and isinstance(outcome, allowed))
            for allowed in case.expect
        ), (case.id, outcome)
        if isinstance(outcome, sc.SmartcarError):
            assert outcome.retry_after is None or 0 <= outcome.retry_after <= MAX_RETRY_AFTER
            assert TOKEN not in str(outcome)
            assert TOKEN not in repr(outcome)
    if case.check is not None:
        case.check(callers)


def _check_attempts(case: Case, counts: tuple[int, int, int]) -> None:
    if case.attempts is None:
        assert all(n <= 1 for n in counts), (case.id, counts)
    elif isinstance(case.attempts, list):
        assert counts in case.attempts, (case.id, counts)
    else:
        assert counts == case.attempts, (case.id, counts)


async def _afterwards(case: Case, client: sc.Client, sent: Callable[[], int]) -> None:
    if case.blocks_app:
        # The application gate stays closed (for at most MAX_RETRY_AFTER):
        # every call fails fast, sends nothing, and overflows nothing.
        before = sent()
        for call in (
            client.vehicle("car-fresh", access_token=TOKEN).odometer,
            client.vehicle("car-fresh", access_token=TOKEN).unlock,
        ):
            with anyio.fail_after(5), pytest.raises(sc.RateLimitError) as info:
                await call()
            assert info.value.retry_after is not None
            assert 0 < info.value.retry_after <= MAX_RETRY_AFTER
        assert sent() == before
        return
    await works_afterwards(client)


# ------------------------------------------------------------ web faults


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def rate_limited(retry_after: str, code: str = "VEHICLE") -> Callable[..., Any]:
    async def fault(request: web.Request) -> web.StreamResponse:
        body = {
            "type": "RATE_LIMIT",
            "code": code,
            "description": "Slow down.",
            "statusCode": 429,
            "requestId": "req-429",
        }
        return _json(429, body, {"Retry-After": retry_after})

    return fault


def html_page(status: int) -> Callable[..., Any]:
    async def fault(request: web.Request) -> web.StreamResponse:
        page = f"<html><body><h1>{status} Bad things</h1><p>nginx</p></body></html>"
        return web.Response(status=status, text=page, content_type="text/html")

    return fault


async def json_as_html(request: web.Request) -> web.StreamResponse:
    status, body = json_answer(RawRequest(request.method, request.path, {}, await request.read()))
    return web.Response(status=status, body=body, content_type="text/html")


async def html_200(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, text="<html>maintenance</html>", content_type="text/html")


async def empty_200(request: web.Request) -> web.StreamResponse:
    return web.Response(status=200, body=b"", content_type="application/json")


async def no_content(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def empty_500(request: web.Request) -> web.StreamResponse:
    return web.Response(status=500, body=b"")


async def too_large_declared(request: web.Request) -> web.StreamResponse:
    padding = " " * (100 * 1024)
    return web.Response(
        status=200, text='{"distance": 1' + padding + "}", content_type="application/json"
    )


#: Bytes the streaming fault managed to hand to its socket, per request.
streamed: list[int] = []
STREAM_TOTAL = 48 * 1024 * 1024


async def too_large_streamed(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sent = 0
    chunk = b" " * (256 * 1024)
    try:
        await resp.write(b'{"distance": 1')
        while sent < STREAM_TOTAL:
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write(b"}")
        await resp.write_eof()
    except ConnectionError:
        pass  # the client stopped reading and dropped the connection: what we want
    finally:
        streamed.append(sent)
    return resp


_BOMB = gzip.compress(b'{"distance": 1' + b" " * (8 * 1024 * 1024) + b"}")


async def gzip_bomb(request: web.Request) -> web.StreamResponse:
    return web.Response(
        status=200,
        body=_BOMB,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


async def slow_body(request: web.Request) -> web.StreamResponse:
    status, body = json_answer(RawRequest(request.method, request.path, {}, await request.read()))
    resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    resp.content_length = len(body)
    await resp.prepare(request)
    try:
        for byte in body:
            await resp.write(bytes([byte]))
            await asyncio.sleep(0.1)
    except ConnectionError:
        pass
    return resp


async def slow_answer(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1.5)
    return _json(200, {"distance": 1.0})


def _stopped_streaming(callers: Callers) -> None:
    for outcome in callers.all():
        assert "max_response_size" in str(outcome)


def _says_limit(callers: Callers) -> None:
    for outcome in callers.all():
        assert isinstance(outcome, sc.InvalidResponseError)
        assert "max_response_size" in str(outcome)


EMPTY_SUCCESS: tuple[Outcome, ...] = (sc.InvalidResponseError, MODEL)


def _empty_success(callers: Callers) -> None:
    # An empty success is no reading, but to a write it means done (issue 11, item 13).
    for outcome in (*callers.coalesced, callers.lone):
        assert isinstance(outcome, sc.InvalidResponseError)
    assert isinstance(callers.write, sc.Action)


FAR_DATE = "Fri, 31 Dec 9999 23:59:59 GMT"

WEB_CASES = [
    Case("retry-after-1e306", rate_limited("1e306"), (sc.RateLimitError,), ONCE),
    Case("retry-after-1e400", rate_limited("1e400"), (sc.RateLimitError,), ONCE),
    Case("retry-after-huge-int", rate_limited("9" * 40), (sc.RateLimitError,), ONCE),
    Case("retry-after-year-9999", rate_limited(FAR_DATE), (sc.RateLimitError,), ONCE),
    Case("retry-after-inf", rate_limited("inf"), (sc.RateLimitError,), RETRIED),
    Case("retry-after-nan", rate_limited("nan"), (sc.RateLimitError,), RETRIED),
    Case("retry-after-negative", rate_limited("-1"), (sc.RateLimitError,), RETRIED),
    Case("retry-after-garbage", rate_limited("soon™"), (sc.RateLimitError,), RETRIED),
    Case(
        "retry-after-past-date",
        rate_limited("Thu, 01 Jan 1970 00:00:00 GMT"),
        (sc.RateLimitError,),
        RETRIED,
    ),
    Case("429-storm", rate_limited("0"), (sc.RateLimitError,), RETRIED),
    Case(
        "app-limit-1e306",
        rate_limited("1e306", "SMARTCAR_API"),
        (sc.RateLimitError,),
        None,
        blocks_app=True,
    ),
    Case(
        "app-limit-year-9999",
        rate_limited(FAR_DATE, "SMARTCAR_API"),
        (sc.RateLimitError,),
        None,
        blocks_app=True,
    ),
    Case("html-500", html_page(500), (sc.ServerError,), RETRIED),
    Case("html-502", html_page(502), (sc.UpstreamError,), RETRIED),
    Case("html-503", html_page(503), (sc.UpstreamError,), RETRIED),
    Case("html-504", html_page(504), (sc.UpstreamError,), RETRIED),
    Case("json-labelled-html", json_as_html, (MODEL,), ONCE),
    Case("html-200", html_200, (sc.InvalidResponseError,), ONCE),
    Case("empty-200", empty_200, EMPTY_SUCCESS, ONCE, check=_empty_success),
    Case("no-content-204", no_content, EMPTY_SUCCESS, ONCE, check=_empty_success),
    Case("empty-500", empty_500, (sc.ServerError,), RETRIED),
    Case(
        "too-large-declared",
        too_large_declared,
        (sc.InvalidResponseError,),
        ONCE,
        check=_says_limit,
    ),
    Case(
        "too-large-streamed",
        too_large_streamed,
        (sc.InvalidResponseError,),
        ONCE,
        check=_stopped_streaming,
    ),
    Case("gzip-bomb", gzip_bomb, (sc.InvalidResponseError,), ONCE, check=_says_limit),
    Case("slow-body", slow_body, (sc.APITimeoutError,), RETRIED),
    Case("slow-answer", slow_answer, (sc.APITimeoutError,), RETRIED),
]


@pytest.mark.parametrize("case", WEB_CASES, ids=lambda c: c.id)
async def test_well_formed_faults(case: Case) -> None:
    streamed.clear()
    async with LoopWatch():
        async with web_server(case.fault) as server, make_client(server.url) as client:
            callers = await call_everyone(client)
            _check_outcomes(case, callers)
            _check_attempts(
                case, (server.count("car-a"), server.count("car-b"), server.count("car-c"))
            )
            server.heal()
            await _afterwards(case, client, lambda: len(server.seen))
        await assert_no_leftover_tasks()
    if case.fault is too_large_streamed:
        # Each of the three answers was cut off long before its end.
        assert len(streamed) == 3
        assert all(sent < STREAM_TOTAL for sent in streamed), streamed


async def test_a_429_storm_on_many_vehicles_fails_each_caller_once() -> None:
    async with LoopWatch():
        async with web_server(rate_limited("0")) as server, make_client(server.url) as client:
            cars = [client.vehicle(f"car-{i}", access_token=TOKEN) for i in range(30)]
            with anyio.fail_after(20):
                outcomes = await asyncio.gather(
                    *(car.odometer() for car in cars),
                    *(car.location() for car in cars),
                    *(car.lock() for car in cars[:10]),
                    return_exceptions=True,
                )
            assert all(isinstance(o, sc.RateLimitError) for o in outcomes), outcomes
            for i in range(30):
                # One batch per attempt for reads, one request for a write.
                assert server.count(f"car-{i}") == 3 + (1 if i < 10 else 0)
            server.heal()
            await works_afterwards(client)
        await assert_no_leftover_tasks()


# ------------------------------------------------------------- raw faults

Script = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


def _head(data: bytes) -> bytes:
    return data[: data.index(b"\r\n\r\n") + 4]


async def cut_body(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(http_response(status, body)[:-5])
    await writer.drain()
    return False


async def reset_after_headers(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(_head(http_response(status, body)))
    await writer.drain()
    await asyncio.sleep(0.02)
    writer.transport.abort()  # an RST, not a FIN
    return False


async def slow_headers(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
    await writer.drain()
    await asyncio.sleep(2)
    return False


async def bad_chunking_at_once(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n"
    )
    await writer.drain()
    return False


async def bad_chunking_later(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"ZZ\r\n{}\r\n0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    return False


async def chunked_cut(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    _status, body = json_answer(request)
    half = body[: len(body) // 2]
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(body):x}\r\n".encode()
        + half
    )
    await writer.drain()
    return False


async def length_too_short(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(http_response(status, body, content_length=len(body) - 3))
    await writer.drain()
    return True


async def length_too_long_then_close(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(http_response(status, body, content_length=len(body) + 100))
    await writer.drain()
    return False


async def length_too_long_then_stall(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(http_response(status, body, content_length=len(body) + 100))
    await writer.drain()
    await asyncio.sleep(2)
    return False


async def garbage_status_line(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTZ/9.9 banana split\r\n\r\n")
    await writer.drain()
    return False


async def body_without_head(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b'{"distance": 1}')
    await writer.drain()
    return False


async def close_without_answer(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    return False


async def html_502(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    writer.write(
        http_response(502, page, reason="Bad Gateway", headers={"Content-Type": "text/html"})
    )
    await writer.drain()
    return True


async def huge_declared_length(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(http_response(200, b'{"distance": 1', content_length=10**12))
    await writer.drain()
    # The client must refuse from the header: waiting for the body would end
    # in APITimeoutError, retried, instead of one InvalidResponseError.
    await asyncio.sleep(2)
    return False


async def negative_length(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}")
    await writer.drain()
    return False


async def until_close_over_the_cap(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
    writer.write(b'{"distance": 1' + b" " * (1024 * 1024) + b"}")
    await writer.drain()
    return False


async def header_flood(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * 100_000 + b"\r\n\r\n{}")
    await writer.drain()
    return False


async def interim_then_close(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await writer.drain()
    return False


def _no_fake_status(callers: Callers) -> None:
    # aiohttp's parser says 400 when it cannot parse an answer; the server said nothing.
    for outcome in callers.all():
        assert isinstance(outcome, sc.InvalidResponseError)
        assert outcome.status_code is None
        assert "malformed HTTP" in str(outcome)


LOST = (sc.APIConnectionError,)

RAW_CASES = [
    Case("cut-body", cut_body, LOST, RETRIED),
    Case("reset-after-headers", reset_after_headers, LOST, RETRIED),
    Case("slow-headers", slow_headers, (sc.APITimeoutError,), RETRIED),
    Case("bad-chunking-at-once", bad_chunking_at_once, (sc.InvalidResponseError,), ONCE),
    # aiohttp's C parser (3.14) leaves the body waiting after a bad chunk size
    # that comes in a packet of its own, server's FIN or not: only the
    # per-attempt timeout ends it. Its pure-Python parser fails the body at once.
    Case(
        "bad-chunking-after-headers",
        bad_chunking_later,
        (sc.APIConnectionError, sc.APITimeoutError),
        RETRIED,
    ),
    Case("chunked-cut", chunked_cut, LOST, RETRIED),
    Case("length-too-short", length_too_short, (sc.InvalidResponseError,), ONCE),
    Case("length-too-long-then-close", length_too_long_then_close, LOST, RETRIED),
    Case("length-too-long-then-stall", length_too_long_then_stall, (sc.APITimeoutError,), RETRIED),
    Case(
        "garbage-status-line",
        garbage_status_line,
        (sc.InvalidResponseError,),
        ONCE,
        check=_no_fake_status,
    ),
    # Malformed for the C parser; the pure-Python one waits for a line end
    # that never comes, and then the connection is gone.
    Case(
        "body-without-head",
        body_without_head,
        (sc.InvalidResponseError, sc.APIConnectionError),
        [ONCE, RETRIED],
    ),
    Case("close-without-answer", close_without_answer, LOST, RETRIED),
    Case("html-502-page", html_502, (sc.UpstreamError,), RETRIED),
    Case(
        "huge-declared-length",
        huge_declared_length,
        (sc.InvalidResponseError,),
        ONCE,
        check=_says_limit,
    ),
    Case("negative-length", negative_length, (sc.InvalidResponseError,), ONCE),
    Case(
        "until-close-over-the-cap",
        until_close_over_the_cap,
        (sc.InvalidResponseError,),
        ONCE,
        check=_says_limit,
    ),
    Case("header-flood", header_flood, (sc.InvalidResponseError,), ONCE),
    Case("interim-then-close", interim_then_close, LOST, RETRIED),
]


@pytest.mark.parametrize("case", RAW_CASES, ids=lambda c: c.id)
async def test_malformed_http(case: Case) -> None:
    async with LoopWatch():
        async with raw_server(case.fault) as server, make_client(server.url) as client:
            callers = await call_everyone(client)
            _check_outcomes(case, callers)
            counts = tuple(
                sum(1 for r in server.requests if f"/vehicles/{v}/" in r.target)
                for v in ("car-a", "car-b", "car-c")
            )
            _check_attempts(case, counts)  # type: ignore[arg-type]
            server.heal()
            await _afterwards(case, client, lambda: len(server.requests))
        await assert_no_leftover_tasks()
