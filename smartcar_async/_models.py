"""Typed response models for the Smartcar vehicle endpoints, plus `Meta`.

Every model is an immutable, slotted attrs class with snake_case fields, so
one instance can be handed to every caller that awaited the same data.
Models that stand for a whole HTTP (or batch sub-) response end with a
keyword-only ``meta: Meta`` built from the ``SC-*`` response headers.

Units follow the ``SC-Unit-System`` the request asked for: metric (the
default) is km, litres, kPa and °C; imperial is miles, US gallons, psi and
°F. Percentages are fractions in 0..1. The JSON <-> model mapping
(camelCase wire keys, strict typing, error paths) lives in `_converter`.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from math import isfinite
from typing import Any, Final

import attrs

from ._headers import pick_headers

__all__ = [
    "EMPTY_META",
    "Action",
    "Attributes",
    "AvailableCapacity",
    "Battery",
    "BatteryCapacity",
    "Charge",
    "ChargeLimit",
    "DiagnosticSystem",
    "DiagnosticSystemStatus",
    "DiagnosticTroubleCode",
    "DiagnosticTroubleCodes",
    "EngineOil",
    "Fuel",
    "Location",
    "LockStatus",
    "Meta",
    "NominalCapacity",
    "NominalCapacityValue",
    "Odometer",
    "OpenStatus",
    "Paging",
    "Permissions",
    "Response",
    "ServiceCost",
    "ServiceDetail",
    "ServiceHistory",
    "ServiceRecord",
    "ServiceTask",
    "Status",
    "Subscribe",
    "TirePressure",
    "Vin",
]

# Field metadata read by the converter. Declaring these quirks on the field
# keeps the converter generic: it derives every structure function from the
# class definitions instead of keeping a hand-written list per model.
TOLERANT_ID: Final = "smartcar_async.tolerant_id"
"""The wire may send this id as a JSON number; it is kept as its string."""
WHOLE_BODY: Final = "smartcar_async.whole_body"
"""This field receives the entire wire body rather than one key of it."""
ONE_OR_MANY: Final = "smartcar_async.one_or_many"
"""An array field the wire may also send as a single object (one element)."""

EPOCH_MS_FROM: Final = 100_000_000_000
"""Epoch numbers from this value up are milliseconds, smaller ones seconds.

1e11 seconds is the year 5138 and 1e11 milliseconds is March 1973, so the
timestamps anyone sends fall clearly on one side: v4 webhooks send
milliseconds (``1767920009942``), the v3 docs show seconds (``1767920009``).
"""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse_datetime(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; a naive one is taken as UTC.

    Raises ValueError when *value* is not ISO-8601, or names an instant
    outside what `datetime` holds in UTC (year 1 to 9999).
    """
    parsed = datetime.fromisoformat(value)
    tz = parsed.tzinfo
    if tz is UTC:  # "Z" or "+00:00": the usual case
        return parsed
    if tz is None:
        # Smartcar documents UTC timestamps; a naive value must not silently
        # become local time when compared with aware ones.
        return parsed.replace(tzinfo=UTC)
    if parsed.year in (1, 9999):
        # An offset can push an instant at the edge of the calendar out of
        # range: astimezone() would raise OverflowError in the caller's code.
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError("timestamp out of range") from None
    return parsed


def parse_timestamp(value: object) -> datetime:
    """A timestamp as Smartcar sends one: ISO-8601 text, or an epoch number.

    Numbers of at least `EPOCH_MS_FROM` are epoch milliseconds, smaller ones
    epoch seconds, both UTC; a bool, a negative or non-finite number, or an
    instant past the year 9999 is not a timestamp. The result is always
    timezone-aware. Raises ValueError for anything else.
    """
    if type(value) is str:
        return parse_datetime(value)
    if (type(value) is int or (type(value) is float and isfinite(value))) and value >= 0:
        try:
            if value >= EPOCH_MS_FROM:
                return _EPOCH + timedelta(milliseconds=value)
            return _EPOCH + timedelta(seconds=value)
        except OverflowError:
            pass
    raise ValueError("not an ISO-8601 string or an epoch time")


def parse_datetime_or_none(value: object) -> datetime | None:
    """Like `parse_datetime`, but None for anything that is not an ISO-8601 string."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


_META_HEADERS: Final = frozenset(
    {"sc-data-age", "sc-fetched-at", "sc-unit-system", "sc-request-id"}
)


@attrs.frozen
class Meta:
    """Response metadata from the ``SC-*`` headers; a field is None when its header is absent.

    ``reused`` is True when the answer was not requested but reused (a read
    with ``max_age``), and ``age`` then says how old it was, in seconds:
    time since ``fetched_at`` (or since it was received) when it was handed out.

    Added in 0.1.0. ``reused`` and ``age``: 0.2.0.
    """

    data_age: datetime | None = None
    fetched_at: datetime | None = None
    unit_system: str | None = None
    request_id: str | None = None
    reused: bool = False
    age: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, object], request_id: str | None = None) -> "Meta":
        """Build a Meta from response headers (any key casing).

        ``request_id`` is used when the headers carry none: batch items share
        the envelope's. Tolerant by design: an unparseable date or a non-string
        value becomes None, because metadata must never make a good response fail.
        """
        picked = pick_headers(headers, _META_HEADERS)
        if not picked and request_id is None:
            return EMPTY_META
        unit_system = picked.get("sc-unit-system")
        own_id = picked.get("sc-request-id")
        return cls(
            data_age=parse_datetime_or_none(picked.get("sc-data-age")),
            fetched_at=parse_datetime_or_none(picked.get("sc-fetched-at")),
            unit_system=unit_system if isinstance(unit_system, str) else None,
            request_id=own_id if isinstance(own_id, str) else request_id,
        )


EMPTY_META: Final = Meta()
"""The Meta of a response that carried no ``SC-*`` headers (shared, immutable)."""


@attrs.frozen
class Vin:
    """``GET /vin``: the vehicle identification number. Added in 0.1.0."""

    vin: str
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Charge:
    """``GET /charge``: plug state and CHARGING / FULLY_CHARGED / NOT_CHARGING. Added in 0.1.0."""

    is_plugged_in: bool
    state: str
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Battery:
    """``GET /battery``: state of charge (fraction 0..1) and range (km or mi). Added in 0.1.0."""

    percent_remaining: float
    range: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class BatteryCapacity:
    """``GET /battery/capacity``: total battery capacity in kWh. Added in 0.1.0."""

    capacity: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class AvailableCapacity:
    """One battery capacity (kWh) the owner may pick for ``/battery/nominal_capacity``.

    Added in 0.1.0.
    """

    capacity: float
    description: str | None = None


@attrs.frozen
class NominalCapacityValue:
    """The nominal capacity in use (kWh) and where it came from (e.g. USER_SELECTED).

    Added in 0.1.0.
    """

    nominal: float | None = None
    source: str | None = None


@attrs.frozen
class NominalCapacity:
    """``GET /battery/nominal_capacity``: capacity in use, the choices, a Connect URL to pick.

    Added in 0.1.0.
    """

    available_capacities: tuple[AvailableCapacity, ...] = ()
    capacity: NominalCapacityValue | None = None
    url: str | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Fuel:
    """``GET /fuel``: range (km/mi), fraction left (0..1), amount (L/gal); each may be null.

    Added in 0.1.0.
    """

    range: float | None = None
    percent_remaining: float | None = None
    amount_remaining: float | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class TirePressure:
    """``GET /tires/pressure``: pressure per tire in kPa (metric) or psi (imperial).

    Added in 0.1.0.
    """

    front_left: float
    front_right: float
    back_left: float
    back_right: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class EngineOil:
    """``GET /engine/oil``: remaining oil life as a fraction 0..1. Added in 0.1.0."""

    life_remaining: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Odometer:
    """``GET /odometer``: total distance in km (metric) or miles (imperial). Added in 0.1.0."""

    distance: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Location:
    """``GET /location``: latitude and longitude in degrees. Added in 0.1.0."""

    latitude: float
    longitude: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Attributes:
    """``GET /vehicles/{id}``: vehicle id, make, model and model year. Added in 0.1.0."""

    id: str
    make: str
    model: str
    year: int
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Paging:
    """Offset paging: ``count`` is the total number of items, ``offset`` the first one returned.

    Added in 0.1.0.
    """

    count: int
    offset: int


@attrs.frozen
class Permissions:
    """``GET /permissions``: the scopes this token grants for the vehicle (one page).

    Added in 0.1.0.
    """

    permissions: tuple[str, ...]
    paging: Paging
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ChargeLimit:
    """``GET /charge/limit``: the charge limit as a fraction 0..1. Added in 0.1.0."""

    limit: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class OpenStatus:
    """One door/window/sunroof/storage/port and its status (OPEN, CLOSED, LOCKED, UNKNOWN...).

    Added in 0.1.0.
    """

    type: str
    status: str


@attrs.frozen
class LockStatus:
    """``GET /security``: lock state and open/closed parts; an array is empty when unsupported.

    Added in 0.1.0.
    """

    is_locked: bool
    doors: tuple[OpenStatus, ...] = ()
    windows: tuple[OpenStatus, ...] = ()
    sunroof: tuple[OpenStatus, ...] = ()
    storage: tuple[OpenStatus, ...] = ()
    charging_port: tuple[OpenStatus, ...] = ()
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ServiceTask:
    """One task of a service record. Added in 0.1.0."""

    task_id: str | None = attrs.field(default=None, metadata={TOLERANT_ID: True})
    task_description: str | None = None


@attrs.frozen
class ServiceDetail:
    """One free-form type/value detail of a service record. Added in 0.1.0."""

    type: str | None = None
    value: str | None = None


@attrs.frozen
class ServiceCost:
    """The total cost of a service visit and its currency. Added in 0.1.0."""

    total_cost: float | None = None
    currency: str | None = None


@attrs.frozen
class ServiceRecord:
    """One service visit; ``odometer_distance`` is in km (metric) or miles (imperial).

    Added in 0.1.0.
    """

    service_id: str | None = attrs.field(default=None, metadata={TOLERANT_ID: True})
    odometer_distance: float | None = None
    service_date: datetime | None = None
    service_tasks: tuple[ServiceTask, ...] = ()
    # The docs show an array; Smartcar's Java SDK reads one object.
    service_details: tuple[ServiceDetail, ...] = attrs.field(
        default=(), metadata={ONE_OR_MANY: True}
    )
    service_cost: ServiceCost | None = None


@attrs.frozen
class ServiceHistory:
    """``GET /service/history``: service records (the wire body is a bare JSON array).

    Added in 0.1.0.
    """

    records: tuple[ServiceRecord, ...] = attrs.field(metadata={WHOLE_BODY: True})
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class DiagnosticSystem:
    """One vehicle system and its status (OK or ALERT). Added in 0.1.0."""

    system_id: str
    status: str
    description: str | None = None


@attrs.frozen
class DiagnosticSystemStatus:
    """``GET /diagnostics/system_status``: the status of each monitored system. Added in 0.1.0."""

    systems: tuple[DiagnosticSystem, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class DiagnosticTroubleCode:
    """One active diagnostic trouble code and when it was raised, if known. Added in 0.1.0."""

    code: str
    timestamp: datetime | None = None


@attrs.frozen
class DiagnosticTroubleCodes:
    """``GET /diagnostics/dtcs``: the active diagnostic trouble codes. Added in 0.1.0."""

    active_codes: tuple[DiagnosticTroubleCode, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Action:
    """The answer to a command (lock, charge, charge limit, destination...).

    A 2xx answer means the command was accepted: an empty body, ``{}`` or a
    missing key reads as ``status="success"`` and ``message=""``.

    Added in 0.1.0.
    """

    status: str = "success"
    message: str = ""
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Status:
    """A bare ``{"status": ...}`` answer (disconnect, webhook unsubscribe).

    A 2xx answer means success: an empty body or ``{}`` (Smartcar's Java SDK
    fixture for unsubscribe) reads as ``status="success"``.

    Added in 0.1.0.
    """

    status: str = "success"
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Subscribe:
    """``POST /webhooks/{webhook_id}``: the webhook and vehicle now subscribed. Added in 0.1.0."""

    webhook_id: str
    vehicle_id: str
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Response:
    """Any endpoint through ``request()``: the JSON body exactly as received.

    Even raw, a body may not hold NaN or Infinity or nest deeper than 64
    levels: such a body is an `InvalidResponseError` naming where.

    Added in 0.1.0.
    """

    body: Any = attrs.field(metadata={WHOLE_BODY: True})
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)
