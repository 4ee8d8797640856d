"""The exceptions smartcar_async raises.

SmartcarError(Exception)                # all a caller sees, bar ValueError/TypeError for bad args
├── APIError                            # the API answered with an error body
│   ├── AuthenticationError             # AUTHENTICATION, 401; OAuth invalid_grant, invalid_client,
│   │                                   #   unauthorized_client, access_denied
│   ├── PermissionDeniedError           # PERMISSION, 403
│   ├── ResourceNotFoundError           # RESOURCE_NOT_FOUND, 404
│   ├── ValidationError                 # VALIDATION, 400; OAuth invalid_request,
│   │                                   #   unsupported_grant_type, invalid_scope
│   ├── ConnectedServicesAccountError   # CONNECTED_SERVICES_ACCOUNT, 400
│   ├── VehicleStateError               # VEHICLE_STATE, 409
│   ├── RateLimitError                  # RATE_LIMIT, 429
│   ├── BillingError                    # BILLING, 430
│   ├── ServerError                     # SERVER, 500, and any other unrecognised 5xx
│   ├── CompatibilityError              # COMPATIBILITY, 501
│   └── UpstreamError                   # UPSTREAM, 502; also 503 and 504
├── TransportError                      # no usable answer arrived
│   ├── APIConnectionError              # the connection failed or broke mid-request
│   │   └── APITimeoutError             # no answer in time (a connection error, as in openai)
│   └── InvalidResponseError            # not JSON, malformed JSON, a missing or mistyped field;
│                                       #   .field names it when known, e.g. "doors[2].status"
├── ClientClosedError                   # the Client was closed before or while the call was queued
└── StateError                          # a state store (SQLiteState...) cannot be opened, read
    │                                   #   or written, or was used after close
    └── StateUnavailableError           # a shared store (RedisState) cannot be reached now

Every error carries the server's fields when there were any (``type``,
``code``, ``status_code``, ``description``, ``doc_url``, ``request_id``,
``resolution``, ``suggested_user_message``, ``detail``, ``retry_after``).
`error_from_response` is the one place that turns an error answer (v2.0
body, v3 JSON:API ``{"errors": [...]}`` body, legacy v1.0 body, OAuth body,
or anything else) into the right class; a v3 answer's every error is kept,
typed, in ``errors`` (the first is the error raised). `error_from_v3_item`
reads one v3 error object, also the ``status.error`` of a failed signal.

``retry_after`` is never more than ``MAX_RETRY_AFTER`` (86400 s, one day):
`parse_retry_after` clamps any longer wait a server asks for, so no
``Retry-After`` can close a rate-limit gate for longer, or overflow a clock.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from datetime import UTC
from typing import Any, Final, TypedDict, Unpack

import attrs

from ._headers import pick_headers

__all__ = [
    "MAX_RETRY_AFTER",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BillingError",
    "ClientClosedError",
    "CompatibilityError",
    "ConnectedServicesAccountError",
    "InvalidResponseError",
    "PermissionDeniedError",
    "RateLimitError",
    "Resolution",
    "ResourceNotFoundError",
    "ServerError",
    "SmartcarError",
    "StateError",
    "StateUnavailableError",
    "TransportError",
    "UpstreamError",
    "ValidationError",
    "VehicleStateError",
    "error_from_response",
    "error_from_v3_item",
    "parse_retry_after",
]


@attrs.frozen
class Resolution:
    """What the API suggests doing about an error (e.g. RETRY_LATER, REAUTHENTICATE).

    Added in 0.1.0.
    """

    type: str | None = None
    url: str | None = None

    @classmethod
    def from_wire(cls, value: object) -> Resolution | None:
        """Read any historical form: a string, null, ``{"type": null}``, ``{"type", "url"}``."""
        if isinstance(value, str):
            return cls(type=value)
        if isinstance(value, Mapping):
            kind = value.get("type")
            url = value.get("url")
            return cls(
                type=kind if isinstance(kind, str) else None,
                url=url if isinstance(url, str) else None,
            )
        return None


class _ErrorFields(TypedDict, total=False):
    type: str | None
    code: str | None
    status_code: int | None
    description: str | None
    doc_url: str | None
    request_id: str | None
    resolution: Resolution | None
    suggested_user_message: str | None
    detail: tuple[Any, ...] | None
    retry_after: float | None
    errors: tuple[SmartcarError, ...]


# The fields worth seeing at a glance; description is already in the message
# and detail can be long.
_REPR_FIELDS: Final = ("type", "code", "status_code", "request_id", "retry_after", "field")


def _rebuild(cls: type[SmartcarError], args: tuple[Any, ...]) -> SmartcarError:
    # Bypass __init__ so subclasses with other signatures unpickle too; the
    # attributes come back through BaseException.__setstate__.
    err = cls.__new__(cls, *args)
    err.args = args
    return err


class SmartcarError(Exception):
    """Base class of every error smartcar_async raises for a failed call. Added in 0.1.0."""

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,  # shadows the builtin on purpose: it is the API's field name
        code: str | None = None,
        status_code: int | None = None,
        description: str | None = None,
        doc_url: str | None = None,
        request_id: str | None = None,
        resolution: Resolution | None = None,
        suggested_user_message: str | None = None,
        detail: tuple[Any, ...] | None = None,
        retry_after: float | None = None,
        errors: tuple[SmartcarError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.status_code = status_code
        self.description = description
        self.doc_url = doc_url
        self.request_id = request_id
        self.resolution = resolution
        self.suggested_user_message = suggested_user_message
        self.detail = detail
        self.retry_after = retry_after
        # Every error of a v3 ``{"errors": [...]}`` list, this one first; () otherwise.
        self.errors = errors

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        parts = [repr(self.message)]
        for name in _REPR_FIELDS:
            value = getattr(self, name, None)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{self.__class__.__name__}({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, self.args), self.__dict__.copy())


class APIError(SmartcarError):
    """The API answered with an error body (or an error status without one). Added in 0.1.0."""


class AuthenticationError(APIError):
    """AUTHENTICATION (401): the token or client credentials are missing, invalid or expired.

    Added in 0.1.0.
    """


class PermissionDeniedError(APIError):
    """PERMISSION (403): the token lacks the scope this endpoint needs. Added in 0.1.0."""


class ResourceNotFoundError(APIError):
    """RESOURCE_NOT_FOUND (404): unknown path or API version. Added in 0.1.0."""


class ValidationError(APIError):
    """VALIDATION (400): the request was malformed; see ``detail``. Added in 0.1.0."""


class ConnectedServicesAccountError(APIError):
    """CONNECTED_SERVICES_ACCOUNT (400): a problem with the owner's account at the carmaker.

    Added in 0.1.0.
    """


class VehicleStateError(APIError):
    """VEHICLE_STATE (409): the vehicle cannot do this now (asleep, unreachable, door open...).

    Added in 0.1.0.
    """


class RateLimitError(APIError):
    """RATE_LIMIT (429): slow down; ``retry_after`` says how long when the API told us.

    Added in 0.1.0.
    """


class BillingError(APIError):
    """BILLING (430): a plan or vehicle limit of the application was reached. Added in 0.1.0."""


class ServerError(APIError):
    """SERVER (500, or any unrecognised 5xx): Smartcar failed internally. Added in 0.1.0."""


class CompatibilityError(APIError):
    """COMPATIBILITY (501): the vehicle or make does not support this endpoint. Added in 0.1.0."""


class UpstreamError(APIError):
    """UPSTREAM (502, also 503/504): the carmaker's service failed or timed out. Added in 0.1.0."""


class TransportError(SmartcarError):
    """The exchange with the API failed before a usable answer arrived. Added in 0.1.0."""


class APIConnectionError(TransportError):
    """The connection could not be made or broke mid-request. Added in 0.1.0."""


class APITimeoutError(APIConnectionError):
    """The request timed out: a kind of connection error, as in openai-python. Added in 0.1.0."""


class InvalidResponseError(TransportError):
    """The answer was not the JSON we expect.

    ``field`` is the path of the bad value in wire (camelCase) names, e.g.
    ``doors[2].status``, or None when the body as a whole was wrong.

    Added in 0.1.0.
    """

    def __init__(
        self, message: str, *, field: str | None = None, **fields: Unpack[_ErrorFields]
    ) -> None:
        super().__init__(message, **fields)
        self.field = field


class ClientClosedError(SmartcarError):
    """The Client was closed while the call was queued, or before it was made. Added in 0.1.0."""


class StateError(SmartcarError):
    """A state store failed: not a state file, a newer schema, corrupt content, I/O, closed.

    The message names the file and what is wrong, never a token. Added in 0.1.0.
    """


class StateUnavailableError(StateError):
    """A shared store cannot be reached right now (refused, timed out, loading, read-only).

    Transient by nature: the store's client reconnects by itself, so a caller
    may carry on degraded (local gates and pacing) and try again later. Never
    raised by the embedded :class:`~smartcar_async.SQLiteState`. Added in 0.1.0.
    """


_BY_TYPE: Final[Mapping[str, type[APIError]]] = {
    "AUTHENTICATION": AuthenticationError,
    "PERMISSION": PermissionDeniedError,
    "RESOURCE_NOT_FOUND": ResourceNotFoundError,
    "VALIDATION": ValidationError,
    "CONNECTED_SERVICES_ACCOUNT": ConnectedServicesAccountError,
    "VEHICLE_STATE": VehicleStateError,
    "RATE_LIMIT": RateLimitError,
    "BILLING": BillingError,
    "SERVER": ServerError,
    "COMPATIBILITY": CompatibilityError,
    "UPSTREAM": UpstreamError,
    # v1.0 "error" values (the pre-2021 typed exceptions of the official SDKs).
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "resource_not_found_error": ResourceNotFoundError,
    "validation_error": ValidationError,
    "vehicle_state_error": VehicleStateError,
    "rate_limit_error": RateLimitError,
    "monthly_limit_exceeded_error": BillingError,
    "server_error": ServerError,
    "vehicle_not_capable_error": CompatibilityError,
    "smartcar_not_capable_error": CompatibilityError,
    "gateway_timeout_error": UpstreamError,
    # OAuth (RFC 6749 §5.2) "error" values from the token endpoint.
    "invalid_grant": AuthenticationError,
    "invalid_client": AuthenticationError,
    "unauthorized_client": AuthenticationError,
    "access_denied": AuthenticationError,
    "invalid_request": ValidationError,
    "unsupported_grant_type": ValidationError,
    "invalid_scope": ValidationError,
}

_BY_STATUS: Final[Mapping[int, type[APIError]]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: ResourceNotFoundError,
    409: VehicleStateError,
    429: RateLimitError,
    430: BillingError,
    500: ServerError,
    501: CompatibilityError,
    502: UpstreamError,
    503: UpstreamError,
    504: UpstreamError,
}

_ERROR_HEADERS: Final = frozenset({"retry-after", "sc-request-id"})
_SNIPPET_CHARS: Final = 200


def _class_for(kind: str | None, status: int) -> type[APIError]:
    if kind is not None and (cls := _BY_TYPE.get(kind)) is not None:
        return cls
    if (cls := _BY_STATUS.get(status)) is not None:
        return cls
    return ServerError if 500 <= status <= 599 else APIError


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _detail(value: object) -> tuple[Any, ...] | None:
    if value is None:
        return None
    return tuple(value) if isinstance(value, list | tuple) else (value,)


def _snippet(body: object) -> str | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str):
        return None
    # A proxy's HTML error page is useful only as a hint; keep it to one line.
    text = " ".join(body.split())
    return text[:_SNIPPET_CHARS] + "…" if len(text) > _SNIPPET_CHARS else text or None


def error_from_response(
    status: int,
    body: object,
    headers: Mapping[str, object] | None = None,
    *,
    request_id: str | None = None,
) -> APIError:
    """Build the typed error for an error answer.

    *body* is the parsed JSON, or None / the raw text when it was not JSON.
    Recognises v2.0 bodies (``type``), legacy v1.0 bodies (``error`` +
    ``message``), OAuth bodies (``error`` + ``error_description``) and
    falls back to the HTTP status for anything else. Only ``Retry-After``
    and ``SC-Request-Id`` are read from *headers*; nothing else is echoed.
    """
    picked = pick_headers(headers, _ERROR_HEADERS)
    retry_after = parse_retry_after(picked.get("retry-after"))
    request_id = _str(picked.get("sc-request-id")) or request_id
    if not isinstance(body, Mapping):
        snippet = _snippet(body)
        message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
        return _class_for(None, status)(
            message,
            status_code=status,
            description=snippet,
            request_id=request_id,
            retry_after=retry_after,
        )

    body_status = body.get("statusCode")
    status_code = body_status if type(body_status) is int else status
    request_id = _str(body.get("requestId")) or request_id
    kind = _str(body.get("type"))
    if kind is not None:  # v2.0
        code = _str(body.get("code"))
        description = _str(body.get("description"))
    elif (kind := _str(body.get("error"))) is not None:
        code = _str(body.get("code"))
        # OAuth bodies describe in error_description, v1.0 bodies in message.
        description = _str(body.get("error_description")) or _str(body.get("message"))
    elif isinstance(items := body.get("errors"), list) and items:  # v3 JSON:API
        return _from_v3_list(items, status, request_id, retry_after)
    else:
        return _class_for(None, status_code)(
            f"HTTP {status_code} with an unrecognised error body",
            status_code=status_code,
            request_id=request_id,
            retry_after=retry_after,
        )
    # The official SDKs' message format, so logs read the same after a switch.
    head = f"{kind}:{code}" if code is not None else kind
    return _class_for(kind, status_code)(
        f"{head} - {description or ''}",
        type=kind,
        code=code,
        status_code=status_code,
        description=description,
        doc_url=_str(body.get("docURL")),
        request_id=request_id,
        resolution=Resolution.from_wire(body.get("resolution")),
        suggested_user_message=_str(body.get("suggestedUserMessage")),
        detail=_detail(body.get("detail")),
        retry_after=retry_after,
    )


# The HTTP status Smartcar documents for each type: a failed signal's error
# carries none of its own (its answer was a 200).
_STATUS_OF_TYPE: Final[Mapping[str, int]] = {
    "AUTHENTICATION": 401,
    "PERMISSION": 403,
    "RESOURCE_NOT_FOUND": 404,
    "VALIDATION": 400,
    "CONNECTED_SERVICES_ACCOUNT": 400,
    "VEHICLE_STATE": 409,
    "RATE_LIMIT": 429,
    "BILLING": 430,
    "SERVER": 500,
    "COMPATIBILITY": 501,
    "UPSTREAM": 502,
}


def _v3_status(value: object, fallback: int | None) -> int | None:
    # v3 writes the status as a string ("501"); accept an int too.
    if type(value) is int and 100 <= value <= 599:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        return int(value)
    return fallback


def error_from_v3_item(
    item: Mapping[str, object],
    status: int | None,
    *,
    request_id: str | None = None,
    retry_after: float | None = None,
    signal: str | None = None,
) -> APIError:
    """One v3 error object (``{"status": "501", "type", "code", "title", "detail", ...}``).

    ``status`` is the HTTP status of the answer, used when the object has no
    readable ``status`` of its own; for a failed signal (``signal`` names
    it) the status Smartcar documents for the type is used instead.
    """
    kind = _str(item.get("type"))
    code = _str(item.get("code"))
    fallback = status if signal is None else _STATUS_OF_TYPE.get(kind or "")
    status_code = _v3_status(item.get("status"), fallback)
    description = _str(item.get("detail")) or _str(item.get("title"))
    head = (f"{kind}:{code}" if code is not None else kind) or f"HTTP {status_code}"
    where = f" (signal {signal})" if signal is not None else ""
    links = item.get("links")
    meta = item.get("meta")
    return _class_for(kind, status_code or 0)(
        f"{head} - {description or ''}{where}",
        type=kind,
        code=code,
        status_code=status_code,
        description=description,
        doc_url=_str(links.get("about")) if isinstance(links, Mapping) else None,
        request_id=request_id,
        resolution=Resolution.from_wire(item.get("resolution")),
        suggested_user_message=_str(item.get("suggestedUserMessage")),
        detail=(meta,) if isinstance(meta, Mapping) else None,
        retry_after=retry_after,
    )


def _from_v3_list(
    items: list[object], status: int, request_id: str | None, retry_after: float | None
) -> APIError:
    typed = tuple(
        error_from_v3_item(item, status, request_id=request_id, retry_after=retry_after)
        if isinstance(item, Mapping)
        else _class_for(None, status)(
            f"HTTP {status} with an unrecognised error item",
            status_code=status,
            request_id=request_id,
        )
        for item in items
    )
    first = typed[0]
    # The raised error is a twin of the first, holding them all.
    return type(first)(
        first.message,
        type=first.type,
        code=first.code,
        status_code=first.status_code,
        description=first.description,
        doc_url=first.doc_url,
        request_id=first.request_id,
        resolution=first.resolution,
        suggested_user_message=first.suggested_user_message,
        detail=first.detail,
        retry_after=retry_after,
        errors=typed,
    )


#: The longest wait a ``Retry-After`` can ask for (one day); longer ones are clamped to it.
MAX_RETRY_AFTER: Final = 86400.0


def parse_retry_after(value: object, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None if absent or unparseable.

    Accepts an int or float, a numeric string (``"120"``, ``"1.5"``) or an
    HTTP-date, which is taken relative to *now* (default ``time.time()``)
    and clamped at 0 when already past. Any wait longer than
    `MAX_RETRY_AFTER` (``"1e306"``, a date in year 9999) is clamped to it.
    Negative numbers, ``inf`` and ``nan`` are malformed and give None.
    """
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            return _seconds_until(text, now)
        # float() gives inf for a numeral too large for it ("1e400") as for
        # the word ("inf", "infinity"); only the numeral is a real, if absurd, wait.
        if math.isinf(seconds) and "n" not in text.lower():
            return MAX_RETRY_AFTER if seconds > 0 else None
    elif isinstance(value, int) and not isinstance(value, bool):
        # An int is exact: a huge one is a long wait, not a malformed one.
        return _bounded(value) if value >= 0 else None
    elif isinstance(value, float):
        seconds = value
    else:
        return None
    return _bounded(seconds) if math.isfinite(seconds) and seconds >= 0 else None


def _bounded(seconds: float) -> float:
    # `or 0.0` turns -0.0 into 0.0.
    return float(min(seconds, MAX_RETRY_AFTER)) or 0.0


def _seconds_until(http_date: str, now: float | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
        if when.tzinfo is None:
            # RFC 9110 HTTP-dates are always GMT.
            when = when.replace(tzinfo=UTC)
        delta = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _bounded(max(0.0, delta)) if math.isfinite(delta) else None
