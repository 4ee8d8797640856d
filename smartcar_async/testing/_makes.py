"""Make-specific endpoints (reference §3): ``/vehicles/{id}/{make}/...``, make in lower case.

Response shapes are the documented ones where Smartcar publishes them (Tesla
attributes carries every field of the documented example, id, make, model and
year included); where the reference marks a shape UNCONFIRMED (Audi charge)
the emulator serves a plausible body. Numbers go through `wire`, as in
`_core`. Tesla charge records and ``tesla/status``
are not emulated because no shape is known.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import _units as units
from ._clock import iso
from ._endpoint import (
    ACTION_OK,
    ELECTRIC,
    Ctx,
    Endpoint,
    Handler,
    action,
    body_object,
    boolean,
    choice,
    clock_time,
    number,
    read,
)
from ._errors import validation
from ._units import wire

MAKES: frozenset[str] = frozenset(
    {"tesla", "nissan", "ford", "bmw", "audi", "chevrolet", "cadillac"}
)

_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


# -- shared charge readings -------------------------------------------------


def _voltage(ctx: Ctx) -> float:
    return wire(ctx.vehicle.charge_voltage if ctx.vehicle.is_plugged_in else 0.0)


def _completion(ctx: Ctx) -> dict[str, Any]:
    seconds = ctx.vehicle.seconds_to_full()
    return {"time": None if seconds is None else iso(ctx.wall + seconds)}


def _voltmeter(ctx: Ctx) -> dict[str, Any]:
    return {"voltage": _voltage(ctx)}


# -- Tesla -------------------------------------------------------------------


def _ammeter(ctx: Ctx) -> dict[str, Any]:
    return {"amperage": wire(ctx.vehicle.charge_amperage)}


def _set_ammeter(ctx: Ctx) -> dict[str, Any]:
    amperage = number(body_object(ctx.body), "amperage", 1, 80)
    ctx.vehicle.charge_amperage = amperage
    return {
        "message": f"Successfully sent the following amperage: {wire(amperage)}",
        "status": "success",
    }


def _wattmeter(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    if v.charge_state != "CHARGING":
        return {"wattage": 0}
    return {"wattage": wire(round(v.charge_amperage * v.charge_voltage / 1000.0, 2))}


def _tesla_schedule_state(ctx: Ctx) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = ctx.vehicle.extra.setdefault(
        "tesla_charge_schedule",
        {
            "departureTime": {"enabled": False, "time": None},
            "startTime": {"enabled": False, "time": None},
        },
    )
    return schedule


def _tesla_schedule(ctx: Ctx) -> dict[str, Any]:
    return _tesla_schedule_state(ctx)


def _set_tesla_schedule(ctx: Ctx) -> dict[str, Any]:
    body = body_object(ctx.body)
    kind = choice(body, "type", ("START_TIME", "DEPARTURE_TIME"))
    enabled = boolean(body, "enabled")
    time = clock_time(body, "time") if enabled or body.get("time") is not None else None
    key = "startTime" if kind == "START_TIME" else "departureTime"
    schedule = _tesla_schedule_state(ctx)
    schedule[key] = {"enabled": enabled, "time": time}
    return schedule


def _compass(ctx: Ctx) -> dict[str, Any]:
    heading = ctx.vehicle.heading
    return {"direction": _COMPASS[int((heading + 22.5) // 45) % 8], "heading": wire(heading)}


def _speedometer(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    kmh = v.average_speed_kmh if v.is_moving else 0.0
    return {"speed": units.speed(kmh, ctx.units)}


def _exterior(ctx: Ctx) -> dict[str, Any]:
    return {"temperature": units.temperature(ctx.vehicle.exterior_temperature_c, ctx.units)}


def _interior(ctx: Ctx) -> dict[str, Any]:
    return {"temperature": units.temperature(ctx.vehicle.interior_temperature_c, ctx.units)}


def _cabin(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    return {
        "status": "ON" if v.climate_on else "OFF",
        "temperature": units.temperature(v.interior_temperature_c, ctx.units),
    }


def _tesla_battery(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    level = v.battery_level
    range_km = v.battery_range_km()
    return {
        "heaterOn": None,
        "maxRangeChargeCounter": None,
        "notEnoughPowerToHeat": level < 0.2,
        "percentRemaining": wire(round(level, 3)),
        "percentRemainingUsable": wire(round(max(0.0, level - 0.01), 3)),
        "range": units.distance(range_km, ctx.units),
        "rangeEstimated": units.distance(range_km * 0.96, ctx.units),
        "rangeIdeal": units.distance(range_km, ctx.units),
    }


def _tesla_attributes(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    rng = random.Random(v.id)
    latitude, longitude = v.location
    home_lat, home_lon = v.home
    build = "".join(rng.choice("0123456789abcdef") for _ in range(12))
    # Every key of Smartcar's documented example, with the same nesting and types.
    return {
        "id": v.id,
        "make": v.make,
        "model": v.model,
        "year": v.year,
        "driveUnit": {"front": rng.choice(("PM216MOSFET", "NoneOrSmall")), "rear": "PM216MOSFET"},
        "driverAssistVersion": rng.choice(("TeslaAP3", "TeslaAP4")),
        "efficiencyPackage": f"MY{v.year}",
        "firmwareVersion": f"{v.year + 1}.{rng.randint(2, 44)}.{rng.randint(1, 9)} {build}",
        "nickname": rng.choice(("Tommy", "Sparky", "Volta", "Blue")),
        "performancePackage": rng.choice(("Base", "Performance")),
        "sentryMode": {"available": True, "enabled": v.is_locked},
        "style": {
            "exteriorColor": rng.choice(("SolidBlack", "PearlWhite", "MidnightSilver", "DeepBlue")),
            "exteriorTrim": rng.choice(("Black", "Chrome")),
            "interiorTrim": rng.choice(("Black2", "White2")),
        },
        "trimBadging": rng.choice(("50", "74", "74d", "P74d", "90d", "100d")),
        "wheel": {
            "diameter": rng.choice((457.2, 482.6, 508.0)),
            "style": rng.choice(("Pinwheel", "Stiletto", "Apollo", "Induction")),
        },
        "atHome": abs(latitude - home_lat) < 0.002 and abs(longitude - home_lon) < 0.002,
    }


# -- Nissan ------------------------------------------------------------------


def _nissan_schedules(ctx: Ctx) -> list[dict[str, Any]]:
    schedules: list[dict[str, Any]] = ctx.vehicle.extra.setdefault("nissan_charge_schedules", [])
    return schedules


def _nissan_render(ctx: Ctx) -> dict[str, Any]:
    return {
        "chargeSchedules": [
            {
                "end": f"2020-01-01T{s['end']}:00.000Z",
                "start": f"2020-01-01T{s['start']}:00.000Z",
                "days": list(s["days"]),
            }
            for s in _nissan_schedules(ctx)
        ]
    }


def _set_nissan_schedule(ctx: Ctx) -> dict[str, Any]:
    body = body_object(ctx.body)
    raw = body.get("chargeSchedules")
    if not isinstance(raw, list):
        raise validation("chargeSchedules", '"chargeSchedules" must be an array')
    if len(raw) > 3:
        raise validation(
            "chargeSchedules", '"chargeSchedules" must contain less than or equal to 3 items'
        )
    parsed = []
    for index, item in enumerate(raw):
        where = ["chargeSchedules", str(index)]
        if not isinstance(item, dict):
            raise validation(where, f'"chargeSchedules[{index}]" must be of type object')
        start = clock_time(item, "start", [*where, "start"])
        end = clock_time(item, "end", [*where, "end"])
        days = item.get("days")
        if not isinstance(days, list) or not days or any(d not in _DAYS for d in days):
            raise validation(
                [*where, "days"], f'"days" must be a non-empty array of [{", ".join(_DAYS)}]'
            )
        parsed.append({"start": start, "end": end, "days": list(days)})
    schedules = _nissan_schedules(ctx)
    schedules[:] = parsed
    return _nissan_render(ctx)


# -- Ford --------------------------------------------------------------------


def _ford_locations(ctx: Ctx) -> list[dict[str, Any]]:
    locations: list[dict[str, Any]] = ctx.vehicle.extra.setdefault("ford_charge_locations", [])
    return locations


def _ford_schedule(ctx: Ctx) -> dict[str, Any]:
    return {"chargingLocations": list(_ford_locations(ctx))}


def _windows(value: Any, field: list[str]) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise validation(field, f'"{field[-1]}" must be an array')
    result = []
    for item in value:
        if not isinstance(item, dict):
            raise validation(field, f'"{field[-1]}" items must be objects')
        result.append(
            {
                "start": clock_time(item, "start", [*field, "start"]),
                "end": clock_time(item, "end", [*field, "end"]),
            }
        )
    return result


def _set_ford_schedule(ctx: Ctx) -> dict[str, Any]:
    latitude = number(ctx.query, "latitude", -90.0, 90.0)
    longitude = number(ctx.query, "longitude", -180.0, 180.0)
    body = body_object(ctx.body)
    limit = wire(number(body, "chargeLimit", 0.5, 1.0)) if "chargeLimit" in body else None
    schedules = body.get("chargingSchedules", {})
    if not isinstance(schedules, dict):
        raise validation("chargingSchedules", '"chargingSchedules" must be of type object')
    entry = {
        "chargeLimit": limit,
        "chargingSchedules": {
            "weekday": _windows(schedules.get("weekday", []), ["chargingSchedules", "weekday"]),
            "weekend": _windows(schedules.get("weekend", []), ["chargingSchedules", "weekend"]),
        },
        "location": {"latitude": wire(latitude), "longitude": wire(longitude)},
    }
    locations = _ford_locations(ctx)
    locations[:] = [loc for loc in locations if loc["location"] != entry["location"]]
    locations.append(entry)
    return ACTION_OK


# -- BMW ---------------------------------------------------------------------


def _bmw_records(ctx: Ctx) -> dict[str, Any]:
    today = datetime.fromtimestamp(ctx.wall, UTC).date()
    start = _query_day(ctx, "startDate") or today - timedelta(days=30)
    end = _query_day(ctx, "endDate") or today
    if start > end:
        raise validation("endDate", '"endDate" must be greater than or equal to "startDate"')
    v = ctx.vehicle
    capacity = v.battery_capacity_kwh or 0.0
    latitude, longitude = v.home
    records = []
    # A stable pseudo-history: the same day always yields the same session.
    for offset in range(min((end - start).days + 1, 366)):
        day = start + timedelta(days=offset)
        day_rng = random.Random(f"{v.id}:charge-records:{day.isoformat()}")
        if day_rng.random() < 0.6:
            continue
        begin = datetime(day.year, day.month, day.day, 18, tzinfo=UTC) + timedelta(
            minutes=day_rng.randint(0, 300)
        )
        first = round(day_rng.uniform(0.1, 0.6), 2)
        last = round(min(1.0, first + day_rng.uniform(0.1, 0.4)), 2)
        energy = wire(round((last - first) * capacity, 2))
        records.append(
            {
                "chargeStart": iso(begin.timestamp()),
                "chargeEnd": iso(begin.timestamp() + energy / v.charge_power_kw * 3600),
                "location": {"latitude": latitude, "longitude": longitude},
                "energy": energy,
                "isPublic": day_rng.random() < 0.2,
                "startPercentRemaining": wire(first),
                "endPercentRemaining": wire(last),
                "chargingType": "AC" if day_rng.random() < 0.8 else "DC",
            }
        )
    return {"records": records}


def _query_day(ctx: Ctx, name: str) -> date | None:
    raw = ctx.query.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise validation(name, f'"{name}" must be a date in YYYY-MM-DD format') from None


# -- Audi --------------------------------------------------------------------


def _audi_charge(ctx: Ctx) -> dict[str, Any]:
    v = ctx.vehicle
    seconds = v.seconds_to_full()
    return {
        "isPluggedIn": v.is_plugged_in,
        "state": v.charge_state,
        "percentRemaining": wire(round(v.battery_level, 3)),
        "range": units.distance(v.battery_range_km(), ctx.units),
        "chargeLimit": wire(v.charge_limit),
        "chargeRate": wire(v.charge_power_kw) if v.charge_state == "CHARGING" else 0,
        "completionTime": None if seconds is None else iso(ctx.wall + seconds),
    }


def _tesla(path: str, handler: Handler, scope: str, **kw: Any) -> Endpoint:
    return read(f"/tesla{path}", handler, scope, make="tesla", **kw)


MAKE_ENDPOINTS: tuple[Endpoint, ...] = (
    _tesla("/charge/ammeter", _ammeter, "read_charge", requires=ELECTRIC),
    action(
        "POST",
        "/tesla/charge/ammeter",
        _set_ammeter,
        "control_charge",
        capability="/tesla/charge/ammeter",
        requires=ELECTRIC,
        make="tesla",
    ),
    _tesla("/charge/wattmeter", _wattmeter, "read_charge", requires=ELECTRIC),
    _tesla("/charge/voltmeter", _voltmeter, "read_charge", requires=ELECTRIC),
    _tesla("/charge/completion", _completion, "read_charge", requires=ELECTRIC),
    _tesla("/charge/schedule", _tesla_schedule, "read_charge", requires=ELECTRIC),
    action(
        "POST",
        "/tesla/charge/schedule",
        _set_tesla_schedule,
        "control_charge",
        capability="/tesla/charge/schedule",
        requires=ELECTRIC,
        make="tesla",
    ),
    _tesla("/compass", _compass, "read_compass"),
    _tesla("/speedometer", _speedometer, "read_speedometer", units=True),
    _tesla("/thermometer/exterior", _exterior, "read_thermometer", units=True),
    _tesla("/thermometer/interior", _interior, "read_thermometer", units=True),
    _tesla("/climate/cabin", _cabin, "read_climate", units=True),
    _tesla("/battery", _tesla_battery, "read_battery", requires=ELECTRIC, units=True),
    _tesla("/attributes", _tesla_attributes, "read_extended_vehicle_info"),
    read(
        "/nissan/charge/schedule", _nissan_render, "read_charge", requires=ELECTRIC, make="nissan"
    ),
    action(
        "PUT",
        "/nissan/charge/schedule",
        _set_nissan_schedule,
        "control_charge",
        capability="/nissan/charge/schedule",
        requires=ELECTRIC,
        make="nissan",
    ),
    read(
        "/ford/charge/schedule_by_location",
        _ford_schedule,
        "read_charge_locations",
        requires=ELECTRIC,
        make="ford",
    ),
    action(
        "PUT",
        "/ford/charge/schedule_by_location",
        _set_ford_schedule,
        "control_charge",
        capability="/ford/charge/schedule_by_location",
        requires=ELECTRIC,
        make="ford",
    ),
    read("/bmw/charge/records", _bmw_records, "read_charge_records", requires=ELECTRIC, make="bmw"),
    read("/audi/charge", _audi_charge, "read_charge", requires=ELECTRIC, units=True, make="audi"),
    *(
        read(f"/{make}/charge/{leaf}", handler, "read_charge", requires=ELECTRIC, make=make)
        for make in ("chevrolet", "cadillac")
        for leaf, handler in (("completion", _completion), ("voltmeter", _voltmeter))
    ),
)
