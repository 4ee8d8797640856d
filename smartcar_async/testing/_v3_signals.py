"""The v3 signal catalogue: each signal rendered from the same simulated vehicle as v2.

Codes, names, groups, units and body shapes follow smartcar-api-v3.md §4 and
the recorded live answer in wbyoung/smartcar (``vw_id_4.ok.v3.json``); values
come from the vehicle state the v2 endpoints read, rounded the way the v2
bodies round them, so a v2 read and the matching signal of one car agree:
``odometer-traveleddistance`` is v2 ``/odometer`` in whole km,
``tractionbattery-stateofcharge`` is v2 ``percentRemaining`` x 100, and so on.
Units are always metric (``km``, ``percent``, ``liters``, ``kWh``); v3 bodies
carry their unit and the emulator ignores ``sc-unit-system`` on v3.

Each signal's status, in this order (the first that applies wins):

* the token lacks the signal's scope: ``ERROR`` ``PERMISSION/UNKNOWN``, no body;
* the vehicle lacks the v2 capability the signal derives from (an ICE car has
  no ``/battery`` or ``/charge``, so its battery and charge signals; removing
  ``"/tires/pressure"`` from ``vehicle.capabilities`` also fails
  ``wheel-tires``), or the part is absent (no sunroof, no front trunk on a
  combustion car): ``ERROR`` ``COMPATIBILITY/VEHICLE_NOT_CAPABLE``, no body;
* the vehicle is in ``faults.asleep`` / ``faults.unreachable``: live signals
  are ``ERROR`` ``VEHICLE_STATE/ASLEEP`` / ``UNREACHABLE`` and keep their
  (last known) body and meta, as recorded REST errors do; static signals
  (VIN, nominal capacity) and the connectivity signals still succeed;
* a charging figure (amperage, voltage, wattage, charge rate, time to
  complete) while not charging: ``ERROR`` ``VEHICLE_STATE/NOT_CHARGING`` with
  its body, as recorded;
* otherwise ``SUCCESS``.

Timestamps are ISO-8601 strings with milliseconds and ``Z``, as the recorded
REST answers have them (the SDK fixtures' epoch milliseconds are webhook-style):
live signals carry ``oemUpdatedAt`` (now minus the vehicle's data lag, as v2
``SC-Data-Age``), ``retrievedAt`` and ``ingestedAt`` (now); static signals and
errors without a body carry only ``ingestedAt``.

Scopes are the v2 scope of the matching v2 endpoint (smartcar-api-v3.md §5, from
wbyoung/smartcar's constants; no official table exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from . import _units as units
from ._auth import Grant
from ._clock import iso
from ._faults import Faults
from ._fleet import SimulatedVehicle
from ._units import wire
from ._v3_errors import signal_error

Render = Callable[[SimulatedVehicle, Faults], dict[str, Any]]

_POWERTRAIN = {"EV": "BEV", "ICE": "ICE", "PHEV": "PHEV"}
# (row, column) of each v2 door name: row 0 is the front, column 0 the left (docs).
_SEATS = (("frontLeft", 0, 0), ("frontRight", 0, 1), ("backLeft", 1, 0), ("backRight", 1, 1))


@attrs.frozen
class SignalSpec:
    """One signal: where it comes from and what it needs."""

    group: str
    name: str
    scope: str | None
    capability: str | None
    render: Render
    live: bool = True
    charging_only: bool = False
    present: Callable[[SimulatedVehicle], bool] | None = None

    @property
    def code(self) -> str:
        return f"{self.group}-{self.name}".lower()


def _percent(fraction: float) -> float:
    return wire(round(fraction * 100, 1))


def _charging(v: SimulatedVehicle) -> bool:
    return v.charge_state == "CHARGING"


def _port_open(v: SimulatedVehicle) -> bool:
    return v.is_plugged_in or bool(v.extra.get("charge_port_open", False))


def _charge_limits(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    limit = _percent(v.charge_limit)
    # The docs: activeLimit is null while the vehicle is not plugged in.
    return {
        "values": [{"type": "GLOBAL", "limit": limit}],
        "activeLimit": limit if v.is_plugged_in else None,
        "unit": "percent",
    }


def _time_to_complete(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    seconds = v.seconds_to_full()
    return {"value": 0 if seconds is None else round(seconds / 60)}


def _grid(v: SimulatedVehicle, item: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    values = [{"row": row, "column": col, **item(name)} for name, row, col in _SEATS]
    return {"values": values, "rowCount": 2, "columnCount": 2}


def _doors(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    return _grid(v, lambda d: {"isOpen": d in v.open_doors, "isLocked": v.is_locked})


def _windows(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    return _grid(v, lambda _d: {"isOpen": False})


def _tires(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    # The docs list no unit for wheel-tires; the values are kPa, as recorded numbers are.
    kpa = v.tire_pressure_kpa
    return _grid(v, lambda d: {"tirePressure": units.pressure(kpa[d], "metric")})


def _location(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    latitude, longitude = v.location
    return {
        "latitude": wire(latitude),
        "longitude": wire(longitude),
        "heading": wire(v.heading),
        "locationType": "CURRENT" if v.is_moving else "LAST_PARKED",
    }


def _nominal(v: SimulatedVehicle, _f: Faults) -> dict[str, Any]:
    capacity = wire(v.battery_capacity_kwh or 0.0)
    return {
        "capacity": capacity,
        "source": "SMARTCAR",
        "availableCapacities": [
            {"capacity": capacity, "description": None},
            {"capacity": wire(round(capacity * 1.15, 1)), "description": "BEV:Extended Range"},
        ],
        "unit": "kWh",
    }


def _measure(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


def _spec(
    group: str,
    name: str,
    scope: str | None,
    capability: str | None,
    render: Render,
    **kw: Any,
) -> SignalSpec:
    return SignalSpec(group, name, scope, capability, render, **kw)


_C, _B, _F = "/charge", "/battery", "/fuel"

CATALOGUE: tuple[SignalSpec, ...] = (
    _spec(
        "Charge",
        "Amperage",
        "read_charge",
        _C,
        lambda v, f: _measure(wire(v.charge_amperage), "ampere"),
        charging_only=True,
    ),
    _spec("Charge", "ChargeLimits", "read_charge", "/charge/limit", _charge_limits),
    _spec(
        "Charge",
        "ChargeRate",
        "read_charge",
        _C,
        lambda v, f: _measure(wire(round(v.charge_power_kw * v.km_per_kwh, 1)), "km/h"),
        charging_only=True,
    ),
    _spec(
        "Charge",
        "DetailedChargingStatus",
        "read_charge",
        _C,
        lambda v, f: {"value": v.charge_state},
    ),
    _spec("Charge", "IsCharging", "read_charge", _C, lambda v, f: {"value": _charging(v)}),
    _spec(
        "Charge",
        "IsChargingCableConnected",
        "read_charge",
        _C,
        lambda v, f: {"value": v.is_plugged_in},
    ),
    _spec(
        "Charge", "IsChargingPortFlapOpen", "read_charge", _C, lambda v, f: {"value": _port_open(v)}
    ),
    _spec("Charge", "TimeToComplete", "read_charge", _C, _time_to_complete, charging_only=True),
    _spec(
        "Charge",
        "Voltage",
        "read_charge",
        _C,
        lambda v, f: _measure(wire(v.charge_voltage), "volts"),
        charging_only=True,
    ),
    _spec(
        "Charge",
        "Wattage",
        "read_charge",
        _C,
        lambda v, f: _measure(wire(round(v.charge_power_kw * 1000)), "watts"),
        charging_only=True,
    ),
    _spec("Closure", "Doors", "read_security", "/security", _doors),
    _spec(
        "Closure",
        "FrontTrunk",
        "read_security",
        "/security",
        lambda v, f: {"isOpen": False, "isLocked": v.is_locked},
        present=lambda v: v.powertrain == "EV",
    ),
    _spec("Closure", "IsLocked", "read_security", "/security", lambda v, f: {"value": v.is_locked}),
    _spec(
        "Closure",
        "RearTrunk",
        "read_security",
        "/security",
        lambda v, f: {"isOpen": False, "isLocked": v.is_locked},
    ),
    _spec(
        "Closure",
        "Sunroof",
        "read_security",
        "/security",
        lambda v, f: {"isOpen": False},
        present=lambda v: v.has_sunroof,
    ),
    _spec("Closure", "Windows", "read_security", "/security", _windows),
    _spec(
        "ConnectivityStatus",
        "IsAsleep",
        "read_vehicle_info",
        None,
        lambda v, f: {"value": v.id in f.asleep},
        live=False,
    ),
    _spec(
        "ConnectivityStatus",
        "IsOnline",
        "read_vehicle_info",
        None,
        lambda v, f: {"value": v.id not in f.unreachable},
        live=False,
    ),
    _spec(
        "InternalCombustionEngine",
        "AmountRemaining",
        "read_fuel",
        _F,
        lambda v, f: _measure(
            units.volume(v.fuel_level * (v.tank_capacity_liters or 0.0), "metric"), "liters"
        ),
    ),
    _spec(
        "InternalCombustionEngine",
        "FuelLevel",
        "read_fuel",
        _F,
        lambda v, f: _measure(_percent(v.fuel_level), "percent"),
    ),
    _spec(
        "InternalCombustionEngine",
        "OilLife",
        "read_engine_oil",
        "/engine/oil",
        lambda v, f: _measure(_percent(v.oil_life), "percent"),
    ),
    _spec(
        "InternalCombustionEngine",
        "Range",
        "read_fuel",
        _F,
        lambda v, f: _measure(units.distance(v.fuel_range_km(), "metric"), "km"),
    ),
    _spec("Location", "PreciseLocation", "read_location", "/location", _location),
    _spec(
        "Odometer",
        "TraveledDistance",
        "read_odometer",
        "/odometer",
        lambda v, f: _measure(units.odometer(v.odometer_km, "metric"), "km"),
    ),
    _spec(
        "TractionBattery",
        "NominalCapacity",
        "read_battery",
        "/battery/nominal_capacity",
        _nominal,
        live=False,
    ),
    _spec(
        "TractionBattery",
        "Range",
        "read_battery",
        _B,
        lambda v, f: {
            "value": units.distance(v.battery_range_km(), "metric"),
            "unit": "km",
            "type": "DEFAULT",
            "additionalValues": [],
        },
    ),
    _spec(
        "TractionBattery",
        "StateOfCharge",
        "read_battery",
        _B,
        lambda v, f: _measure(_percent(v.battery_level), "percent"),
    ),
    _spec(
        "VehicleIdentification", "VIN", "read_vin", None, lambda v, f: {"value": v.vin}, live=False
    ),
    _spec("Wheel", "Tires", "read_tires", "/tires/pressure", _tires),
)

BY_CODE: Mapping[str, SignalSpec] = {spec.code: spec for spec in CATALOGUE}
CODES: tuple[str, ...] = tuple(sorted(BY_CODE))


def vehicle_resource(vehicle: SimulatedVehicle, base: str) -> dict[str, Any]:
    """The JSON:API vehicle object (``GET /vehicles/{id}``'s ``data``, ``included.vehicle``)."""
    return {
        "id": vehicle.id,
        "type": "vehicle",
        "attributes": {
            "make": vehicle.make,
            "model": vehicle.model,
            "year": vehicle.year,
            "powertrainType": _POWERTRAIN[vehicle.powertrain],
            "mode": "live",
        },
        "links": {"self": f"{base}/v3/vehicles/{vehicle.id}"},
    }


def _failure(spec: SignalSpec, v: SimulatedVehicle, grant: Grant) -> tuple[str, str] | None:
    """A failure that leaves no body: no permission, or not capable."""
    if spec.scope is not None and not grant.has_scope(spec.scope):
        return "PERMISSION", "UNKNOWN"
    if spec.capability is not None and spec.capability not in v.capabilities:
        return "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"
    if spec.present is not None and not spec.present(v):
        return "COMPATIBILITY", "VEHICLE_NOT_CAPABLE"
    return None


def _state_error(spec: SignalSpec, v: SimulatedVehicle, faults: Faults) -> str | None:
    """A VEHICLE_STATE code for a signal that still has a (last known) body."""
    if spec.live:
        if v.id in faults.asleep:
            return "ASLEEP"
        if v.id in faults.unreachable:
            return "UNREACHABLE"
    if spec.charging_only and not _charging(v):
        return "NOT_CHARGING"
    return None


def render(
    spec: SignalSpec,
    vehicle: SimulatedVehicle,
    grant: Grant,
    faults: Faults,
    wall: float,
    base: str,
) -> dict[str, Any]:
    """One signal resource, with its own status."""
    code = spec.code
    attributes: dict[str, Any] = {"code": code, "name": spec.name, "group": spec.group}
    now = iso(wall)
    meta: dict[str, str] = {"ingestedAt": now}
    failure = _failure(spec, vehicle, grant)
    if failure is not None:
        attributes["status"] = {"value": "ERROR", "error": signal_error(*failure)}
    else:
        state_code = _state_error(spec, vehicle, faults)
        if state_code is None:
            attributes["status"] = {"value": "SUCCESS"}
        else:
            attributes["status"] = {
                "value": "ERROR",
                "error": signal_error("VEHICLE_STATE", state_code),
            }
        attributes["body"] = spec.render(vehicle, faults)
        if spec.live:
            meta["retrievedAt"] = now
            meta["oemUpdatedAt"] = iso(wall - vehicle.data_lag_seconds)
        else:
            meta["ingestedAt"] = iso(min(wall, vehicle.connected_at))
    return {
        "id": code,
        "type": "signal",
        "attributes": attributes,
        "meta": meta,
        "links": {"self": f"{base}/v3/vehicles/{vehicle.id}/signals/{code}"},
    }


def render_all(
    vehicle: SimulatedVehicle,
    grant: Grant,
    faults: Faults,
    wall: float,
    base: str,
    codes: Iterable[str] = CODES,
) -> list[dict[str, Any]]:
    """Every listed signal of the vehicle, in code order (as the recorded answer lists them)."""
    return [render(BY_CODE[code], vehicle, grant, faults, wall, base) for code in codes]
