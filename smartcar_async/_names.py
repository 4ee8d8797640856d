"""Literal types for the names the API takes, so that a typo fails in mypy, not at run time.

The run-time checks stay (callers without a type checker, strings from a
file or a command line); a test keeps these in step with them.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["ReadName", "UnitSystem"]

#: A vehicle read a :class:`FleetPoller` may take: a batchable ``Vehicle`` read method.
ReadName: TypeAlias = Literal[
    "attributes",
    "vin",
    "permissions",
    "odometer",
    "location",
    "fuel",
    "battery",
    "battery_capacity",
    "nominal_capacity",
    "charge",
    "get_charge_limit",
    "tire_pressure",
    "engine_oil",
    "lock_status",
    "diagnostic_system_status",
    "diagnostic_trouble_codes",
    "service_history",
]

#: The ``SC-Unit-System`` a vehicle's answers come in.
UnitSystem: TypeAlias = Literal["metric", "imperial"]
