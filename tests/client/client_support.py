"""Helpers for the loopback tests of the core client.

Everything here speaks real HTTP over 127.0.0.1: either to the emulator, or to
a tiny ``aiohttp.web`` app (`serve`) for the shapes the emulator never sends.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from leftovers import assert_no_leftover_tasks as assert_no_leftover_tasks
from leftovers import leftover_tasks as leftover_tasks
from leftovers import settle as settle
from leftovers import wait_until as shared_wait_until
from stub_http import json_response as json_response

from smartcar_async import Client

TOKEN = "tok-SECRET-3f9a7c1e"  # distinctive, so a leak is easy to grep for
OTHER_TOKEN = "tok-OTHER-8b2d4e6f"

# Retries are being added to the client; these tests look at one attempt at a
# time, so they switch retries off whenever the client knows about them.
_CLIENT_PARAMS = inspect.signature(Client).parameters
NO_RETRY: dict[str, Any] = {"max_retries": 0} if "max_retries" in _CLIENT_PARAMS else {}

# Guards against hangs only; no assertion is ever made about elapsed time.
HANG_GUARD = 10.0


def make_client(origin: str, **kwargs: Any) -> Client:
    """A client for loopback tests: retries off, bounded timeouts unless overridden."""
    params: dict[str, Any] = {"timeout": HANG_GUARD, "close_timeout": 5.0, **NO_RETRY}
    params.update(kwargs)
    return Client(api_origin=origin, **params)


#: Poll a condition every 5 ms; fail after HANG_GUARD seconds.
wait_until = functools.partial(shared_wait_until, within=HANG_GUARD)


@attrs.frozen
class Seen:
    """One request as a stub app received it (``raw_path`` is still percent-encoded)."""

    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Stub:
    url: str
    seen: list[Seen]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[Stub]:
    """Serve ``handler`` for every method and path on 127.0.0.1, port 0."""
    seen: list[Seen] = []

    async def record(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        seen.append(
            Seen(
                request.method,
                request.raw_path,
                request.path,
                dict(request.query),
                dict(request.headers),
                body,
            )
        )
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield Stub(f"http://{host}:{port}", seen)
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
