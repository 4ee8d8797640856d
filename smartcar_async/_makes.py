"""Make-specific endpoints, grouped per make: ``car.tesla.compass()``, ``car.nissan...``.

Reads coalesce like any other read (they are plain GET paths, batchable);
writes and filtered reads are sent on their own. Smartcar wants the make in
lower case in the path, and answers PERMISSION for a make the vehicle is not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _models as m
from . import _models_makes as mm
from ._validate import (
    check_bool,
    check_charge_limit,
    check_coordinates,
    check_hhmm,
    format_date,
)

if TYPE_CHECKING:
    from ._coalescer import QueueKey
    from ._io import VehicleIO

__all__ = ["Audi", "Bmw", "Cadillac", "Chevrolet", "Ford", "Nissan", "Tesla"]

T = TypeVar("T")


class _Make:
    """The endpoints of one make, sent through the vehicle's `VehicleIO` with its key."""

    __slots__ = ("_io", "_key")
    _prefix = ""

    def __init__(self, io: VehicleIO, key: QueueKey) -> None:
        self._io = io
        self._key = key

    def __repr__(self) -> str:
        key = self._key
        vehicle = f"<Vehicle {key.vehicle_id!r} unit_system={key.unit_system!r}>"
        return f"<{type(self).__name__} endpoints of {vehicle}>"

    def _read(self, leaf: str, model: type[T]) -> Coroutine[Any, Any, T]:
        return self._io.read(self._key, f"/{self._prefix}{leaf}", model)

    async def _send(
        self,
        method: str,
        leaf: str,
        model: type[T],
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        write: bool = True,
    ) -> T:
        return await self._io.send(
            method,
            self._key,
            f"/{self._prefix}{leaf}",
            unit_system=None if write else self._key.unit_system,
            params=params,
            json_body=body,
            write=write,
            model=model,
        )


class _ChargeMeters(_Make):
    """The charge completion and voltmeter reads that GM makes share with Tesla."""

    __slots__ = ()

    async def charge_completion(self) -> mm.ChargeCompletion:
        """When the current charge is expected to complete."""
        return await self._read("/charge/completion", mm.ChargeCompletion)

    async def charge_voltmeter(self) -> mm.ChargeVoltmeter:
        """The charger's voltage."""
        return await self._read("/charge/voltmeter", mm.ChargeVoltmeter)


class Tesla(_ChargeMeters):
    """Tesla endpoints (``car.tesla``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "tesla"

    async def charge_ammeter(self) -> mm.ChargeAmmeter:
        """The charging current in amperes."""
        return await self._read("/charge/ammeter", mm.ChargeAmmeter)

    async def set_charge_ammeter(self, amperage: float) -> m.Action:
        """Set the charging current in amperes."""
        if isinstance(amperage, bool) or not isinstance(amperage, int | float) or amperage <= 0:
            raise ValueError(f"amperage must be a positive number, got {amperage!r}")
        return await self._send("POST", "/charge/ammeter", m.Action, body={"amperage": amperage})

    async def charge_wattmeter(self) -> mm.ChargeWattmeter:
        """The charging power in kilowatts."""
        return await self._read("/charge/wattmeter", mm.ChargeWattmeter)

    async def charge_schedule(self) -> mm.TeslaChargeSchedule:
        """The scheduled charging start and departure times."""
        return await self._read("/charge/schedule", mm.TeslaChargeSchedule)

    async def set_charge_schedule(
        self,
        type: Literal["START_TIME", "DEPARTURE_TIME"],
        *,
        enabled: bool,
        time: str | None = None,
    ) -> mm.TeslaChargeSchedule:
        """Enable or disable scheduled charging; ``time`` is ``"HH:mm"``. Returns the schedule."""
        if type not in ("START_TIME", "DEPARTURE_TIME"):
            raise ValueError("type must be 'START_TIME' or 'DEPARTURE_TIME'")
        body: dict[str, Any] = {"type": type, "enabled": check_bool("enabled", enabled)}
        if time is not None:
            body["time"] = check_hhmm("time", time)
        return await self._send("POST", "/charge/schedule", mm.TeslaChargeSchedule, body=body)

    async def compass(self) -> mm.Compass:
        """Heading in degrees and compass direction."""
        return await self._read("/compass", mm.Compass)

    async def speedometer(self) -> mm.Speedometer:
        """Current speed (km/h, or mph when imperial)."""
        return await self._read("/speedometer", mm.Speedometer)

    async def exterior_thermometer(self) -> mm.Thermometer:
        """Outside temperature (Celsius, or Fahrenheit when imperial)."""
        return await self._read("/thermometer/exterior", mm.Thermometer)

    async def interior_thermometer(self) -> mm.Thermometer:
        """Cabin temperature (Celsius, or Fahrenheit when imperial)."""
        return await self._read("/thermometer/interior", mm.Thermometer)

    async def cabin_climate(self) -> mm.CabinClimate:
        """Climate control status and target temperature."""
        return await self._read("/climate/cabin", mm.CabinClimate)

    async def battery(self) -> mm.TeslaBattery:
        """Extended battery data (usable level, estimated and ideal range, heater)."""
        return await self._read("/battery", mm.TeslaBattery)

    async def attributes(self) -> mm.TeslaAttributes:
        """Extended vehicle information (firmware, trim, wheels, sentry mode...)."""
        return await self._read("/attributes", mm.TeslaAttributes)


class Nissan(_Make):
    """Nissan endpoints (``car.nissan``, MyNISSAN EVs). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "nissan"

    async def charge_schedule(self) -> mm.NissanChargeSchedule:
        """The charge schedules (up to three)."""
        return await self._read("/charge/schedule", mm.NissanChargeSchedule)

    async def set_charge_schedule(
        self, schedules: Sequence[Mapping[str, Any]]
    ) -> mm.NissanChargeSchedule:
        """Replace the charge schedules: ``[{"start": "HH:mm", "end": "HH:mm", "days": [...]}]``."""
        if isinstance(schedules, str | bytes) or not 0 < len(schedules) <= 3:
            raise ValueError("schedules must hold one to three schedules")
        clean = []
        for entry in schedules:
            days = entry.get("days", [])
            if isinstance(days, str) or not all(isinstance(d, str) for d in days):
                raise TypeError("days must be a list of day names")
            clean.append(
                {
                    "start": check_hhmm("start", entry.get("start")),
                    "end": check_hhmm("end", entry.get("end")),
                    "days": [d.upper() for d in days],
                }
            )
        body = {"chargeSchedules": clean}
        return await self._send("PUT", "/charge/schedule", mm.NissanChargeSchedule, body=body)


class Ford(_Make):
    """Ford and Lincoln endpoints (``car.ford``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "ford"

    async def charge_schedule_by_location(self) -> mm.FordChargeScheduleByLocation:
        """Charge schedules and limits per saved charging location."""
        return await self._read("/charge/schedule_by_location", mm.FordChargeScheduleByLocation)

    async def set_charge_schedule_by_location(
        self,
        latitude: float,
        longitude: float,
        *,
        charge_on_plugin: bool | None = None,
        charge_limit: float | None = None,
        weekday: Sequence[tuple[str, str]] = (),
        weekend: Sequence[tuple[str, str]] = (),
    ) -> m.Action:
        """Set the schedule of the charging location at these coordinates.

        ``weekday`` and ``weekend`` are ``(start, end)`` pairs of ``"HH:mm"``.
        """
        lat, lon = check_coordinates(latitude, longitude)
        body: dict[str, Any] = {
            "chargingSchedules": {
                "weekday": [_window(w) for w in weekday],
                "weekend": [_window(w) for w in weekend],
            }
        }
        if charge_on_plugin is not None:
            body["chargeOnPlugin"] = bool(charge_on_plugin)
        if charge_limit is not None:
            body["chargeLimit"] = check_charge_limit(charge_limit)
        params = {"latitude": repr(lat), "longitude": repr(lon)}
        return await self._send(
            "PUT", "/charge/schedule_by_location", m.Action, body=body, params=params
        )


class Bmw(_Make):
    """BMW and MINI endpoints (``car.bmw``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "bmw"

    async def charge_records(
        self,
        start_date: dt.date | str | None = None,
        end_date: dt.date | str | None = None,
    ) -> mm.BmwChargeRecords:
        """Past charging sessions; filtered reads are sent on their own."""
        params = {}
        start = format_date("start_date", start_date)
        end = format_date("end_date", end_date)
        if start is not None:
            params["startDate"] = start[:10]
        if end is not None:
            params["endDate"] = end[:10]
        if not params:
            return await self._read("/charge/records", mm.BmwChargeRecords)
        return await self._send(
            "GET", "/charge/records", mm.BmwChargeRecords, params=params, write=False
        )


class Audi(_Make):
    """Audi endpoints (``car.audi``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "audi"

    async def charge(self) -> m.Response:
        """All charging data; the body's shape is undocumented, so it comes raw."""
        return await self._read("/charge", m.Response)


class Chevrolet(_ChargeMeters):
    """Chevrolet endpoints (``car.chevrolet``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "chevrolet"


class Cadillac(_ChargeMeters):
    """Cadillac endpoints (``car.cadillac``). Added in 0.1.0."""

    __slots__ = ()
    _prefix = "cadillac"


def _window(pair: tuple[str, str]) -> dict[str, str]:
    start, end = pair
    return {"start": check_hhmm("start", start), "end": check_hhmm("end", end)}
