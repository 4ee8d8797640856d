"""The v3 charge schedules: ``POST /v3/vehicles/{id}/charge-schedules/{daily|weekly|workweek}``
and ``DELETE /v3/vehicles/{id}/charge-schedules/{scheduleId}``.

Shapes (see ``smartcar_async._v3_schedules`` for the sources):

* daily, as documented: ``data.attributes`` = ``location {latitude,
  longitude}``, ``startTime``, ``stopTime`` (``HH:MM``).
* weekly (assumed inner shape): ``location`` and ``days``, an object keyed by
  weekday name (any case) whose values are ``{startTime, stopTime}``.
* workweek (assumed inner shape): ``location`` and ``weekdays`` and/or
  ``weekends``, each ``{startTime, stopTime}``.

Who supports them, per the commands overview (smartcar-api-v3.md §2): Tesla
daily, weekly and workweek; Volvo daily only; every other make answers 501
``COMPATIBILITY/VEHICLE_NOT_CAPABLE``, as the other commands do for a vehicle
that cannot. Scope ``control_charge``; the vehicle must be able to charge
(capability ``/charge``).

A created schedule is kept per vehicle (``SimulatedVehicle.extra[STORE]``,
id -> record; ``Emulator.charge_schedules``), so ``DELETE`` of an id the
vehicle does not hold answers 404 ``RESOURCE_NOT_FOUND/SCHEDULE_NOT_FOUND``
(the code is this emulator's choice, by analogy with the live
``SIGNAL_NOT_FOUND``). The answer to a create is the documented
``charge-schedule-execution``: ``attributes {action: "create", scheduleType,
status {value}, executionMode, scheduleId, parameters}``, ``links.schedule``
and ``meta`` times; a delete answers the same document with ``action:
"delete"`` (undocumented; assumed).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from ._clock import iso
from ._errors import ApiError
from ._fleet import SimulatedVehicle
from ._v3_commands import Command, Params, attributes_of, invalid, number

__all__ = ["DELETE_SCHEDULE", "SCHEDULES", "STORE", "schedules_of"]

#: Key of a vehicle's schedules in ``SimulatedVehicle.extra``.
STORE: Final = "v3_charge_schedules"
_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM: Final = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_TESLA: Final = frozenset({"TESLA"})
_TESLA_VOLVO: Final = frozenset({"TESLA", "VOLVO"})


def schedules_of(vehicle: SimulatedVehicle) -> dict[str, dict[str, Any]]:
    """The vehicle's live schedule store (created on first use)."""
    store: dict[str, dict[str, Any]] = vehicle.extra.setdefault(STORE, {})
    return store


def _missing(name: str) -> ApiError:
    return ApiError("VALIDATION", "MISSING_PARAMETER", description=f'"{name}" is required')


def _object(attributes: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if name not in attributes:
        raise _missing(name)
    value = attributes[name]
    if not isinstance(value, dict):
        raise invalid(name, f'"{name}" must be an object')
    return value


def _location(attributes: Mapping[str, Any]) -> dict[str, float]:
    location = _object(attributes, "location")
    return {
        "latitude": number(location, "latitude", -90, 90),
        "longitude": number(location, "longitude", -180, 180),
    }


def _window(obj: Mapping[str, Any], at: str) -> dict[str, str]:
    times = {}
    for name in ("startTime", "stopTime"):
        if name not in obj:
            raise _missing(f"{at}{name}")
        value = obj[name]
        if not isinstance(value, str) or not _HHMM.fullmatch(value):
            raise invalid(name, f'"{at}{name}" must be a time "HH:MM"')
        times[name] = value
    if times["startTime"] == times["stopTime"]:
        raise invalid("stopTime", f'"{at}stopTime" must differ from "{at}startTime"')
    return times


def _parse_daily(body: Any) -> Params:
    attributes = attributes_of(body)
    return {"location": _location(attributes), **_window(attributes, "")}


def _parse_weekly(body: Any) -> Params:
    attributes = attributes_of(body)
    location = _location(attributes)
    days = _object(attributes, "days")
    if not days:
        raise invalid("days", '"days" must name at least one weekday')
    windows: dict[str, dict[str, str]] = {}
    for key, value in days.items():
        name = key.lower()
        if name not in _WEEKDAYS or name in windows:
            raise invalid("days", f'"days" has an unknown or repeated weekday {key!r}')
        if not isinstance(value, dict):
            raise invalid("days", f'"days.{key}" must be an object')
        windows[name] = _window(value, f"days.{key}.")
    return {"location": location, "days": {d: windows[d] for d in _WEEKDAYS if d in windows}}


def _parse_workweek(body: Any) -> Params:
    attributes = attributes_of(body)
    params: Params = {"location": _location(attributes)}
    for name in ("weekdays", "weekends"):
        if name in attributes:
            params[name] = _window(_object(attributes, name), f"{name}.")
    if len(params) == 1:
        raise _missing("weekdays")
    return params


def _create(schedule_type: str) -> Any:
    def run(vehicle: SimulatedVehicle, params: Params) -> tuple[str, str]:
        schedule_id = f"sched_{uuid.uuid4().hex[:12]}"
        schedules_of(vehicle)[schedule_id] = {"scheduleType": schedule_type, **params}
        return schedule_id, schedule_type

    return run


def _check_delete(vehicle: SimulatedVehicle, params: Params) -> None:
    if params["scheduleId"] not in schedules_of(vehicle):
        raise ApiError(
            "RESOURCE_NOT_FOUND",
            "SCHEDULE_NOT_FOUND",
            description=f"Charge schedule with ID {params['scheduleId']} not found for vehicle "
            f"with ID {vehicle.id}.",
        )


def _delete(vehicle: SimulatedVehicle, params: Params) -> tuple[str, str | None]:
    _check_delete(vehicle, params)  # again: a held delete may race another
    record = schedules_of(vehicle).pop(params["scheduleId"])
    return params["scheduleId"], record.get("scheduleType")


def render(
    command: Command,
    vehicle: SimulatedVehicle,
    params: Params,
    outcome: Any,
    started: float,
    finished: float,
    held: bool,
) -> dict[str, Any]:
    """The ``charge-schedule-execution`` document of a create or delete that succeeded."""
    schedule_id, schedule_type = outcome
    create = command is not DELETE_SCHEDULE
    attributes: dict[str, Any] = {
        "action": "create" if create else "delete",
        "scheduleType": schedule_type,
        "status": {"value": "SUCCESS"},
        "executionMode": "async" if held else "sync",
        "scheduleId": schedule_id,
    }
    if create:
        attributes["parameters"] = params
    return {
        "data": {
            "id": f"exec_{uuid.uuid4().hex}",
            "type": "charge-schedule-execution",
            "attributes": attributes,
            "links": {"schedule": f"/vehicles/{vehicle.id}/charge-schedules/{schedule_id}"},
            "meta": {
                "executedAt": iso(started),
                "completedAt": iso(finished),
                "durationInSeconds": round(finished - started),
            },
        }
    }


def _schedule(schedule_type: str, parse: Any, makes: frozenset[str]) -> Command:
    return Command(
        schedule_type,
        "control_charge",
        "/charge",
        _create(schedule_type),
        parse,
        makes=makes,
        render=render,
    )


#: ``POST`` sub-paths (after ``/v3/vehicles/{id}``) -> their command.
SCHEDULES: Final[Mapping[str, Command]] = {
    "/charge-schedules/daily": _schedule("daily", _parse_daily, _TESLA_VOLVO),
    "/charge-schedules/weekly": _schedule("weekly", _parse_weekly, _TESLA),
    "/charge-schedules/workweek": _schedule("workweek", _parse_workweek, _TESLA),
}

#: ``DELETE /charge-schedules/{scheduleId}``; the route adds ``scheduleId`` to the params.
DELETE_SCHEDULE: Final = Command(
    "delete",
    "control_charge",
    "/charge",
    _delete,
    makes=_TESLA_VOLVO,
    check=_check_delete,
    render=render,
)
