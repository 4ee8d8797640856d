"""The endpoint table: what each vehicle read is called, where it lives, what it returns.

The coalescer batches by path, so every batchable read is declared here once
with its canonical path (leading slash, no trailing slash, ``/`` for the
vehicle attributes). Writes are not in this table: they never coalesce.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar

import attrs

from . import _models as m

__all__ = ["API_VERSION", "READS", "Read", "model_for_path", "normalize_path"]

T = TypeVar("T")

#: The version segment of every API URL: ``/v2.0/vehicles/...``.
API_VERSION: Final = "2.0"


@attrs.frozen
class Read(Generic[T]):
    """One GET endpoint of a vehicle that may go inside a batch."""

    name: str
    path: str
    model: type[T]


ATTRIBUTES: Final = Read("attributes", "/", m.Attributes)
VIN: Final = Read("vin", "/vin", m.Vin)
PERMISSIONS: Final = Read("permissions", "/permissions", m.Permissions)
ODOMETER: Final = Read("odometer", "/odometer", m.Odometer)
LOCATION: Final = Read("location", "/location", m.Location)
FUEL: Final = Read("fuel", "/fuel", m.Fuel)
BATTERY: Final = Read("battery", "/battery", m.Battery)
BATTERY_CAPACITY: Final = Read("battery_capacity", "/battery/capacity", m.BatteryCapacity)
NOMINAL_CAPACITY: Final = Read("nominal_capacity", "/battery/nominal_capacity", m.NominalCapacity)
CHARGE: Final = Read("charge", "/charge", m.Charge)
CHARGE_LIMIT: Final = Read("get_charge_limit", "/charge/limit", m.ChargeLimit)
TIRE_PRESSURE: Final = Read("tire_pressure", "/tires/pressure", m.TirePressure)
ENGINE_OIL: Final = Read("engine_oil", "/engine/oil", m.EngineOil)
LOCK_STATUS: Final = Read("lock_status", "/security", m.LockStatus)
SYSTEM_STATUS: Final = Read(
    "diagnostic_system_status", "/diagnostics/system_status", m.DiagnosticSystemStatus
)
TROUBLE_CODES: Final = Read(
    "diagnostic_trouble_codes", "/diagnostics/dtcs", m.DiagnosticTroubleCodes
)
SERVICE_HISTORY: Final = Read("service_history", "/service/history", m.ServiceHistory)

READS: Final[tuple[Read[Any], ...]] = (
    ATTRIBUTES,
    VIN,
    PERMISSIONS,
    ODOMETER,
    LOCATION,
    FUEL,
    BATTERY,
    BATTERY_CAPACITY,
    NOMINAL_CAPACITY,
    CHARGE,
    CHARGE_LIMIT,
    TIRE_PRESSURE,
    ENGINE_OIL,
    LOCK_STATUS,
    SYSTEM_STATUS,
    TROUBLE_CODES,
    SERVICE_HISTORY,
)

_BY_PATH: Final[dict[str, type[Any]]] = {r.path: r.model for r in READS}


def normalize_path(path: str) -> str:
    """Canonical form used for dedupe keys and for routing batch items.

    Smartcar echoes paths with a leading slash; clients send them with or
    without. ``""`` and ``"/"`` both mean the vehicle attributes.
    """
    stripped = path.strip("/")
    return "/" + stripped


def model_for_path(path: str) -> type[Any]:
    """The typed model for a known read path, else the raw :class:`Response`."""
    return _BY_PATH.get(path, m.Response)
