"""The shape of one emulated endpoint, the context its handler gets, and body validation.

Validation messages imitate the Joi messages Smartcar returns in ``detail``
(``'"limit" is required'``); numeric fields accept numeric strings, as Joi's
default conversion does (the Node SDK sends the charge limit as a string).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import attrs

from ._auth import Grant
from ._errors import validation
from ._fleet import SimulatedVehicle
from ._units import UnitSystem

ELECTRIC = frozenset({"electric"})
COMBUSTION = frozenset({"combustion"})

ACTION_OK = {"message": "Successfully sent request to vehicle", "status": "success"}


@attrs.define(slots=True)
class Ctx:
    """Everything a handler may look at for one (sub-)request."""

    vehicle: SimulatedVehicle
    grant: Grant
    units: UnitSystem
    query: Mapping[str, str]
    body: Any
    wall: float
    param: str | None = None
    """The path parameter (the webhook id of ``/webhooks/{id}``)."""


Handler = Callable[[Ctx], Any]


@attrs.frozen
class Endpoint:
    """One method + path under ``/vehicles/{id}``.

    ``capability`` names what the vehicle must support (its GET path, shared by
    the matching action); None means every vehicle supports it. ``requires`` is
    the powertrain feature that decides the default capability. ``live`` marks
    calls that reach the vehicle: they carry SC-Data-Age / SC-Fetched-At and
    fail while the vehicle is asleep or unreachable. ``auth`` is "management"
    for the one call authorised by the Application Management Token.
    """

    method: str
    path: str
    handler: Handler
    scope: str | None = None
    capability: str | None = None
    requires: frozenset[str] = frozenset()
    units: bool = False
    live: bool = True
    make: str | None = None
    auth: Literal["vehicle", "management"] = "vehicle"

    @property
    def batchable(self) -> bool:
        return self.method == "GET"


def read(
    path: str,
    handler: Handler,
    scope: str | None,
    *,
    requires: frozenset[str] = frozenset(),
    units: bool = False,
    live: bool = True,
    capable: bool = True,
    make: str | None = None,
) -> Endpoint:
    """A GET endpoint; ``capable=False`` makes it universally supported (no capability)."""
    return Endpoint(
        "GET",
        path,
        handler,
        scope,
        capability=path if capable else None,
        requires=requires,
        units=units,
        live=live,
        make=make,
    )


def action(
    method: str,
    path: str,
    handler: Handler,
    scope: str | None,
    *,
    capability: str | None,
    requires: frozenset[str] = frozenset(),
    make: str | None = None,
) -> Endpoint:
    return Endpoint(
        method, path, handler, scope, capability=capability, requires=requires, make=make
    )


# -- validation -------------------------------------------------------------


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation([], '"value" must be of type object')
    return body


def number(obj: Mapping[str, Any], name: str, low: float, high: float) -> float:
    if name not in obj:
        raise validation(name, f'"{name}" is required')
    value = obj[name]
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise validation(name, f'"{name}" must be a number') from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise validation(name, f'"{name}" must be a number')
    if value < low:
        raise validation(name, f'"{name}" must be greater than or equal to {_fmt(low)}')
    if value > high:
        raise validation(name, f'"{name}" must be less than or equal to {_fmt(high)}')
    return float(value)


def choice(obj: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    if name not in obj:
        raise validation(name, f'"{name}" is required')
    value = obj[name]
    if value not in choices:
        raise validation(name, f'"{name}" must be one of [{", ".join(choices)}]')
    return str(value)


def boolean(obj: Mapping[str, Any], name: str) -> bool:
    if name not in obj:
        raise validation(name, f'"{name}" is required')
    value = obj[name]
    if not isinstance(value, bool):
        raise validation(name, f'"{name}" must be a boolean')
    return value


def clock_time(obj: Mapping[str, Any], name: str, field: list[str] | None = None) -> str:
    """An ``HH:mm`` string."""
    where = field or [name]
    value = obj.get(name)
    if value is None:
        raise validation(where, f'"{name}" is required')
    if not isinstance(value, str) or not _is_hh_mm(value):
        raise validation(where, f'"{name}" must be a time in HH:mm format')
    return value


def _is_hh_mm(value: str) -> bool:
    hours, sep, minutes = value.partition(":")
    return (
        bool(sep)
        and len(hours) == 2
        and len(minutes) == 2
        and hours.isdigit()
        and minutes.isdigit()
        and int(hours) < 24
        and int(minutes) < 60
    )


def query_int(
    query: Mapping[str, str], name: str, default: int, low: int, high: int | None = None
) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(name, f'"{name}" must be an integer') from None
    if value < low:
        raise validation(name, f'"{name}" must be greater than or equal to {low}')
    if high is not None and value > high:
        raise validation(name, f'"{name}" must be less than or equal to {high}')
    return value


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
