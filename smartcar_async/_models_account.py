"""Models for the account-level APIs: user, vehicle list, compatibility,
Management API connections, OAuth tokens and webhook deliveries.

Same conventions as `_models`: frozen slotted attrs classes, snake_case
fields, and a keyword-only ``meta`` on models that are a whole HTTP response.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._models import EMPTY_META, WHOLE_BODY, Meta, Paging

__all__ = [
    "Access",
    "Capability",
    "Compatibility",
    "CompatibilityMatrix",
    "CompatibilityMatrixEntry",
    "Connection",
    "Connections",
    "DeleteConnections",
    "Paging",
    "PagingCursor",
    "User",
    "Vehicles",
    "WebhookChallenge",
    "WebhookPayload",
    "WebhookSignal",
]


@attrs.frozen
class User:
    """``GET /user``: the Smartcar user id behind the access token. Added in 0.1.0."""

    id: str
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Vehicles:
    """``GET /vehicles``: one page of the vehicle ids this token may access. Added in 0.1.0."""

    vehicles: tuple[str, ...]
    paging: Paging
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class PagingCursor:
    """Cursor paging of the Management API; ``cursor`` is None on the last page. Added in 0.1.0."""

    cursor: str | None = None


@attrs.frozen
class Connection:
    """One user-vehicle connection of the application (Management API). Added in 0.1.0."""

    user_id: str
    vehicle_id: str
    connected_at: datetime | None = None
    mode: str | None = None


@attrs.frozen
class Connections:
    """``GET /management/connections``: one page of the application's connections.

    Added in 0.1.0.
    """

    connections: tuple[Connection, ...]
    paging: PagingCursor
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class DeleteConnections:
    """``DELETE /management/connections``: the connections that were removed. Added in 0.1.0."""

    connections: tuple[Connection, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Capability:
    """Whether a VIN supports one endpoint; ``reason`` is e.g. SMARTCAR_NOT_CAPABLE.

    Added in 0.1.0.
    """

    permission: str
    endpoint: str
    capable: bool
    reason: str | None = None


@attrs.frozen
class Compatibility:
    """``GET /compatibility``: whether a VIN is compatible, and per endpoint. Added in 0.1.0."""

    compatible: bool
    reason: str | None = None
    capabilities: tuple[Capability, ...] = ()
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class CompatibilityMatrixEntry:
    """One model range of a make (ICE/HEV/PHEV/BEV) and the endpoints and permissions it has.

    Added in 0.1.0.
    """

    model: str
    start_year: int
    end_year: int
    type: str
    endpoints: tuple[str, ...]
    permissions: tuple[str, ...]


@attrs.frozen
class CompatibilityMatrix:
    """``GET /compatibility/matrix``: entries keyed by make (the wire body is that object).

    Added in 0.1.0.
    """

    makes: Mapping[str, tuple[CompatibilityMatrixEntry, ...]] = attrs.field(
        metadata={WHOLE_BODY: True}
    )
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


def _redacted(value: object) -> str:
    # Tokens must never reach logs through a repr; say only whether one is set.
    return "'<redacted>'" if value else repr(value)


@attrs.frozen
class Access:
    """OAuth tokens from a code exchange or refresh; the repr hides both tokens. Added in 0.1.0."""

    access_token: str = attrs.field(repr=_redacted)
    token_type: str
    expires_in: int
    expiration: datetime
    refresh_token: str = attrs.field(repr=_redacted)
    refresh_expiration: datetime


@attrs.frozen
class WebhookChallenge:
    """The one-time verify request a new webhook receives (v2 or v4 layout). Added in 0.1.0."""

    webhook_id: str | None
    challenge: str
    version: str | None


@attrs.frozen
class WebhookSignal:
    """One signal of a v4 ``VEHICLE_STATE`` delivery (``data.signals[]``).

    ``body`` is the signal's value object as sent (``{"value": 80, "unit":
    "percent"}``; null for a failed signal); ``status`` is ``SUCCESS`` or
    ``ERROR``, and ``error`` the ``{type, code}`` object of a failed one.
    ``oem_updated_at`` and ``retrieved_at`` come from the signal's ``meta``:
    Smartcar sends epoch milliseconds, and ``0`` for static values such as
    the VIN, which reads as 1970-01-01 UTC.

    Added in 0.1.0.
    """

    code: str | None = None
    name: str | None = None
    group: str | None = None
    body: Mapping[str, Any] | None = None
    status: str | None = None
    error: Mapping[str, Any] | None = None
    oem_updated_at: datetime | None = None
    retrieved_at: datetime | None = None


@attrs.frozen
class WebhookPayload:
    """A view of any webhook delivery, v2 or v4; unknown parts stay raw.

    ``event_type`` is the v2 ``eventName`` (``verify``, ``schedule``,
    ``dynamic``...) or the v4 ``eventType`` (``VERIFY``, ``VEHICLE_STATE``...);
    ``data`` is the v2 ``payload`` or the v4 ``data`` object; ``raw`` is the
    whole body as received. ``signals`` are the v4 ``data.signals``, typed.

    Every field is optional: absent or null reads as None (or empty). A
    value of the wrong type is an `InvalidResponseError` naming it, never
    silently dropped; ids sent as numbers are kept as their text.
    ``delivered_at`` (and each signal's timestamps) may be ISO-8601 text or
    epoch milliseconds or seconds (see `parse_webhook`).

    Added in 0.1.0.
    """

    event_type: str | None = None
    webhook_id: str | None = None
    version: str | None = None
    event_id: str | None = None
    mode: str | None = None
    webhook_name: str | None = None
    delivery_id: str | None = None
    delivered_at: datetime | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    raw: Mapping[str, Any] = attrs.field(factory=dict)
    signals: tuple[WebhookSignal, ...] = ()

    @property
    def is_verify(self) -> bool:
        """True for the verify challenge (answer it with the HMAC of ``challenge``)."""
        return self.event_type is not None and self.event_type.lower() == "verify"

    @property
    def challenge(self) -> str | None:
        """The verify challenge string, if this delivery carries one."""
        value = self.data.get("challenge")
        return value if isinstance(value, str) else None
