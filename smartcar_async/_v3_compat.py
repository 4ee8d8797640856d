"""v2-named reads on a v3 handle: which signals each needs, and the v2 body built from them.

A v3 handle's ``odometer()`` queues the v2 path ``/odometer``; the v3
executor fetches the signals `V2_READS` lists for it and calls its builder,
which returns the v2.0 wire body (camelCase) that the v2 model is then
structured from, so the caller gets the very model a v2 handle returns.

Units: v3 bodies carry their unit (the emulator's, and every recorded answer,
are metric); a value is read in its own unit and converted to the handle's
unit system with the factors and rounding the v2 API uses (distance and
volume to 2 decimals, odometer to whole units, percentages as fractions).
An unknown unit is an error naming ``<code>.body.unit``: a number whose
unit cannot be told is no reading. ``wheel-tires`` documents no unit: its
values are kPa; a ``bar`` label (recorded with kPa-sized numbers) is read as
bar only for values below 20, which no tire in kPa has.

Required signals fail the read with their own typed error; optional ones
(a fuel amount, a sunroof) leave their part empty, as v2 answers do for
parts a vehicle lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import isfinite
from typing import Any, Final

import attrs

from ._json_checks import Mismatch, Path
from ._v3_models import Signal

__all__ = ["V2_READS", "V2Read"]

KM_PER_MILE: Final = 1.609344
LITERS_PER_US_GALLON: Final = 3.785411784
KPA_PER_PSI: Final = 6.894757293168361

_KM = {"km": 1.0, "kilometers": 1.0, "kilometer": 1.0, "kilometres": 1.0}
_MILES = {"mi": KM_PER_MILE, "miles": KM_PER_MILE, "mile": KM_PER_MILE}
_DISTANCE: Final = {**_KM, **_MILES}
_VOLUME: Final = {
    "l": 1.0,
    "liters": 1.0,
    "litres": 1.0,
    "liter": 1.0,
    "gallons": LITERS_PER_US_GALLON,
    "gal": LITERS_PER_US_GALLON,
}
_PRESSURE: Final = {"kpa": 1.0, "kilopascal": 1.0, "psi": KPA_PER_PSI, "bar": 100.0}

Signals = Mapping[str, Signal]
Builder = Callable[[Signals, str], dict[str, Any]]


@attrs.frozen
class V2Read:
    """The signals a v2 read needs (``required`` fail it; ``optional`` may be absent)."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    build: Builder

    @property
    def codes(self) -> tuple[str, ...]:
        return self.required + self.optional


def _wire(value: float) -> float:
    whole = int(value)
    return whole if whole == value else value


def _at(code: str, *steps: str) -> Path:
    return (("key", code), ("attr", "body"), *(("attr", s) for s in steps))


def _body(signal: Signal) -> Mapping[str, Any]:
    if signal.body is None:
        raise Mismatch("an object", None, _at(signal.code))
    return signal.body


def _number(signal: Signal, key: str = "value", body: Mapping[str, Any] | None = None) -> float:
    value = (body if body is not None else _body(signal)).get(key)
    if type(value) is int or type(value) is float:
        try:
            return float(value)
        except OverflowError:  # a signal body may hold an int of up to 4,000 digits
            raise Mismatch("a number in float range", value, _at(signal.code, key)) from None
    raise Mismatch("a number", value, _at(signal.code, key))


def _scaled(signal: Signal, value: float, factor: float, key: str = "value") -> float:
    """``value * factor``, refused when that passes the float range (``round`` fails on inf)."""
    scaled = value * factor
    if isfinite(scaled):
        return scaled
    raise Mismatch("a number in float range", value, _at(signal.code, key))


def _flag(signal: Signal, key: str = "value", body: Mapping[str, Any] | None = None) -> bool:
    value = (body if body is not None else _body(signal)).get(key)
    if type(value) is bool:
        return value
    raise Mismatch("a boolean", value, _at(signal.code, key))


def _factor(signal: Signal, table: Mapping[str, float], default: str | None) -> float:
    unit = signal.unit if signal.unit is not None else default
    factor = table.get(unit.lower()) if unit is not None else None
    if factor is None:
        raise Mismatch(f"a known unit ({', '.join(sorted(table))})", unit, _at(signal.code, "unit"))
    return factor


def _km(signal: Signal) -> float:
    return _scaled(signal, _number(signal), _factor(signal, _DISTANCE, None))


def _distance(km: float, units: str, digits: int | None = 2) -> float:
    value = km if units == "metric" else km / KM_PER_MILE
    return round(value) if digits is None else _wire(round(value, digits))


def _fraction(signal: Signal, key: str = "value", body: Mapping[str, Any] | None = None) -> float:
    if body is None and signal.unit not in (None, "percent", "%"):
        raise Mismatch("percent", signal.unit, _at(signal.code, "unit"))
    return _wire(round(_number(signal, key, body) / 100, 4))


# --- builders, one per v2 read -----------------------------------------------


def _odometer(s: Signals, units: str) -> dict[str, Any]:
    return {"distance": _distance(_km(s["odometer-traveleddistance"]), units, None)}


def _location(s: Signals, _units: str) -> dict[str, Any]:
    signal = s["location-preciselocation"]
    return {"latitude": _number(signal, "latitude"), "longitude": _number(signal, "longitude")}


def _battery(s: Signals, units: str) -> dict[str, Any]:
    return {
        "percentRemaining": _fraction(s["tractionbattery-stateofcharge"]),
        "range": _distance(_km(s["tractionbattery-range"]), units),
    }


def _capacity(s: Signals, _units: str) -> dict[str, Any]:
    return {"capacity": _number(s["tractionbattery-nominalcapacity"], "capacity")}


def _nominal(s: Signals, _units: str) -> dict[str, Any]:
    signal = s["tractionbattery-nominalcapacity"]
    body = _body(signal)
    listed = body.get("availableCapacities") or ()
    if not isinstance(listed, tuple):
        raise Mismatch("an array", listed, _at(signal.code, "availableCapacities"))
    return {
        "availableCapacities": [
            {"capacity": _number(signal, "capacity", item), "description": item.get("description")}
            if isinstance(item, Mapping)
            else {"capacity": item}
            for item in listed
        ],
        "capacity": {"nominal": body.get("capacity"), "source": body.get("source")},
        "url": None,
    }


def _charge(s: Signals, _units: str) -> dict[str, Any]:
    state = s["charge-detailedchargingstatus"]
    return {
        "isPluggedIn": _flag(s["charge-ischargingcableconnected"]),
        "state": _body(state).get("value"),
    }


def _charge_limit(s: Signals, _units: str) -> dict[str, Any]:
    signal = s["charge-chargelimits"]
    body = _body(signal)
    values = body.get("values") or ()
    for item in values if isinstance(values, tuple) else ():
        # The docs' example spells the type "global", the recorded answer "GLOBAL".
        if isinstance(item, Mapping) and str(item.get("type", "")).upper() == "GLOBAL":
            return {"limit": _fraction(signal, "limit", item)}
    if body.get("activeLimit") is not None:
        return {"limit": _fraction(signal, "activeLimit", body)}
    raise Mismatch("a GLOBAL limit or an activeLimit", None, _at(signal.code, "values"))


def _fuel(s: Signals, units: str) -> dict[str, Any]:
    out: dict[str, Any] = {"percentRemaining": _fraction(s["internalcombustionengine-fuellevel"])}
    amount = s.get("internalcombustionengine-amountremaining")
    if amount is not None:
        liters = _scaled(amount, _number(amount), _factor(amount, _VOLUME, "liters"))
        value = liters if units == "metric" else liters / LITERS_PER_US_GALLON
        out["amountRemaining"] = _wire(round(value, 2))
    fuel_range = s.get("internalcombustionengine-range")
    if fuel_range is not None:
        out["range"] = _distance(_km(fuel_range), units)
    return out


_SEATS: Final = {(0, 0): "frontLeft", (0, 1): "frontRight", (1, 1): "backRight", (1, 0): "backLeft"}
_ORDER: Final = {name: i for i, name in enumerate(_SEATS.values())}


def _grid(signal: Signal) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``values`` of a row/column body, named as v2 names them (row 0 front, column 0 left)."""
    values = _body(signal).get("values") or ()
    out = []
    for index, item in enumerate(values if isinstance(values, tuple) else ()):
        if not isinstance(item, Mapping):
            raise Mismatch("an object", item, (*_at(signal.code, "values"), ("index", index)))
        row, column = item.get("row"), item.get("column")
        name = _SEATS.get((row, column)) if type(row) is int and type(column) is int else None
        out.append((name or f"row{row}Column{column}", item))
    out.sort(key=lambda pair: _ORDER.get(pair[0], len(_ORDER)))
    return out


def _tires(s: Signals, units: str) -> dict[str, Any]:
    signal = s["wheel-tires"]
    out: dict[str, Any] = {}
    for name, item in _grid(signal):
        kpa = _number(signal, "tirePressure", item)
        if signal.unit is not None and signal.unit.lower() != "bar":
            kpa = _scaled(signal, kpa, _factor(signal, _PRESSURE, None), "tirePressure")
        elif signal.unit is not None and kpa < 20:
            kpa *= 100.0
        out[name] = _wire(round(kpa if units == "metric" else kpa / KPA_PER_PSI, 2))
    return out


def _engine_oil(s: Signals, _units: str) -> dict[str, Any]:
    return {"lifeRemaining": _fraction(s["internalcombustionengine-oillife"])}


def _open(signal: Signal, body: Mapping[str, Any], with_lock: bool) -> str:
    if body.get("isOpen") is True:
        return "OPEN"
    if with_lock and body.get("isLocked") is True:
        return "LOCKED"
    return "CLOSED" if body.get("isOpen") is False else "UNKNOWN"


def _lock_status(s: Signals, _units: str) -> dict[str, Any]:
    out: dict[str, Any] = {"isLocked": _flag(s["closure-islocked"])}
    if (doors := s.get("closure-doors")) is not None:
        out["doors"] = [{"type": n, "status": _open(doors, b, True)} for n, b in _grid(doors)]
    if (windows := s.get("closure-windows")) is not None:
        out["windows"] = [
            {"type": n, "status": _open(windows, b, False)} for n, b in _grid(windows)
        ]
    if (sunroof := s.get("closure-sunroof")) is not None:
        out["sunroof"] = [{"type": "sunroof", "status": _open(sunroof, _body(sunroof), False)}]
    storage = []
    for code, kind in (("closure-reartrunk", "rear"), ("closure-fronttrunk", "front")):
        if (trunk := s.get(code)) is not None:
            storage.append({"type": kind, "status": _open(trunk, _body(trunk), False)})
    out["storage"] = storage
    if (port := s.get("charge-ischargingportflapopen")) is not None:
        out["chargingPort"] = [
            {"type": "chargingPort", "status": "OPEN" if _flag(port) else "CLOSED"}
        ]
    return out


def _vin(s: Signals, _units: str) -> dict[str, Any]:
    return {"vin": _body(s["vehicleidentification-vin"]).get("value")}


def _read(required: tuple[str, ...], build: Builder, optional: tuple[str, ...] = ()) -> V2Read:
    return V2Read(required, optional, build)


#: Every v2 read path with a v3 equivalent. ``/`` (attributes) needs no
#: signal: it is the vehicle resource (``GET /vehicles/{id}``, or the
#: ``included.vehicle`` of a ``/signals`` answer).
V2_READS: Final[Mapping[str, V2Read]] = {
    "/odometer": _read(("odometer-traveleddistance",), _odometer),
    "/location": _read(("location-preciselocation",), _location),
    "/battery": _read(("tractionbattery-stateofcharge", "tractionbattery-range"), _battery),
    "/battery/capacity": _read(("tractionbattery-nominalcapacity",), _capacity),
    "/battery/nominal_capacity": _read(("tractionbattery-nominalcapacity",), _nominal),
    "/charge": _read(("charge-ischargingcableconnected", "charge-detailedchargingstatus"), _charge),
    "/charge/limit": _read(("charge-chargelimits",), _charge_limit),
    "/fuel": _read(
        ("internalcombustionengine-fuellevel",),
        _fuel,
        ("internalcombustionengine-amountremaining", "internalcombustionengine-range"),
    ),
    "/tires/pressure": _read(("wheel-tires",), _tires),
    "/engine/oil": _read(("internalcombustionengine-oillife",), _engine_oil),
    "/security": _read(
        ("closure-islocked",),
        _lock_status,
        (
            "closure-doors",
            "closure-windows",
            "closure-sunroof",
            "closure-reartrunk",
            "closure-fronttrunk",
            "charge-ischargingportflapopen",
        ),
    ),
    "/vin": _read(("vehicleidentification-vin",), _vin),
    "/": _read((), lambda s, u: {}),
}
