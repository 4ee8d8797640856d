"""Unit systems, unit conversion, and numbers as Smartcar's JSON writes them.

The fleet stores everything in metric; conversion happens only when a body is
rendered, so state never drifts through repeated round trips.

Smartcar's API is a JavaScript service, and JavaScript has one number type:
a whole value is written without a fraction (``"limit": 1``, ``"capacity":
82``, recorded from the live API), never ``1.0``. Every number the emulator
renders goes through `wire` so clients meet integers wherever a whole value
occurs, as they do in production.
"""

from __future__ import annotations

from typing import Literal

from ._errors import ApiError, validation

UnitSystem = Literal["metric", "imperial"]

KM_PER_MILE = 1.609344
LITERS_PER_US_GALLON = 3.785411784
KPA_PER_PSI = 6.894757293168361


def parse_unit_system(header: str | None) -> UnitSystem:
    """Metric unless the header says otherwise; any other value is a 400 VALIDATION."""
    if header is None:
        return "metric"
    value = header.strip().lower()
    if value == "metric":
        return "metric"
    if value == "imperial":
        return "imperial"
    raise _bad_unit_system(header)


def _bad_unit_system(header: str) -> ApiError:
    return validation(
        "SC-Unit-System", f'"SC-Unit-System" must be one of [metric, imperial], got "{header}"'
    )


def wire(value: float) -> float:
    """``value`` as JavaScript's JSON writes it: an int when whole (typed float for callers)."""
    whole = int(value)
    return whole if whole == value else value


def distance(km: float, units: UnitSystem) -> float:
    return wire(round(km if units == "metric" else km / KM_PER_MILE, 2))


def odometer(km: float, units: UnitSystem) -> int:
    """Whole kilometres or miles, as recorded answers and the batch docs show (``37829``)."""
    return round(km if units == "metric" else km / KM_PER_MILE)


def speed(kmh: float, units: UnitSystem) -> float:
    return distance(kmh, units)


def volume(liters: float, units: UnitSystem) -> float:
    return wire(round(liters if units == "metric" else liters / LITERS_PER_US_GALLON, 2))


def pressure(kpa: float, units: UnitSystem) -> float:
    return wire(round(kpa if units == "metric" else kpa / KPA_PER_PSI, 2))


def temperature(celsius: float, units: UnitSystem) -> float:
    return wire(round(celsius if units == "metric" else celsius * 9.0 / 5.0 + 32.0, 1))
