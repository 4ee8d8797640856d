"""Helpers shared by the emulator tests: a thin aiohttp wrapper that returns everything."""

from __future__ import annotations

from typing import Any

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from smartcar_async.testing import Emulator

TOKEN = "test-token"


@attrs.frozen
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: Any
    raw: bytes


@attrs.define
class Api:
    """Calls an emulator over loopback HTTP and hands back status, headers and parsed body."""

    emu: Emulator
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = TOKEN,
        units: str | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        if units is not None:
            sent["SC-Unit-System"] = units
        async with self.session.request(
            method,
            self.emu.url + path,
            json=json,
            params=params,
            headers=sent,
            data=data,
        ) as resp:
            raw = await resp.read()
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return Reply(resp.status, resp.headers, body, raw)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.call("POST", path, json=json, **kw)

    def vpath(self, vehicle_id: str, sub: str = "") -> str:
        return f"/v2.0/vehicles/{vehicle_id}{sub}"

    async def vget(self, vehicle_id: str, sub: str, **kw: Any) -> Reply:
        return await self.get(self.vpath(vehicle_id, sub), **kw)

    async def batch(self, vehicle_id: str, paths: list[str], **kw: Any) -> Reply:
        body = {"requests": [{"path": p} for p in paths]}
        return await self.post(self.vpath(vehicle_id, "/batch"), json=body, **kw)


def assert_error(reply: Reply, status: int, type_: str, code: str | None = None) -> dict[str, Any]:
    """Check a whole-response v2 error and return its body."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.body
    assert body["type"] == type_, body
    assert body["code"] == code, body
    assert_error_shape(body, status, reply.headers["SC-Request-Id"])
    return dict(body)


# The error types whose documented examples carry a suggestedUserMessage; the
# others (a recorded PERMISSION answer, VALIDATION, AUTHENTICATION, BILLING,
# COMPATIBILITY, RESOURCE_NOT_FOUND) have none.
WITH_USER_MESSAGE = frozenset(
    {"CONNECTED_SERVICES_ACCOUNT", "VEHICLE_STATE", "RATE_LIMIT", "SERVER", "UPSTREAM"}
)


def assert_error_shape(body: dict[str, Any], status: int, request_id: str) -> None:
    for key in (
        "type",
        "code",
        "description",
        "docURL",
        "statusCode",
        "requestId",
        "resolution",
    ):
        assert key in body, (key, body)
    if body["type"] in WITH_USER_MESSAGE:
        assert isinstance(body["suggestedUserMessage"], str), body
    else:
        assert "suggestedUserMessage" not in body, body
    assert body["statusCode"] == status
    assert body["requestId"] == request_id
    assert isinstance(body["resolution"], dict)
    assert "type" in body["resolution"]
    assert body["docURL"].startswith("https://smartcar.com/docs/errors/")
