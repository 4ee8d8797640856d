"""Models for the make-specific v2.0 endpoints (``/vehicles/{id}/{make}/...``).

Reached through ``request()`` or batched like the core endpoints. Shapes
that several makes share (charge voltmeter and completion time on Tesla,
Chevrolet and Cadillac) have one model named after the endpoint; shapes
only one make has carry the make's name. Sources are thinner here than for
the core API, so fields the docs show as nullable, or do not show at all,
are optional.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._models import EMPTY_META, WHOLE_BODY, Meta

__all__ = [
    "BmwChargeRecord",
    "BmwChargeRecords",
    "CabinClimate",
    "ChargeAmmeter",
    "ChargeCompletion",
    "ChargeScheduleTime",
    "ChargeVoltmeter",
    "ChargeWattmeter",
    "Compass",
    "Coordinates",
    "FordChargeScheduleByLocation",
    "FordChargeWindow",
    "FordChargingLocation",
    "FordChargingSchedules",
    "NissanChargeSchedule",
    "NissanChargeScheduleEntry",
    "Speedometer",
    "TeslaAttributes",
    "TeslaBattery",
    "TeslaChargeSchedule",
    "TeslaDriveUnit",
    "TeslaSentryMode",
    "TeslaStyle",
    "TeslaWheel",
    "Thermometer",
]


@attrs.frozen
class ChargeAmmeter:
    """``GET tesla/charge/ammeter``: the charging current in amperes. Added in 0.1.0."""

    amperage: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ChargeWattmeter:
    """``GET tesla/charge/wattmeter``: the charging power in kW. Added in 0.1.0."""

    wattage: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ChargeVoltmeter:
    """``GET {tesla,chevrolet,cadillac}/charge/voltmeter``: the charging voltage in volts.

    Added in 0.1.0.
    """

    voltage: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ChargeCompletion:
    """``GET {tesla,chevrolet,cadillac}/charge/completion``: when charging will finish, if known.

    Added in 0.1.0.
    """

    time: datetime | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class ChargeScheduleTime:
    """One Tesla schedule slot: enabled, and its local ``HH:mm`` time (null when unset).

    Added in 0.1.0.
    """

    enabled: bool
    time: str | None = None


@attrs.frozen
class TeslaChargeSchedule:
    """``GET tesla/charge/schedule``: the departure-time and start-time schedules.

    Added in 0.1.0.
    """

    departure_time: ChargeScheduleTime | None = None
    start_time: ChargeScheduleTime | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Compass:
    """``GET tesla/compass``: direction (N, NE, ... NW) and heading in degrees. Added in 0.1.0."""

    direction: str
    heading: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Speedometer:
    """``GET tesla/speedometer``: speed in km/h (metric) or mph (imperial). Added in 0.1.0."""

    speed: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Thermometer:
    """``GET tesla/thermometer/{exterior,interior}``: temperature in °C or °F. Added in 0.1.0."""

    temperature: float
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class CabinClimate:
    """``GET tesla/climate/cabin``: climate status (ON/OFF) and target temperature in °C or °F.

    Added in 0.1.0.
    """

    status: str
    temperature: float | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class TeslaBattery:
    """``GET tesla/battery``: extended battery state; fractions 0..1, ranges in km or mi.

    Every field may be null (the docs type even ``percentRemaining`` and
    ``range`` as ``number | null``).

    Added in 0.1.0.
    """

    percent_remaining: float | None = None
    range: float | None = None
    percent_remaining_usable: float | None = None
    range_estimated: float | None = None
    range_ideal: float | None = None
    heater_on: bool | None = None
    not_enough_power_to_heat: bool | None = None
    max_range_charge_counter: int | None = None
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class TeslaSentryMode:
    """Whether Sentry Mode is available and enabled. Added in 0.1.0."""

    available: bool | None = None
    enabled: bool | None = None


@attrs.frozen
class TeslaStyle:
    """Exterior colour and trims. Added in 0.1.0."""

    exterior_color: str | None = None
    exterior_trim: str | None = None
    interior_trim: str | None = None


@attrs.frozen
class TeslaWheel:
    """Wheel style and diameter in millimetres. Added in 0.1.0."""

    style: str | None = None
    diameter: float | None = None


@attrs.frozen
class TeslaDriveUnit:
    """Front and rear drive unit names. Added in 0.1.0."""

    front: str | None = None
    rear: str | None = None


@attrs.frozen
class TeslaAttributes:
    """``GET tesla/attributes``: extended vehicle info; all optional, ``raw`` is the whole body.

    Added in 0.1.0.
    """

    id: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    firmware_version: str | None = None
    trim_badging: str | None = None
    efficiency_package: str | None = None
    performance_package: str | None = None
    nickname: str | None = None
    driver_assist_version: str | None = None
    at_home: bool | None = None
    sentry_mode: TeslaSentryMode | None = None
    style: TeslaStyle | None = None
    wheel: TeslaWheel | None = None
    drive_unit: TeslaDriveUnit | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, metadata={WHOLE_BODY: True})
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class NissanChargeScheduleEntry:
    """One Nissan charge window: start and end as sent (ISO-8601 on read) and the weekdays.

    Added in 0.1.0.
    """

    start: str
    end: str
    days: tuple[str, ...] = ()


@attrs.frozen
class NissanChargeSchedule:
    """``GET nissan/charge/schedule``: up to three charge windows. Added in 0.1.0."""

    charge_schedules: tuple[NissanChargeScheduleEntry, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class Coordinates:
    """A latitude/longitude pair in degrees. Added in 0.1.0."""

    latitude: float
    longitude: float


@attrs.frozen
class FordChargeWindow:
    """One Ford charge window, ``HH:mm`` local start and end. Added in 0.1.0."""

    start: str
    end: str


@attrs.frozen
class FordChargingSchedules:
    """Ford charge windows for weekdays and for weekends. Added in 0.1.0."""

    weekday: tuple[FordChargeWindow, ...] = ()
    weekend: tuple[FordChargeWindow, ...] = ()


@attrs.frozen
class FordChargingLocation:
    """A saved Ford charging location with its charge limit (0..1) and schedules. Added in 0.1.0."""

    location: Coordinates | None = None
    charge_limit: float | None = None
    charge_on_plugin: bool | None = None
    charging_schedules: FordChargingSchedules | None = None


@attrs.frozen
class FordChargeScheduleByLocation:
    """``GET ford/charge/schedule_by_location``: the schedules per saved location.

    Added in 0.1.0.
    """

    charging_locations: tuple[FordChargingLocation, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)


@attrs.frozen
class BmwChargeRecord:
    """One completed BMW/MINI charging session: energy in kWh, state of charge as fractions 0..1.

    Added in 0.1.0.
    """

    charge_start: datetime | None = None
    charge_end: datetime | None = None
    # Undocumented shape (an address or coordinates): kept as the raw JSON value.
    location: Any = None
    energy: float | None = None
    is_public: bool | None = None
    start_percent_remaining: float | None = None
    end_percent_remaining: float | None = None
    charging_type: str | None = None


@attrs.frozen
class BmwChargeRecords:
    """``GET bmw/charge/records``: charging sessions of the last 30 days at most. Added in 0.1.0."""

    records: tuple[BmwChargeRecord, ...]
    meta: Meta = attrs.field(default=EMPTY_META, kw_only=True)
