"""The core v2.0 vehicle endpoints (reference §2) and their handlers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from . import _units as units
from ._endpoint import (
    ACTION_OK,
    COMBUSTION,
    ELECTRIC,
    Ctx,
    Endpoint,
    action,
    body_object,
    choice,
    number,
    query_int,
    read,
)
from ._errors import validation, vehicle_state
from ._fleet import SimulatedVehicle, system_statuses
from ._units import wire

_DOORS = ("frontLeft", "frontRight", "backRight", "backLeft")


def _attributes(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    return {"id": v.id, "make": v.make, "model": v.model, "year": v.year}


def _vin(ctx: Ctx) -> dict[str, Any]:
    return {"vin": ctx.vehicle.vin}


def _permissions(ctx: Ctx) -> dict[str, Any]:
    scopes = ctx.grant.scope_list()
    limit = query_int(ctx.query, "limit", 25, 1)
    offset = query_int(ctx.query, "offset", 0, 0)
    return {
        "paging": {"count": len(scopes), "offset": offset},
        "permissions": scopes[offset : offset + limit],
    }


def _odometer(ctx: Ctx) -> dict[str, Any]:
    return {"distance": units.odometer(ctx.vehicle.odometer_km, ctx.units)}


def _location(ctx: Ctx) -> dict[str, Any]:
    latitude, longitude = ctx.vehicle.location
    return {"latitude": wire(latitude), "longitude": wire(longitude)}


def _fuel(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    level = v.fuel_level
    return {
        "amountRemaining": units.volume(level * (v.tank_capacity_liters or 0.0), ctx.units),
        "percentRemaining": wire(round(level, 3)),
        "range": units.distance(v.fuel_range_km(), ctx.units),
    }


def _battery(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    return {
        "percentRemaining": wire(round(v.battery_level, 3)),
        "range": units.distance(v.battery_range_km(), ctx.units),
    }


def _battery_capacity(ctx: Ctx) -> dict[str, Any]:
    return {"capacity": wire(ctx.vehicle.battery_capacity_kwh or 0.0)}


def _nominal_capacity(ctx: Ctx) -> dict[str, Any]:
    capacity = wire(ctx.vehicle.battery_capacity_kwh or 0.0)
    return {
        "availableCapacities": [
            {"capacity": capacity, "description": None},
            {"capacity": wire(round(capacity * 1.15, 1)), "description": "BEV:Extended Range"},
        ],
        "capacity": {"nominal": capacity, "source": "SMARTCAR"},
        "url": None,
    }


def _charge(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    return {"isPluggedIn": v.is_plugged_in, "state": v.charge_state}


def _charge_action(ctx: Ctx) -> dict[str, Any]:
    verb = choice(body_object(ctx.body), "action", ("START", "STOP"))
    v = ctx.vehicle
    state = v.charge_state
    if verb == "START":
        if not v.is_plugged_in:
            raise vehicle_state("CHARGING_PLUG_NOT_CONNECTED")
        if state == "CHARGING":
            raise vehicle_state("CHARGING_IN_PROGRESS")
        if state == "FULLY_CHARGED":
            raise vehicle_state("FULLY_CHARGED")
        v.is_charging = True
    else:
        if state != "CHARGING":
            raise vehicle_state("NOT_CHARGING")
        v.is_charging = False
    return ACTION_OK


def _charge_limit(ctx: Ctx) -> dict[str, Any]:
    return {"limit": wire(ctx.vehicle.charge_limit)}


def _set_charge_limit(ctx: Ctx) -> dict[str, Any]:
    limit = number(body_object(ctx.body), "limit", 0.5, 1.0)
    v = ctx.vehicle
    v.advance()
    v.charge_limit = limit
    return ACTION_OK


def _tires(ctx: Ctx) -> dict[str, Any]:
    pressures = ctx.vehicle.tire_pressure_kpa
    return {
        name: units.pressure(pressures[name], ctx.units)
        for name in ("backLeft", "backRight", "frontLeft", "frontRight")
    }


def _engine_oil(ctx: Ctx) -> dict[str, Any]:
    return {"lifeRemaining": wire(ctx.vehicle.oil_life)}


def _lock_status(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    door_status = "LOCKED" if v.is_locked else "CLOSED"
    storage = [{"type": "rear", "status": "CLOSED"}]
    if v.powertrain == "EV":
        storage.append({"type": "front", "status": "CLOSED"})
    return {
        "isLocked": v.is_locked,
        "doors": [
            {"type": d, "status": "OPEN" if d in v.open_doors else door_status} for d in _DOORS
        ],
        "windows": [{"type": d, "status": "CLOSED"} for d in _DOORS],
        "sunroof": [{"type": "sunroof", "status": "CLOSED"}] if v.has_sunroof else [],
        "storage": storage,
        "chargingPort": (
            [{"type": "chargingPort", "status": "OPEN" if _port_open(v) else "CLOSED"}]
            if v.has_battery
            else []
        ),
    }


def _port_open(v: SimulatedVehicle) -> bool:
    # A v3 charge-port/open command opens the flap without a plug (see _v3_commands).
    return v.is_plugged_in or bool(v.extra.get("charge_port_open", False))


def _security_action(ctx: Ctx) -> dict[str, Any]:
    verb = choice(body_object(ctx.body), "action", ("LOCK", "UNLOCK"))
    v = ctx.vehicle
    if verb == "LOCK":
        if v.open_doors:
            raise vehicle_state("DOOR_OPEN")
        v.is_locked = True
    else:
        v.is_locked = False
    return ACTION_OK


def _destination(ctx: Ctx) -> dict[str, Any]:
    body = body_object(ctx.body)
    latitude = number(body, "latitude", -90.0, 90.0)
    longitude = number(body, "longitude", -180.0, 180.0)
    ctx.vehicle.destination = (latitude, longitude)
    return ACTION_OK


def _parse_date(ctx: Ctx, names: tuple[str, str], end_of_day: bool) -> datetime | None:
    for name in names:
        raw = ctx.query.get(name)
        if raw is None or raw == "":
            continue
        try:
            if len(raw) == 10:
                day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
                return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise validation(name, f'"{name}" must be a valid date') from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _service_history(ctx: Ctx) -> list[dict[str, Any]]:
    start = _parse_date(ctx, ("startDate", "start_date"), end_of_day=False)
    end = _parse_date(ctx, ("endDate", "end_date"), end_of_day=True)
    if start is None and end is None:
        # Documented default: the last year's records.
        start = datetime.fromtimestamp(ctx.wall, UTC) - timedelta(days=365)
    if start is not None and end is not None and start > end:
        raise validation("endDate", '"endDate" must be greater than or equal to "startDate"')
    records = []
    for record in ctx.vehicle.service_records:
        when = datetime.fromisoformat(record["serviceDate"])
        if (start is None or when >= start) and (end is None or when <= end):
            records.append(record)
    return records


def _system_status(ctx: Ctx) -> dict[str, Any]:
    return {"systems": list(system_statuses(ctx.vehicle))}


def _dtcs(ctx: Ctx) -> dict[str, Any]:
    return {"activeCodes": list(ctx.vehicle.dtcs)}


def _disconnect(ctx: Ctx) -> dict[str, Any]:
    ctx.vehicle.connected = False
    return {"status": "success"}


def _subscribe(ctx: Ctx) -> dict[str, Any]:
    assert ctx.param is not None
    ctx.vehicle.webhooks.add(ctx.param)
    return {"webhookId": ctx.param, "vehicleId": ctx.vehicle.id}


def _unsubscribe(ctx: Ctx) -> dict[str, Any]:
    assert ctx.param is not None
    ctx.vehicle.webhooks.discard(ctx.param)
    return {"status": "success"}


CORE: tuple[Endpoint, ...] = (
    read("/", _attributes, "read_vehicle_info", live=False, capable=False),
    read("/vin", _vin, "read_vin", live=False, capable=False),
    read("/permissions", _permissions, None, live=False, capable=False),
    read("/odometer", _odometer, "read_odometer", units=True),
    read("/location", _location, "read_location"),
    read("/fuel", _fuel, "read_fuel", requires=COMBUSTION, units=True),
    read("/battery", _battery, "read_battery", requires=ELECTRIC, units=True),
    read("/battery/capacity", _battery_capacity, "read_battery", requires=ELECTRIC),
    read("/battery/nominal_capacity", _nominal_capacity, "read_battery", requires=ELECTRIC),
    read("/charge", _charge, "read_charge", requires=ELECTRIC),
    action(
        "POST", "/charge", _charge_action, "control_charge", capability="/charge", requires=ELECTRIC
    ),
    read("/charge/limit", _charge_limit, "read_charge", requires=ELECTRIC),
    action(
        "POST",
        "/charge/limit",
        _set_charge_limit,
        "control_charge",
        capability="/charge/limit",
        requires=ELECTRIC,
    ),
    read("/tires/pressure", _tires, "read_tires", units=True),
    read("/engine/oil", _engine_oil, "read_engine_oil", requires=COMBUSTION),
    read("/security", _lock_status, "read_security"),
    action("POST", "/security", _security_action, "control_security", capability="/security"),
    action(
        "POST",
        "/navigation/destination",
        _destination,
        "control_navigation",
        capability="/navigation/destination",
    ),
    read("/service/history", _service_history, "read_service_history"),
    read("/diagnostics/system_status", _system_status, "read_diagnostics"),
    read("/diagnostics/dtcs", _dtcs, "read_diagnostics"),
    Endpoint("DELETE", "/application", _disconnect, None, live=False),
)

# Webhook paths carry the webhook id as their last segment; they are matched by prefix.
WEBHOOKS: dict[str, Endpoint] = {
    "POST": Endpoint("POST", "/webhooks", _subscribe, None, live=False),
    "DELETE": Endpoint("DELETE", "/webhooks", _unsubscribe, None, live=False, auth="management"),
}
