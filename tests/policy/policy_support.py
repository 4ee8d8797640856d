"""Helpers for the resilience tests (issue 4): retries, rate limits, pacing, timeouts, tokens.

Everything speaks real HTTP over 127.0.0.1, to the emulator or to a tiny
``aiohttp.web`` app (`serve`) for the shapes the emulator never sends (a 408,
an HTTP-date Retry-After, a lower-case ``retry-after`` inside a batch item).
Assertions count requests; elapsed time is only ever compared against waits
that are at least 0.5 s apart from the alternative.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from email.utils import formatdate
from typing import Any

import aiohttp
import attrs
from aiohttp import web
from leftovers import assert_no_leftover_tasks as assert_no_leftover_tasks
from leftovers import leftover_tasks as leftover_tasks
from leftovers import settle as settle
from leftovers import wait_until as shared_wait_until
from stub_http import json_response as json_response

from smartcar_async import Client, ResponseReceived
from smartcar_async._exceptions import error_from_response
from smartcar_async._models_account import Access
from smartcar_async.testing import Emulator, RecordedRequest

TOKEN = "tok-RESILIENCE-5c1d"
V2 = "/v2.0/vehicles/"
OAUTH = "/oauth/token"
CLIENT_ID = "resilience-client"
CLIENT_SECRET = "resilience-secret"

# Only ever a guard against hangs; never an assertion about speed.
HANG_GUARD = 15.0

# Small backoffs keep the suite fast; retries still happen for real.
FAST: dict[str, Any] = {
    "timeout": 10.0,
    "close_timeout": 5.0,
    "retry_backoff": 0.01,
    "max_backoff": 0.05,
}


def make_client(origin: str, **kwargs: Any) -> Client:
    """A client for loopback tests with small backoffs unless overridden."""
    return Client(api_origin=origin, **{**FAST, **kwargs})


# ------------------------------------------------------------ request log views


def vehicle_requests(emu: Emulator, vehicle_id: str | None = None) -> list[RecordedRequest]:
    """Recorded Vehicle API requests (optionally of one vehicle), oldest first."""
    prefix = V2 if vehicle_id is None else f"{V2}{vehicle_id}/"
    exact = None if vehicle_id is None else f"{V2}{vehicle_id}"
    return [r for r in emu.requests if r.path.startswith(prefix) or r.path == exact]


def oauth_requests(emu: Emulator) -> list[RecordedRequest]:
    return [r for r in emu.requests if r.method == "POST" and r.path == OAUTH]


def shape(req: RecordedRequest) -> tuple[str, str]:
    """``("GET", "/odometer")`` or ``("POST", "/batch")``: method and vehicle sub-path."""
    rest = req.path[len(V2) :]
    _, _, sub = rest.partition("/")
    return req.method, "/" + sub


def batch_paths(req: RecordedRequest) -> list[str]:
    body = req.body
    assert isinstance(body, dict), body
    assert isinstance(body.get("requests"), list), body
    return sorted(item["path"] for item in body["requests"])


def bearer(req: RecordedRequest) -> str:
    header = req.headers.get("Authorization", "")
    assert header.startswith("Bearer "), header
    return header[len("Bearer ") :]


# ------------------------------------------------------------------ loop helpers


#: Poll a condition every 5 ms; fail after HANG_GUARD seconds.
wait_until = functools.partial(shared_wait_until, within=HANG_GUARD)


# ------------------------------------------------------------------ observability


@attrs.define
class Exchange:
    """One HTTP exchange seen through ``on_response``: when it was sent and answered."""

    method: str
    path: str
    vehicle_id: str | None
    status: int | None
    error: str | None
    sent: float
    answered: float


@attrs.define
class Timeline:
    """An ``on_response`` hook recording every exchange with its send time.

    ``sent`` is derived from the hook's call time minus the reported latency,
    i.e. the moment the client put the request on the wire (after gates,
    pacing and the concurrency limit).
    """

    exchanges: list[Exchange] = attrs.field(factory=list)
    on_each: Callable[[Exchange], None] | None = None

    def __call__(self, event: ResponseReceived) -> None:
        now = time.perf_counter()
        ex = Exchange(
            event.method,
            event.path,
            event.vehicle_id,
            event.status,
            event.error,
            now - event.latency,
            now,
        )
        self.exchanges.append(ex)
        if self.on_each is not None:
            self.on_each(ex)

    def of(self, vehicle_id: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.vehicle_id == vehicle_id]


# ------------------------------------------------------------------- stub servers


@attrs.define
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.time() when the stub received it


@attrs.define
class Stub:
    url: str
    seen: list[Seen]
    in_flight: int = 0
    peak: int = 0


Handler = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Stub]:
    """Serve ``handler(request, n)`` (``n``: 0-based index of the request) on 127.0.0.1:0.

    The stub also counts requests open at once, server side (``peak``).
    """
    stub = Stub("", [])

    async def record(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        index = len(stub.seen)
        stub.seen.append(
            Seen(request.method, request.path, dict(request.headers), body, time.time())
        )
        stub.in_flight += 1
        stub.peak = max(stub.peak, stub.in_flight)
        try:
            return await handler(request, index)
        finally:
            stub.in_flight -= 1

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        stub.url = f"http://{host}:{port}"
        yield stub
    finally:
        await runner.cleanup()


def v2_error(kind: str, code: str | None, status: int) -> dict[str, Any]:
    return {
        "type": kind,
        "code": code,
        "description": f"{kind} for a test",
        "docURL": None,
        "statusCode": status,
        "requestId": "rid-stub",
        "resolution": {"type": "RETRY_LATER"},
        "suggestedUserMessage": None,
    }


def http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


# -------------------------------------------------------------------------- OAuth


async def issue_access(emu: Emulator, session: aiohttp.ClientSession) -> Access:
    """A real token pair from the emulator's authorization-code flow."""
    code = emu.issue_code()
    return await _token_call(emu.url, session, {"grant_type": "authorization_code", "code": code})


async def _token_call(url: str, session: aiohttp.ClientSession, form: dict[str, str]) -> Access:
    credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    async with session.post(
        f"{url}{OAUTH}", data=form, headers={"Authorization": f"Basic {credentials}"}
    ) as resp:
        raw = await resp.read()
        status, headers = resp.status, resp.headers
    body = json.loads(raw) if raw else None
    if status != 200:
        raise error_from_response(status, body, headers)
    now = dt.datetime.now(dt.UTC)
    return Access(
        access_token=body["access_token"],
        token_type=body["token_type"],
        expires_in=body["expires_in"],
        expiration=now + dt.timedelta(seconds=body["expires_in"]),
        refresh_token=body["refresh_token"],
        refresh_expiration=now + dt.timedelta(days=60),
    )


class LoopbackTokenExchanger:
    """A minimal ``TokenExchanger`` for when ``AuthClient`` is not usable.

    POSTs ``grant_type=refresh_token`` with Basic client credentials to the
    emulator's ``/oauth/token`` and builds an :class:`Access`.
    """

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self._url = url
        self._session = session

    async def exchange_refresh_token(self, refresh_token: str) -> Access:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return await _token_call(self._url, self._session, form)


def auth_client_class() -> Any:
    """``AuthClient`` when the package provides it, else None."""
    try:
        from smartcar_async import AuthClient  # type: ignore[attr-defined]
    except ImportError:
        try:
            from smartcar_async._account._auth import AuthClient
        except ImportError:
            return None
    return AuthClient


def expiring(access: Access, seconds: float) -> Access:
    """The same tokens with an expiration ``seconds`` from now (negative: in the past)."""
    return attrs.evolve(access, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def count(items: Iterable[Any], predicate: Callable[[Any], bool]) -> int:
    return sum(1 for item in items if predicate(item))
