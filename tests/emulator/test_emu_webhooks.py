"""The emulator delivers webhooks to a receiver the user runs: verify handshake and signed data.

The receiver is the README's aiohttp example, built on the client's webhook helpers,
so this also proves those against deliveries we did not sign ourselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from smartcar_async import (
    SIGNATURE_HEADER,
    WebhookPayload,
    challenge_response,
    parse_webhook,
    verify_payload,
)
from smartcar_async.testing import Emulator

AMT = "application-management-token"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[WebhookPayload], list[bytes]]]:
    received: list[WebhookPayload] = []
    raw_bodies: list[bytes] = []

    async def smartcar_webhook(request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify_payload(AMT, request.headers.get(SIGNATURE_HEADER), raw):
            return web.json_response({"error": "bad signature"}, status=401)
        payload = parse_webhook(raw)
        if payload.is_verify:
            return web.json_response(challenge_response(AMT, payload))
        received.append(payload)
        raw_bodies.append(raw)
        return web.json_response({"status": "received"})

    app = web.Application()
    app.router.add_post("/webhooks/smartcar", smartcar_webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/webhooks/smartcar", received, raw_bodies
    finally:
        await runner.cleanup()


async def test_verify_handshake_and_signed_delivery(
    receiver: tuple[str, list[WebhookPayload], list[bytes]],
) -> None:
    url, received, raw_bodies = receiver
    async with Emulator(vehicles=3, seed=2, management_token=AMT) as emu:
        assert await emu.verify_webhook(url, webhook_id="wh-1")
        delivery = await emu.deliver_webhook(url, webhook_id="wh-1", vehicle_ids=emu.fleet.ids[:2])
        assert delivery.status == 200
        assert delivery.body == {"status": "received"}
    assert len(received) == 1
    assert received[0].webhook_id == "wh-1"
    body: dict[str, Any] = json.loads(raw_bodies[0])
    assert [v["vehicleId"] for v in body["payload"]["vehicles"]] == emu.fleet.ids[:2]
    expected = hmac.new(AMT.encode(), raw_bodies[0], hashlib.sha256).hexdigest()
    assert delivery.signature == expected


async def test_a_delivery_signed_with_another_key_is_refused(
    receiver: tuple[str, list[WebhookPayload], list[bytes]],
) -> None:
    url, received, _ = receiver
    async with Emulator(vehicles=1) as emu:
        assert not await emu.verify_webhook(url, amt="some-other-token")
        delivery = await emu.deliver_webhook(url, body={"version": "2.0"}, amt="wrong")
    assert delivery.status == 401
    assert received == []


async def test_deliveries_need_a_management_token() -> None:
    async with Emulator(vehicles=3) as emu:
        with pytest.raises(ValueError, match="amt"):
            await emu.deliver_webhook("http://127.0.0.1:9/")
