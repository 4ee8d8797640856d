"""The v3 commands: ``POST /v3/vehicles/{id}/commands/<group>/<action>``.

Paths and bodies follow the 3.0.0 spec as the findings read it (items 5, 7, 8):

* ``charge/start``, ``charge/stop``, ``charge-port/open``, ``charge-port/close``:
  no body; scope ``control_charge``, capability ``/charge``.
* ``charge/set-limit``: ``{"data": {"attributes": {"percent": 75}}}``, an
  integer 50..100; ``control_charge``, ``/charge/limit``.
* ``security/lock``, ``security/unlock``: no body; ``control_security``, ``/security``.
* ``navigation/set-destination``: ``{"data": {"attributes": {"latitude",
  "longitude"}}}``; ``control_navigation``, ``/navigation/destination``.

A command changes the same vehicle state as its v2 twin and fails the same
way (409 ``VEHICLE_STATE`` ``CHARGING_PLUG_NOT_CONNECTED``, ``NOT_CHARGING``,
``DOOR_OPEN`` ...). The answer is a command execution (smartcar-api-v3.md
§3.5): ``{"data": {"id": "exec_…", "type": "command-execution",
"attributes": {"commandType": "charge-set-limit", "status": {"value":
"SUCCESS"}, "executionMode": "sync", "parameters": {...}}, "meta":
{"executedAt", "completedAt", "durationInSeconds"}}}``. ``commandType`` is the
path with ``/`` turned into ``-`` (only ``security-unlock`` and
``charge-set-limit`` are documented). A held (202) command says
``executionMode: "async"`` (an unconfirmed value). Charge schedules
(``/charge-schedules/...``, not under ``/commands``) are in ``_v3_schedules``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._clock import iso
from ._errors import ApiError, vehicle_state
from ._fleet import SimulatedVehicle

Params = dict[str, Any]


@attrs.frozen
class Command:
    """One v3 write. ``makes`` (upper case) narrows ``capability`` to those makes;
    ``check`` runs before a held command is answered (so its error is an HTTP
    status, not a 202 body); ``render`` builds the success document from
    ``run``'s outcome (default: a command execution)."""

    command_type: str
    scope: str
    capability: str
    run: Callable[[SimulatedVehicle, Params], Any]
    parse: Callable[[Any], Params] | None = None
    makes: frozenset[str] | None = None
    check: Callable[[SimulatedVehicle, Params], None] | None = None
    render: (
        Callable[[Command, SimulatedVehicle, Params, Any, float, float, bool], dict[str, Any]]
        | None
    ) = None

    def supports(self, vehicle: SimulatedVehicle) -> bool:
        if self.capability not in vehicle.capabilities:
            return False
        return self.makes is None or vehicle.make.upper() in self.makes

    def document(
        self,
        vehicle: SimulatedVehicle,
        params: Params,
        outcome: Any,
        started: float,
        finished: float,
        held: bool,
    ) -> dict[str, Any]:
        if self.render is not None:
            return self.render(self, vehicle, params, outcome, started, finished, held)
        return execution(self, params, started, finished, held)


def invalid(name: str, message: str) -> ApiError:
    return ApiError("VALIDATION", "INVALID_PARAMETER", description=message)


def attributes_of(body: Any) -> Mapping[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise ApiError(
            "VALIDATION",
            "MISSING_PARAMETER",
            description='"data.attributes" is required and must be an object',
        )
    return attributes


def number(attributes: Mapping[str, Any], name: str, low: float, high: float) -> float:
    if name not in attributes:
        raise ApiError("VALIDATION", "MISSING_PARAMETER", description=f'"{name}" is required')
    value = attributes[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(name, f'"{name}" must be a number')
    if not low <= value <= high:
        raise invalid(name, f'"{name}" must be between {low:g} and {high:g}')
    return float(value)


def _parse_limit(body: Any) -> Params:
    attributes = attributes_of(body)
    percent = number(attributes, "percent", 50, 100)
    if percent != int(percent):
        raise invalid("percent", '"percent" must be an integer')
    return {"percent": int(percent)}


def _parse_destination(body: Any) -> Params:
    attributes = attributes_of(body)
    return {
        "latitude": number(attributes, "latitude", -90, 90),
        "longitude": number(attributes, "longitude", -180, 180),
    }


def _start(v: SimulatedVehicle, _p: Params) -> None:
    if not v.is_plugged_in:
        raise vehicle_state("CHARGING_PLUG_NOT_CONNECTED")
    state = v.charge_state
    if state == "CHARGING":
        raise vehicle_state("CHARGING_IN_PROGRESS")
    if state == "FULLY_CHARGED":
        raise vehicle_state("FULLY_CHARGED")
    v.is_charging = True


def _stop(v: SimulatedVehicle, _p: Params) -> None:
    if v.charge_state != "CHARGING":
        raise vehicle_state("NOT_CHARGING")
    v.is_charging = False


def _set_limit(v: SimulatedVehicle, p: Params) -> None:
    v.advance()
    v.charge_limit = p["percent"] / 100


def _port(open_: bool) -> Callable[[SimulatedVehicle, Params], None]:
    def run(v: SimulatedVehicle, _p: Params) -> None:
        v.extra["charge_port_open"] = open_

    return run


def _lock(v: SimulatedVehicle, _p: Params) -> None:
    if v.open_doors:
        raise vehicle_state("DOOR_OPEN")
    v.is_locked = True


def _unlock(v: SimulatedVehicle, _p: Params) -> None:
    v.is_locked = False


def _destination(v: SimulatedVehicle, p: Params) -> None:
    v.destination = (p["latitude"], p["longitude"])


COMMANDS: Mapping[str, Command] = {
    "/commands/charge/start": Command("charge-start", "control_charge", "/charge", _start),
    "/commands/charge/stop": Command("charge-stop", "control_charge", "/charge", _stop),
    "/commands/charge/set-limit": Command(
        "charge-set-limit", "control_charge", "/charge/limit", _set_limit, _parse_limit
    ),
    "/commands/charge-port/open": Command(
        "charge-port-open", "control_charge", "/charge", _port(True)
    ),
    "/commands/charge-port/close": Command(
        "charge-port-close", "control_charge", "/charge", _port(False)
    ),
    "/commands/security/lock": Command("security-lock", "control_security", "/security", _lock),
    "/commands/security/unlock": Command(
        "security-unlock", "control_security", "/security", _unlock
    ),
    "/commands/navigation/set-destination": Command(
        "navigation-set-destination",
        "control_navigation",
        "/navigation/destination",
        _destination,
        _parse_destination,
    ),
}


def execution(
    command: Command, params: Params, started: float, finished: float, held: bool
) -> dict[str, Any]:
    """The command-execution document of a command that succeeded."""
    attributes: dict[str, Any] = {
        "commandType": command.command_type,
        "status": {"value": "SUCCESS"},
        "executionMode": "async" if held else "sync",
    }
    if params:
        attributes["parameters"] = params
    return {
        "data": {
            "id": f"exec_{uuid.uuid4().hex}",
            "type": "command-execution",
            "attributes": attributes,
            "meta": {
                "executedAt": iso(started),
                "completedAt": iso(finished),
                "durationInSeconds": round(finished - started),
            },
        }
    }
