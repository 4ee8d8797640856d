"""Helpers for the Smartcar API v3 loopback tests (emulator, or a small aiohttp app)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

from smartcar_async import Client
from smartcar_async.testing import Emulator

HANG_GUARD = 10.0


def make_v3_client(emu: Emulator, **kwargs: Any) -> Client:
    params: dict[str, Any] = {
        "api_origin": emu.url,
        "vehicle_api_origin": emu.vehicle_api_url,
        "timeout": HANG_GUARD,
        "close_timeout": 5.0,
        "max_retries": 0,
    }
    params.update(kwargs)
    return Client(**params)


def v3_requests(emu: Emulator) -> list[tuple[str, str]]:
    """(method, path after /v3/vehicles/{id}) of every v3 request the emulator saw."""
    out = []
    for seen in emu.requests:
        if seen.path.startswith("/v3/vehicles/"):
            rest = seen.path[len("/v3/vehicles/") :]
            out.append((seen.method, rest.partition("/")[2]))
    return out


def without_meta(model: Any) -> Any:
    return attrs.evolve(model, meta=None) if attrs.has(type(model)) else model


@attrs.define
class Stub:
    url: str
    seen: list[web.Request]


@contextlib.asynccontextmanager
async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[Stub]:
    """Serve ``handler`` for every method and path on 127.0.0.1, port 0."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
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


def jsonapi(data: Any, status: int = 200, **extra: Any) -> web.Response:
    return web.Response(
        status=status, text=json.dumps({"data": data, **extra}), content_type="application/json"
    )


def signal(code: str, body: Any, status: str = "SUCCESS", error: Any = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"code": code, "name": code, "group": "G", "body": body}
    attributes["status"] = {"value": status, **({"error": error} if error else {})}
    return {"id": code, "type": "signal", "attributes": attributes, "meta": {}}
