"""Helpers of the transport tests (adversarial HTTP, bounds).

The stub server answering healthily until told a fault (`web_server`), the
answers a healthy Smartcar API gives (`good_answer`), the standard set of
concurrent callers (`call_everyone`), and `LoopWatch`, which fails a test on
any report the event loop makes on its own ("Future exception was never
retrieved", "Task was destroyed but it is pending!", an unclosed session).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio
import attrs
import support
from aiohttp import web
from support import TOKEN, Stub, serve, settle

import smartcar_async as sc

__all__ = [
    "HANG_GUARD",
    "TIGHT",
    "Callers",
    "LoopWatch",
    "WebServer",
    "call_everyone",
    "good_answer",
    "make_client",
    "web_server",
]

#: Only ever a guard against hangs; no assertion is made about speed.
HANG_GUARD = 20.0

#: Tight timeouts, backoffs and bounds, so faults show quickly; retries still happen for real
#: (the client's default two).
TIGHT: dict[str, Any] = {
    "timeout": 0.4,
    "retry_backoff": 0.01,
    "max_backoff": 0.02,
    "max_retry_after": 1.0,
    "close_timeout": 2.0,
    "max_response_size": 64 * 1024,
}


def make_client(origin: str, **overrides: Any) -> sc.Client:
    """`support.make_client` with `TIGHT` settings; ``overrides`` win."""
    return support.make_client(origin, **{**TIGHT, **overrides})


# ------------------------------------------------------------------ answers


def _body_for(path: str) -> dict[str, Any]:
    if path == "/location":
        return {"latitude": 37.4, "longitude": -122.1}
    if path in ("/security", "/charge"):
        return {"status": "success", "message": "Successfully sent request to vehicle"}
    return {"distance": 1234.5}


def good_answer(method: str, path: str, body: Any) -> tuple[int, bytes]:
    """What a healthy API answers: a batch envelope, a read's model body, or an action."""
    if method == "POST" and path.endswith("/batch"):
        responses = [
            {"path": item["path"], "code": 200, "body": _body_for(item["path"])}
            for item in body["requests"]
        ]
        return 200, json.dumps({"responses": responses}).encode()
    return 200, json.dumps(_body_for("/" + path.rsplit("/", 1)[-1])).encode()


def vehicle_of(path: str) -> str | None:
    """``car-a`` for ``/v2.0/vehicles/car-a/odometer``."""
    parts = path.split("?", 1)[0].split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "vehicles" else None


# ------------------------------------------------------------ a web server

Fault = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class WebServer:
    """`support.serve`'s stub, answering with ``fault`` until healed, healthily after."""

    stub: Stub
    fault: Fault | None = None

    @property
    def url(self) -> str:
        return self.stub.url

    @property
    def seen(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request so far."""
        return [(s.method, s.path) for s in self.stub.seen]

    def heal(self) -> None:
        self.fault = None

    def count(self, vehicle_id: str) -> int:
        return sum(1 for _, path in self.seen if vehicle_of(path) == vehicle_id)


@contextlib.asynccontextmanager
async def web_server(fault: Fault | None = None) -> AsyncIterator[WebServer]:
    """The stub server on 127.0.0.1 that answers with ``fault`` until healed."""
    server: WebServer | None = None

    async def handle(request: web.Request) -> web.StreamResponse:
        assert server is not None
        if server.fault is not None:
            return await server.fault(request)
        raw = await request.read()
        status, body = good_answer(request.method, request.path, json.loads(raw) if raw else None)
        return web.Response(status=status, body=body, content_type="application/json")

    async with serve(handle, shutdown_timeout=0.2) as stub:
        server = WebServer(stub, fault)
        yield server


# ---------------------------------------------------------------- callers


@attrs.frozen
class Callers:
    """What each caller got: a model or an exception."""

    coalesced: tuple[Any, ...]  # odometer, location, odometer of car-a, issued together
    lone: Any  # one odometer read of car-b
    write: Any  # lock of car-c

    def all(self) -> list[Any]:
        return [*self.coalesced, self.lone, self.write]


async def call_everyone(client: sc.Client) -> Callers:
    """Coalesced reads, a lone read and a write, at once; each resolves or fails on its own."""
    a = client.vehicle("car-a", access_token=TOKEN)
    b = client.vehicle("car-b", access_token=TOKEN)
    c = client.vehicle("car-c", access_token=TOKEN)
    with anyio.fail_after(HANG_GUARD):
        outcomes = await asyncio.gather(
            a.odometer(),
            a.location(),
            a.odometer(),
            b.odometer(),
            c.lock(),
            return_exceptions=True,
        )
    return Callers(tuple(outcomes[:3]), outcomes[3], outcomes[4])


def is_model_or_error(value: object) -> bool:
    """A model, or a SmartcarError subclass (never the bare base: that means "unexpected")."""
    if isinstance(value, sc.SmartcarError):
        return type(value) is not sc.SmartcarError
    return isinstance(value, sc.Odometer | sc.Location | sc.Action)


async def works_afterwards(client: sc.Client) -> None:
    """The same client reads and writes again (on vehicles no gate has closed)."""
    fresh = client.vehicle("car-fresh", access_token=TOKEN)
    with anyio.fail_after(HANG_GUARD):
        odometer, location = await asyncio.gather(fresh.odometer(), fresh.location())
        action = await client.vehicle("car-fresh-2", access_token=TOKEN).lock()
    assert odometer.distance == 1234.5
    assert location.latitude == 37.4
    assert action.status == "success"


# ------------------------------------------------------------ loop reports


class LoopWatch:
    """Records what the event loop reports by itself, and any warning, until exit.

    On exit it collects garbage (so an unretrieved exception or a pending
    task destroyed with its last reference is reported now) and settles the
    loop before restoring the previous handler.
    """

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self._previous: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warnings: contextlib.ExitStack | None = None
        self.caught: list[warnings.WarningMessage] = []

    async def __aenter__(self) -> LoopWatch:
        self._loop = asyncio.get_running_loop()
        self._previous = self._loop.get_exception_handler()
        self._loop.set_exception_handler(lambda _loop, context: self.reports.append(context))
        self._warnings = contextlib.ExitStack()
        self.caught = self._warnings.enter_context(warnings.catch_warnings(record=True))
        warnings.simplefilter("always")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None
        assert self._warnings is not None
        try:
            await settle()
            gc.collect()
            await settle()
        finally:
            self._loop.set_exception_handler(self._previous)
            self._warnings.close()
        if exc is None:
            messages = [
                str(r.get("message")) + " " + repr(r.get("exception")) for r in self.reports
            ]
            assert messages == [], messages
            assert [str(w.message) for w in self.caught] == []
