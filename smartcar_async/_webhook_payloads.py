"""Webhook deliveries read by hand.

Smartcar posts two layouts: v2 (``eventName``/``payload``, ids at the top
level) and v4 (``eventType``/``data``/``meta``, ids in ``meta``). Their typed
fields sit at different depths, so they are read here field by field rather
than by cattrs, and every failure is a `Mismatch` naming its wire path
(``meta.deliveredAt``, ``data.signals[2].status.value``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from ._json_checks import TIMESTAMP, Mismatch, Path, check_json
from ._models import parse_timestamp
from ._models_account import WebhookPayload, WebhookSignal

__all__ = ["BUILDERS", "adapt_challenge"]

_Builder = Callable[[object, Any], Any]


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _webhook_layout(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the data key and the object holding webhookId/version.

    v4 deliveries put them in ``meta`` and the content in ``data``; v2 ones
    keep them at the top level and the content in ``payload``.
    """
    if "eventType" in body:
        info = body.get("meta")
        return "data", info if isinstance(info, dict) else {}
    return "payload", body


def adapt_challenge(body: object) -> object:
    if not isinstance(body, dict):
        return body
    data_key, info = _webhook_layout(body)
    data = body.get(data_key)
    if not isinstance(data, dict):
        raise Mismatch("an object", data, (("attr", data_key),))
    challenge = data.get("challenge")
    if not isinstance(challenge, str):
        raise Mismatch("a string", challenge, (("attr", data_key), ("attr", "challenge")))
    return {
        "webhookId": _opt_str(info.get("webhookId")),
        "challenge": challenge,
        "version": _opt_str(info.get("version")),
    }


def _text(obj: dict[str, Any], key: str, at: Path, *, is_id: bool = False) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    if is_id and type(value) is int:
        return str(value)
    raise Mismatch("a string or integer id" if is_id else "a string", value, (*at, ("attr", key)))


def _object(obj: dict[str, Any], key: str, at: Path) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise Mismatch("an object", value, (*at, ("attr", key)))


def _when(obj: dict[str, Any], key: str, at: Path) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        # Never dropped silently: a timestamp that is there must be readable.
        raise Mismatch(TIMESTAMP, value, (*at, ("attr", key))) from None


def _signal(raw: object, at: Path) -> WebhookSignal:
    if type(raw) is not dict:
        raise Mismatch("an object", raw, at)
    status = _object(raw, "status", at) or {}
    meta = _object(raw, "meta", at) or {}
    return WebhookSignal(
        code=_text(raw, "code", at),
        name=_text(raw, "name", at),
        group=_text(raw, "group", at),
        body=_object(raw, "body", at),
        status=_text(status, "value", (*at, ("attr", "status"))),
        error=_object(status, "error", (*at, ("attr", "status"))),
        oem_updated_at=_when(meta, "oemUpdatedAt", (*at, ("attr", "meta"))),
        retrieved_at=_when(meta, "retrievedAt", (*at, ("attr", "meta"))),
    )


def _build_webhook_signal(body: object, _: Any = None) -> WebhookSignal:
    check_json(body)
    return _signal(body, ())


def _build_webhook_payload(body: object, _: Any = None) -> WebhookPayload:
    if type(body) is not dict:
        raise Mismatch("an object", body)
    check_json(body)
    if "eventType" in body:  # v4: ids and times in "meta", content in "data"
        info_at: Path = (("attr", "meta"),)
        info = _object(body, "meta", ()) or {}
        data_key, event_key = "data", "eventType"
    else:  # v2: ids at the top level, content in "payload"
        info_at, info = (), body
        data_key, event_key = "payload", "eventName"
    event_type = _text(body, event_key, ())
    data = _object(body, data_key, ()) or {}
    signals: tuple[WebhookSignal, ...] = ()
    if data_key == "data" and (listed := data.get("signals")) is not None:
        at: Path = (("attr", "data"), ("attr", "signals"))
        if type(listed) is not list:
            raise Mismatch("an array", listed, at)
        signals = tuple(_signal(item, (*at, ("index", i))) for i, item in enumerate(listed))
    mode_in, mode_at = (body, ()) if "mode" in body else (info, info_at)
    return WebhookPayload(
        event_type=event_type,
        webhook_id=_text(info, "webhookId", info_at, is_id=True),
        version=_text(info, "version", info_at),
        event_id=_text(body, "eventId", (), is_id=True),
        mode=_text(mode_in, "mode", mode_at),
        webhook_name=_text(info, "webhookName", info_at),
        delivery_id=_text(info, "deliveryId", info_at, is_id=True),
        delivered_at=_when(info, "deliveredAt", info_at),
        data=data,
        raw=body,
        signals=signals,
    )


BUILDERS: Final[dict[type, _Builder]] = {
    WebhookPayload: _build_webhook_payload,
    WebhookSignal: _build_webhook_signal,
}
