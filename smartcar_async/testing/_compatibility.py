"""Compatibility API v2.0: by VIN and the region/make matrix (reference §7).

Both take Basic client credentials. A VIN is compatible when it belongs to a
fleet vehicle; capabilities then reflect that vehicle's actual capabilities.
The matrix is built from the emulator's model catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._errors import validation
from ._fleet import CATALOGUE, Fleet
from ._routes import ENDPOINTS, default_capabilities

_REGIONS = ("US", "CA", "EUROPE")
_TYPES = {"EV": "BEV", "ICE": "ICE", "PHEV": "PHEV"}


def _scopes(raw: str | None, required: bool) -> list[str]:
    if raw is None or not raw.strip():
        if required:
            raise validation("scope", '"scope" is required')
        return []
    return raw.split()


def _endpoints_for(scopes: list[str]) -> list[tuple[str, str, str | None]]:
    """(path, scope, capability or None) of every readable core endpoint the scopes touch.

    An endpoint with no capability (``/vin``) is one every vehicle supports; the
    documented example still lists it, as capable.
    """
    seen: dict[str, tuple[str, str | None]] = {}
    for ep in ENDPOINTS:
        if ep.make is None and ep.method == "GET" and ep.scope in scopes and ep.path != "/":
            path = ep.capability or ep.path
            seen.setdefault(path, (ep.scope, ep.capability))
    return [(path, scope, cap) for path, (scope, cap) in seen.items()]


def by_vin(fleet: Fleet, query: Mapping[str, str]) -> dict[str, Any]:
    vin = query.get("vin")
    if not vin:
        raise validation("vin", '"vin" is required')
    scopes = _scopes(query.get("scope"), required=True)
    vehicle = fleet.by_vin(vin)
    if vehicle is None:
        return {"compatible": False, "reason": "VEHICLE_NOT_COMPATIBLE", "capabilities": []}
    capabilities = []
    for path, scope, capability in _endpoints_for(scopes):
        capable = capability is None or capability in vehicle.capabilities
        capabilities.append(
            {
                "capable": capable,
                "endpoint": path,
                "permission": scope,
                "reason": None if capable else "VEHICLE_NOT_CAPABLE",
            }
        )
    return {"compatible": True, "reason": None, "capabilities": capabilities}


def matrix(query: Mapping[str, str]) -> dict[str, Any]:
    region = query.get("region", "US")
    if region not in _REGIONS:
        raise validation("region", f'"region" must be one of [{", ".join(_REGIONS)}]')
    make = (query.get("make") or "").upper() or None
    wanted_type = query.get("type")
    if wanted_type is not None and wanted_type not in ("ICE", "HEV", "PHEV", "BEV"):
        raise validation("type", '"type" must be one of [ICE, HEV, PHEV, BEV]')
    scopes = _scopes(query.get("scope"), required=False)
    result: dict[str, list[dict[str, Any]]] = {}
    for spec in CATALOGUE:
        kind = _TYPES[spec.powertrain]
        if (make is not None and spec.make != make) or (wanted_type not in (None, kind)):
            continue
        capable = default_capabilities(spec.make, spec.powertrain)
        permissions = sorted(
            {ep.scope for ep in ENDPOINTS if ep.scope and ep.capability in capable}
        )
        if scopes and not set(scopes) <= set(permissions):
            continue
        endpoints = sorted(f"{ep.method} {ep.path}" for ep in ENDPOINTS if ep.capability in capable)
        result.setdefault(spec.make, []).append(
            {
                "model": spec.model,
                "startYear": spec.years[0],
                "endYear": spec.years[1],
                "type": kind,
                "endpoints": endpoints,
                "permissions": permissions,
            }
        )
    return result
