"""Webhook deliveries from the emulator to a receiver you run: verify handshake and signed events.

Smartcar signs each delivery with ``SC-Signature``: the hex HMAC-SHA256 of the
raw body keyed with the Application Management Token, and checks a new
webhook with a verify event whose answer must be ``{"challenge": HMAC}``. This
module holds the 2.0 payloads and the delivery itself; `_webhooks_v4` builds
the 4.0 ones. The shape of 2.0 data payloads beyond ``version``,
``webhookId``, ``eventName`` and ``payload`` is not documented
(smartcar-api.md §8); the one built here is modelled on the v2 "dynamic"
example and kept deliberately plain.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import attrs

from .. import _json
from ._fleet import SimulatedVehicle
from ._units import wire

__all__ = ["WebhookDelivery", "data_payload", "sign", "verify_payload_body"]

SIGNATURE_HEADER = "SC-Signature"


@attrs.frozen
class WebhookDelivery:
    """What the receiver answered to one delivery. Added in 0.1.0."""

    status: int
    body: Any
    signature: str


def sign(amt: str, body: bytes) -> str:
    return hmac.new(amt.encode(), body, hashlib.sha256).hexdigest()


def verify_payload_body(webhook_id: str) -> tuple[dict[str, Any], str]:
    """A v2 verify event and the challenge it carries."""
    challenge = secrets.token_urlsafe(24)
    body = {
        "version": "2.0",
        "webhookId": webhook_id,
        "eventName": "verify",
        "payload": {"challenge": challenge},
    }
    return body, challenge


def data_payload(
    webhook_id: str, vehicles: Sequence[SimulatedVehicle], now: str, mode: str
) -> dict[str, Any]:
    """A v2 data event with each vehicle's odometer and location, as a schedule would send."""
    return {
        "version": "2.0",
        "webhookId": webhook_id,
        "eventName": "schedule",
        "mode": mode,
        "payload": {
            "vehicles": [
                {
                    "vehicleId": vehicle.id,
                    "requestId": str(uuid.uuid4()),
                    "data": [
                        {
                            "path": "/odometer",
                            "code": 200,
                            "body": {"distance": round(vehicle.odometer_km)},
                            "headers": {"sc-data-age": now, "sc-unit-system": "metric"},
                        },
                        {
                            "path": "/location",
                            "code": 200,
                            "body": {
                                "latitude": wire(vehicle.location[0]),
                                "longitude": wire(vehicle.location[1]),
                            },
                            "headers": {"sc-data-age": now},
                        },
                    ],
                }
                for vehicle in vehicles
            ]
        },
    }


async def post(
    url: str, body: Mapping[str, Any], amt: str, *, timeout: float, version: str = "2.0"
) -> WebhookDelivery:
    raw = _json.dumps(body)
    signature = sign(amt, raw)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Smartcar/{version}",
        SIGNATURE_HEADER: signature,
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(url, data=raw, headers=headers) as resp,
    ):
        text = await resp.text()
        try:
            answer: Any = _json.loads(text) if text else None
        except ValueError:
            answer = text
        return WebhookDelivery(resp.status, answer, signature)
