"""Management API v2.0: listing and deleting vehicle connections (reference §7).

Authorised by ``Authorization: Basic base64("default:" + AMT)``. Connections
are listed newest first; the cursor is opaque to clients (an encoded offset).
Deleting a connection disconnects the vehicle: its tokens then get 401.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ._auth import Credentials, basic_credentials
from ._clock import iso
from ._endpoint import query_int
from ._errors import authentication, validation
from ._fleet import Fleet, SimulatedVehicle

_MODES = ("live", "simulated", "test")


def check_management_basic(credentials: Credentials, header: str | None) -> None:
    creds = basic_credentials(header)
    if creds is None or creds[0] != "default":
        raise authentication()
    credentials.check_management(creds[1])


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        prefix, _, number = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != "offset":
            raise ValueError(cursor)
        return max(0, int(number))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise validation("cursor", '"cursor" is invalid') from None


def _selected(fleet: Fleet, query: Mapping[str, str]) -> list[SimulatedVehicle]:
    user_id = query.get("user_id")
    vehicle_id = query.get("vehicle_id")
    mode = query.get("mode")
    if mode is not None and mode not in _MODES:
        raise validation("mode", f'"mode" must be one of [{", ".join(_MODES)}]')
    if mode is not None and mode != "live":
        # Every emulated connection is a live one.
        return []
    return [
        v
        for v in fleet.vehicles
        if v.connected
        and (user_id is None or v.user_id == user_id)
        and (vehicle_id is None or v.id == vehicle_id)
    ]


def list_connections(fleet: Fleet, query: Mapping[str, str]) -> dict[str, Any]:
    limit = query_int(query, "limit", 10, 1, 100)
    cursor = query.get("cursor")
    offset = _decode_cursor(cursor) if cursor else 0
    ordered = sorted(_selected(fleet, query), key=lambda v: (-v.connected_at, v.id))
    page = ordered[offset : offset + limit]
    following = offset + limit
    return {
        "connections": [
            {
                "userId": v.user_id,
                "vehicleId": v.id,
                "connectedAt": iso(v.connected_at),
                "mode": "live",
            }
            for v in page
        ],
        "paging": {"cursor": _encode_cursor(following) if following < len(ordered) else None},
    }


def delete_connections(fleet: Fleet, query: Mapping[str, str]) -> dict[str, Any]:
    if not query.get("user_id") and not query.get("vehicle_id"):
        raise validation(
            ["user_id", "vehicle_id"], '"value" must contain at least one of [user_id, vehicle_id]'
        )
    removed = _selected(fleet, query)
    for vehicle in removed:
        vehicle.connected = False
    return {"connections": [{"userId": v.user_id, "vehicleId": v.id} for v in removed]}
