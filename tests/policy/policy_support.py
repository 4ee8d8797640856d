"""Helpers of the send-policy tests: retries, rate limits, pacing, timeouts, tokens.

Everything speaks real HTTP over 127.0.0.1, to the emulator or to the stub
server (`support.serve`) for the shapes the emulator never sends (a 408, an
HTTP-date Retry-After, a lower-case ``retry-after`` inside a batch item).
Assertions count requests; elapsed time is only ever compared against waits
that are at least 0.5 s apart from the alternative.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from typing import Any

import aiohttp
import attrs
import support

from smartcar_async import ResponseReceived
from smartcar_async._exceptions import error_from_response
from smartcar_async._models_account import Access
from smartcar_async.testing import Emulator, RecordedRequest

V2 = "/v2.0/vehicles/"
OAUTH = "/oauth/token"
CLIENT_ID = "resilience-client"
CLIENT_SECRET = "resilience-secret"

# Only ever a guard against hangs; never an assertion about speed.
HANG_GUARD = 15.0

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


def bearer(req: RecordedRequest) -> str:
    header = req.headers.get("Authorization", "")
    assert header.startswith("Bearer "), header
    return header[len("Bearer ") :]


# ------------------------------------------------------------------ loop helpers


#: Poll a condition every 5 ms; fail after HANG_GUARD seconds.
wait_until = functools.partial(support.wait_until, within=HANG_GUARD)


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
    on_each: Callable[[Exchange], object] | None = None

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
    body: Any = json.loads(raw) if raw else None
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


def expiring(access: Access, seconds: float) -> Access:
    """The same tokens with an expiration ``seconds`` from now (negative: in the past)."""
    return attrs.evolve(access, expiration=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds))


def count(items: Iterable[Any], predicate: Callable[[Any], bool]) -> int:
    return sum(1 for item in items if predicate(item))
