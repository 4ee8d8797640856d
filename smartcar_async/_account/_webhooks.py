"""Webhook helpers: answer the verify challenge, check ``SC-Signature``, parse deliveries.

All pure functions, no I/O: they work in any web framework. The key is the
Application Management Token (AMT) from the Smartcar dashboard. A receiver:

1. reads the RAW request body (bytes, before any JSON parsing),
2. checks ``verify_payload(amt, request.headers["SC-Signature"], raw)``,
3. parses it with :func:`parse_webhook`,
4. answers a verify event with ``challenge_response(amt, payload)`` as JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Final

from .. import _json
from .._converter import structure
from .._exceptions import InvalidResponseError
from .._models_account import WebhookPayload
from .._validate import check_text

__all__ = [
    "SIGNATURE_HEADER",
    "challenge_response",
    "hash_challenge",
    "parse_webhook",
    "verify_payload",
]

#: The request header carrying the hex HMAC-SHA256 of the raw body.
SIGNATURE_HEADER: Final = "SC-Signature"


def _as_bytes(value: str | bytes, name: str) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{name} must be str or bytes, got {type(value).__name__}")


def hash_challenge(amt: str, challenge: str | bytes) -> str:
    """Hex HMAC-SHA256 of *challenge* keyed with the Application Management Token.

    Equal to the official SDK's ``smartcar.hash_challenge`` for the same
    strings; bytes are hashed as they are, str as UTF-8.

    Added in 0.1.0.
    """
    return _hmac_hex(amt, _as_bytes(challenge, "challenge"))


def _hmac_hex(amt: str, message: bytes) -> str:
    key = check_text(amt, "amt").encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_payload(amt: str, signature: str | bytes | None, body: str | bytes) -> bool:
    """Whether *signature* (the ``SC-Signature`` header) signs this RAW request *body*.

    Pass the body exactly as received: re-serialising parsed JSON changes
    its bytes and the signature no longer matches. A missing signature
    (None) is simply False. The comparison is constant-time, unlike the
    official SDK's ``==``.

    Added in 0.1.0.
    """
    expected = _hmac_hex(amt, _as_bytes(body, "body")).encode("ascii")
    if signature is None:
        return False
    given = _as_bytes(signature, "signature").strip().lower()
    return hmac.compare_digest(expected, given)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> WebhookPayload:
    """A webhook delivery (v2 ``eventName``/``payload`` or v4 ``eventType``/``data``).

    *body* is the raw request body or the already-parsed JSON object. Every
    typed field is optional (absent or null reads as None); v4 ``data.signals``
    become `WebhookSignal` values. Timestamps (``deliveredAt``, a signal's
    ``oemUpdatedAt`` and ``retrievedAt``) may be ISO-8601 text or an epoch
    number: from 1e11 up it is milliseconds (what v4 deliveries send, e.g.
    ``1767920009942``), below that seconds; negative numbers are refused.

    Raises :class:`InvalidResponseError` when the body is not a JSON object,
    is not valid JSON or UTF-8, holds NaN or Infinity, nests deeper than 64
    levels, or has a value of the wrong type or an unreadable timestamp where
    a typed field is read (``.field`` then names it, e.g. ``meta.deliveredAt``).
    The message never quotes the body. A *body* of another Python type is a
    TypeError.

    Added in 0.1.0.
    """
    parsed: object
    if isinstance(body, Mapping):
        parsed = dict(body)
    else:
        try:
            parsed = _json.loads(_as_bytes(body, "body"))
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad UTF-8 (and a str with lone surrogates) too;
            # RecursionError is JSON nested deeper than the parser's stack.
            raise InvalidResponseError("The webhook body is not valid JSON") from exc
    return structure(WebhookPayload, parsed)


def challenge_response(
    amt: str, payload: WebhookPayload | bytes | str | Mapping[str, Any]
) -> dict[str, str]:
    """The JSON body answering a verify event: ``{"challenge": <hex HMAC>}``.

    *payload* is a parsed delivery or a raw body. Raises ValueError when it
    is not a verify event or carries no challenge string.

    Added in 0.1.0.
    """
    if not isinstance(payload, WebhookPayload):
        payload = parse_webhook(payload)
    challenge = payload.challenge
    if not payload.is_verify or challenge is None:
        raise ValueError("not a webhook verify event with a challenge")
    return {"challenge": hash_challenge(amt, challenge)}
