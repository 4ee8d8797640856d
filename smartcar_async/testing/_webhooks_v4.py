"""Webhook payloads in the 4.0 format (``eventId``/``eventType``/``data``/``meta``).

Shapes follow the docs' envelope and the deliveries recorded from the live
service (smartcar-api-v3.md §7): ``meta.deliveredAt`` and every signal's
``oemUpdatedAt``/``retrievedAt`` are epoch **milliseconds** as integers
(static values such as the VIN carry ``0``); a signal the vehicle cannot
provide is listed with ``status.value == "ERROR"`` and an ``error`` of
``{type, code}``, and no ``body`` or ``meta``. Like the recorded deliveries
(and unlike the docs' envelope example), there is no top-level ``vehicleId``:
the vehicle is ``data.vehicle``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from ._errors import ApiError
from ._fleet import SimulatedVehicle
from ._units import wire

__all__ = ["signals", "vehicle_error", "vehicle_state", "verify"]

VERSION = "4.0"
WEBHOOK_NAME = "Emulator webhook"

_NOT_CAPABLE = {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}


def _ms(epoch: float) -> int:
    return round(epoch * 1000)


def _meta(webhook_id: str, wall: float, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "deliveryId": str(uuid.uuid4()),
        "deliveredAt": _ms(wall),
        "version": VERSION,
        "webhookId": webhook_id,
        "webhookName": WEBHOOK_NAME,
    }
    if extra:
        meta.update(extra)
    return meta


def verify(webhook_id: str, wall: float) -> tuple[dict[str, Any], str]:
    """A 4.0 VERIFY event and the challenge it carries (webhook-level: no vehicle)."""
    challenge = secrets.token_urlsafe(24)
    body = {
        "eventId": str(uuid.uuid4()),
        "eventType": "VERIFY",
        "data": {"challenge": challenge},
        "meta": _meta(webhook_id, wall),
    }
    return body, challenge


def _signal(
    group: str, name: str, body: dict[str, Any] | None, meta: dict[str, int] | None
) -> dict[str, Any]:
    signal: dict[str, Any] = {"code": f"{group}-{name}".lower(), "name": name, "group": group}
    if body is None:
        signal["status"] = {"value": "ERROR", "error": dict(_NOT_CAPABLE)}
    else:
        signal["body"] = body
        signal["meta"] = meta
        signal["status"] = {"value": "SUCCESS"}
    return signal


def signals(vehicle: SimulatedVehicle, wall: float) -> list[dict[str, Any]]:
    """The vehicle's subscribed signals as a delivery lists them (metric, as v3 sends)."""
    v = vehicle
    live = {"oemUpdatedAt": _ms(wall - v.data_lag_seconds), "retrievedAt": _ms(wall)}
    static = {"oemUpdatedAt": 0, "retrievedAt": 0}
    latitude, longitude = v.location
    battery = fuel = None
    if v.has_battery:
        battery = {"value": round(v.battery_level * 100), "unit": "percent"}
    if v.has_tank:
        fuel = {"value": round(v.fuel_level * 100), "unit": "percent"}
    return [
        _signal("VehicleIdentification", "VIN", {"value": v.vin}, static),
        _signal(
            "Odometer",
            "TraveledDistance",
            {"value": wire(round(v.odometer_km, 1)), "unit": "km"},
            live,
        ),
        _signal(
            "Location",
            "PreciseLocation",
            {
                "latitude": wire(latitude),
                "longitude": wire(longitude),
                "heading": wire(v.heading),
                "locationType": "CURRENT" if v.is_moving else "LAST_PARKED",
            },
            live,
        ),
        _signal("Closure", "IsLocked", {"value": v.is_locked}, live),
        _signal("TractionBattery", "StateOfCharge", battery, live),
        _signal(
            "Charge",
            "IsCharging",
            {"value": v.charge_state == "CHARGING"} if v.has_battery else None,
            live,
        ),
        _signal("InternalCombustionEngine", "FuelLevel", fuel, live),
        # No emulated vehicle reports this one, as many real vehicles do not.
        _signal("VehicleUserAccount", "Role", None, None),
    ]


def _identity(vehicle: SimulatedVehicle) -> dict[str, Any]:
    return {
        "user": {"id": vehicle.user_id},
        "vehicle": {
            "id": vehicle.id,
            "make": vehicle.make,
            "model": vehicle.model,
            "year": vehicle.year,
        },
    }


def _ref(signal: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": signal["name"], "code": signal["code"], "group": signal["group"]}


def vehicle_state(
    webhook_id: str,
    vehicle: SimulatedVehicle,
    wall: float,
    mode: str,
    previous: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A VEHICLE_STATE event, and the signal bodies to compare the next delivery with.

    ``previous`` is what the last delivery of this webhook for this vehicle
    carried (None for the first): the first delivery's trigger is
    ``FIRST_DELIVERY``, later ones name each signal whose value changed.
    """
    listed = signals(vehicle, wall)
    bodies = {s["code"]: s.get("body") for s in listed}
    if previous is None:
        triggers: list[dict[str, Any]] = [{"type": "FIRST_DELIVERY"}]
    else:
        triggers = [
            {"type": "SIGNAL_UPDATED", "signal": _ref(s)}
            for s in listed
            if "body" in s and previous.get(s["code"]) != s["body"]
        ]
    body = {
        "eventId": str(uuid.uuid4()),
        "eventType": "VEHICLE_STATE",
        "data": {**_identity(vehicle), "signals": listed},
        "triggers": triggers,
        "meta": _meta(webhook_id, wall, {"mode": mode, "signalCount": len(listed)}),
    }
    return body, bodies


def vehicle_error(
    webhook_id: str,
    vehicle: SimulatedVehicle,
    wall: float,
    mode: str,
    condition: str | None,
) -> dict[str, Any]:
    """A VEHICLE_ERROR event: the vehicle's ``condition`` (a VEHICLE_STATE code such as
    ``ASLEEP``) covering every signal, or else the signals it is not capable of."""
    listed = signals(vehicle, wall)
    if condition is not None:
        error = ApiError("VEHICLE_STATE", condition)
        affected = listed
    else:
        error = ApiError("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")
        affected = [s for s in listed if "body" not in s]
    entry = error.body("")
    for key in ("statusCode", "requestId"):
        # Webhook errors describe the vehicle, not an HTTP request.
        del entry[key]
    if condition is None:
        # Unlike the REST answer, the recorded webhook error carries the docs' user message.
        entry["suggestedUserMessage"] = "Your car is unable to perform this request."
    entry["state"] = "ERROR"
    entry["signals"] = [_ref(s) for s in affected]
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "VEHICLE_ERROR",
        "data": {**_identity(vehicle), "errors": [entry]},
        "meta": _meta(webhook_id, wall, {"mode": mode}),
    }
