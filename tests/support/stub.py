"""The one stub server: an ``aiohttp.web`` app on 127.0.0.1 for shapes the emulator never sends.

It records every request (`Seen`), counts requests open at once server side
(``peak``), and hands each request to the test's handler, which can ask for the
request's 0-based index with `request_index`.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web


def json_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


@attrs.frozen
class Seen:
    """One request as the stub received it (``raw_path`` is still percent-encoded)."""

    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # the JSON body, or None when there is none or it is not JSON
    at: float  # time.time() when the stub received it


@attrs.define
class Stub:
    url: str
    seen: list[Seen] = attrs.field(factory=list)
    in_flight: int = 0
    peak: int = 0


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Each request is handled in a task of its own, so a context variable set before
# the handler runs is that request's alone.
_INDEX: contextvars.ContextVar[int] = contextvars.ContextVar("support.stub.index")


def request_index(request: web.Request) -> int:
    """The 0-based position of ``request``, the one being handled, among those received."""
    return _INDEX.get()


@contextlib.asynccontextmanager
async def serve(handler: Handler, *, shutdown_timeout: float = 0.5) -> AsyncIterator[Stub]:
    """Serve ``handler`` for every method and path on 127.0.0.1, port 0."""
    stub = Stub("")

    async def record(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        _INDEX.set(len(stub.seen))
        stub.seen.append(
            Seen(
                request.method,
                request.raw_path,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
                time.time(),
            )
        )
        stub.in_flight += 1
        stub.peak = max(stub.peak, stub.in_flight)
        try:
            return await handler(request)
        finally:
            stub.in_flight -= 1

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        stub.url = f"http://{host}:{port}"
        yield stub
    finally:
        await runner.cleanup()


def batch_paths(body: Any) -> list[str]:
    """The paths of a recorded batch body, in order (checks its shape on the way)."""
    assert isinstance(body, dict), body
    assert set(body) == {"requests"}, body
    items = body["requests"]
    assert isinstance(items, list)
    paths = []
    for item in items:
        assert isinstance(item, dict), item
        assert set(item) == {"path"}, item
        paths.append(item["path"])
    return paths
