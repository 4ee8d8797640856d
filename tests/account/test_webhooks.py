"""Webhook helpers: HMAC properties (Hypothesis), parity with the official SDK, parsing,
and a small aiohttp receiver exercised over loopback."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
import smartcar
from account_support import AMT
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcar_async import InvalidResponseError, WebhookPayload
from smartcar_async._account._webhooks import (
    SIGNATURE_HEADER,
    challenge_response,
    hash_challenge,
    parse_webhook,
    verify_payload,
)

amts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(
    lambda s: s.strip() and "\r" not in s and "\n" not in s
)
texts = st.text(st.characters(codec="utf-8"), max_size=200)
bodies = st.binary(max_size=300) | texts

V2_VERIFY = {
    "version": "2.0",
    "webhookId": "5a8e5e38-1e12-4011-a36d-56f120053f9e",
    "eventName": "verify",
    "payload": {"challenge": "3VUB5AovBpEgdlqAQ5rb"},
}
V4_VERIFY = {
    "eventId": "8f1c3b1e-0000-4000-8000-000000000001",
    "eventType": "VERIFY",
    "data": {"challenge": "qzBqVXs3mKdvFx"},
    "meta": {
        "version": "4.0",
        "webhookId": "wh-1",
        "webhookName": "fleet",
        "deliveryId": "d-1",
        "deliveredAt": "2025-05-01T10:00:00.000Z",
    },
}
V2_DYNAMIC = {
    "version": "2.0",
    "webhookId": "865ca68d-aaaa-bbbb-cccc-000000000000",
    "eventName": "dynamic",
    "mode": "live",
    "payload": {"vehicles": [{"vehicleId": "v1", "data": []}]},
}


# ------------------------------------------------------------- HMAC


@settings(max_examples=200, deadline=None)
@given(amt=amts, challenge=texts)
def test_hash_challenge_equals_the_official_sdk(amt: str, challenge: str) -> None:
    assert hash_challenge(amt, challenge) == smartcar.hash_challenge(amt, challenge)


@settings(max_examples=200, deadline=None)
@given(amt=amts, body=bodies)
def test_a_correct_signature_always_verifies(amt: str, body: bytes | str) -> None:
    signature = hash_challenge(amt, body)
    assert verify_payload(amt, signature, body)
    # The header may arrive in upper case or padded.
    assert verify_payload(amt, f" {signature.upper()} ", body)
    if isinstance(body, str):
        assert smartcar.verify_payload(amt, signature, body)
        assert verify_payload(amt, signature, body.encode())


@settings(max_examples=200, deadline=None)
@given(amt=amts, body=st.binary(min_size=1, max_size=300), data=st.data())
def test_any_changed_byte_fails(amt: str, body: bytes, data: st.DataObject) -> None:
    signature = hash_challenge(amt, body)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(body)
    changed[index] ^= flip
    assert not verify_payload(amt, signature, bytes(changed))
    assert not verify_payload(amt, signature, body[:index] + body[index + 1 :])
    assert not verify_payload(amt, signature, body + b" ")


@settings(max_examples=100, deadline=None)
@given(amt=amts, other=amts, body=bodies)
def test_another_key_fails(amt: str, other: str, body: bytes | str) -> None:
    if other != amt:
        assert not verify_payload(other, hash_challenge(amt, body), body)


@pytest.mark.parametrize("signature", [None, "", "abc", "é" * 64, b"\xff" * 64, "0" * 64])
def test_malformed_signatures_are_false_not_errors(signature: Any) -> None:
    assert verify_payload(AMT, signature, b"{}") is False


def test_known_vector() -> None:
    # RFC 4231-style sanity check, independent of both SDKs.
    assert (
        hash_challenge("key", "The quick brown fox jumps over the lazy dog")
        == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


@pytest.mark.parametrize("amt", ["", "   ", "amt\n"])
def test_a_missing_amt_is_an_error(amt: str) -> None:
    with pytest.raises(ValueError, match="amt"):
        hash_challenge(amt, "challenge")
    with pytest.raises(ValueError, match="amt"):
        verify_payload(amt, "sig", b"{}")


def test_non_text_body_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="body"):
        verify_payload(AMT, "sig", 42)  # type: ignore[arg-type]


# ------------------------------------------------------------ parsing


def test_parse_v2_delivery() -> None:
    payload = parse_webhook(json.dumps(V2_DYNAMIC).encode())
    assert payload.event_type == "dynamic"
    assert payload.webhook_id == V2_DYNAMIC["webhookId"]
    assert payload.version == "2.0"
    assert payload.mode == "live"
    assert payload.data == V2_DYNAMIC["payload"]
    assert payload.raw == V2_DYNAMIC
    assert not payload.is_verify


def test_parse_v4_verify_from_text_and_mapping() -> None:
    for body in (json.dumps(V4_VERIFY), V4_VERIFY):
        payload = parse_webhook(body)
        assert payload.is_verify
        assert payload.challenge == "qzBqVXs3mKdvFx"
        assert (payload.webhook_id, payload.webhook_name, payload.version) == (
            "wh-1",
            "fleet",
            "4.0",
        )
        assert payload.delivered_at is not None
        assert payload.delivered_at.tzinfo is not None


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", "", b"[1, 2]", b'"text"', b"null"])
def test_bad_bodies_are_invalid_response_errors(body: bytes | str) -> None:
    with pytest.raises(InvalidResponseError) as caught:
        parse_webhook(body)
    assert "not json" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "challenge"),
    [(V2_VERIFY, "3VUB5AovBpEgdlqAQ5rb"), (V4_VERIFY, "qzBqVXs3mKdvFx")],
    ids=["v2", "v4"],
)
def test_challenge_response(body: dict[str, Any], challenge: str) -> None:
    expected = {"challenge": smartcar.hash_challenge(AMT, challenge)}
    assert challenge_response(AMT, body) == expected
    assert challenge_response(AMT, json.dumps(body).encode()) == expected
    assert challenge_response(AMT, parse_webhook(body)) == expected


@pytest.mark.parametrize("body", [V2_DYNAMIC, {**V2_VERIFY, "payload": {}}])
def test_challenge_response_needs_a_verify_event(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="verify"):
        challenge_response(AMT, body)


# -------------------------------------------------- an aiohttp receiver


def make_receiver(amt: str, received: list[WebhookPayload]) -> web.Application:
    """The README's example receiver, verbatim."""

    async def smartcar_webhook(request: web.Request) -> web.Response:
        raw = await request.read()  # the raw bytes: the signature covers them exactly
        if not verify_payload(amt, request.headers.get(SIGNATURE_HEADER), raw):
            return web.json_response({"error": "bad signature"}, status=401)
        payload = parse_webhook(raw)
        if payload.is_verify:
            return web.json_response(challenge_response(amt, payload))
        received.append(payload)  # hand off to a queue; answer quickly
        return web.json_response({"status": "received"})

    app = web.Application()
    app.router.add_post("/webhooks/smartcar", smartcar_webhook)
    return app


async def test_aiohttp_receiver_over_loopback() -> None:
    received: list[WebhookPayload] = []
    async with (
        TestServer(make_receiver(AMT, received), host="127.0.0.1") as server,
        aiohttp.ClientSession() as http,
    ):
        url = str(server.make_url("/webhooks/smartcar"))

        async def deliver(body: bytes, signature: str | None) -> aiohttp.ClientResponse:
            headers = {"Content-Type": "application/json"}
            if signature is not None:
                headers[SIGNATURE_HEADER] = signature
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp

        # The verify handshake, signed like any delivery.
        verify = json.dumps(V2_VERIFY).encode()
        async with http.post(
            url, data=verify, headers={SIGNATURE_HEADER: hash_challenge(AMT, verify)}
        ) as resp:
            assert resp.status == 200
            assert resp.content_type == "application/json"
            assert await resp.json() == {
                "challenge": smartcar.hash_challenge(AMT, "3VUB5AovBpEgdlqAQ5rb")
            }

        # A signed delivery, with odd whitespace that a re-serialisation would lose.
        event = b'{ "version":"2.0",  "eventName":"dynamic", "payload": {"vehicles": []}}'
        assert (await deliver(event, hash_challenge(AMT, event))).status == 200
        assert [p.event_type for p in received] == ["dynamic"]

        # Tampered, unsigned, or signed with another key: refused, nothing recorded.
        assert (
            await deliver(event.replace(b"[]", b"[1]"), hash_challenge(AMT, event))
        ).status == 401
        assert (await deliver(event, None)).status == 401
        assert (await deliver(event, hash_challenge("other-amt", event))).status == 401
        assert len(received) == 1
