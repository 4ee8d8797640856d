"""VehicleV3: a vehicle handle that speaks Smartcar API v3, named as the v2.0 one.

``client.vehicle(id, access_token=..., api_version="3")`` returns one. Its
v2-named reads (``odometer()``, ``battery()``, ``lock_status()``...) read
the matching v3 signals and return the same v2 models, in the handle's unit
system; concurrent reads on one vehicle, v2-named or ``get_signal``, go out
as one ``GET /signals`` (see `_v3`). Reads that v3 has no signal for
(permissions, diagnostics, service history, the make-specific endpoints)
and the v2 webhook and disconnect calls raise :class:`CompatibilityError`
at once, naming the call, before any I/O.

Commands go to ``POST /vehicles/{id}/commands/...`` and return a
`CommandResult` (an `Action`, so code written for v2 keeps working); charge
schedules go to ``/vehicles/{id}/charge-schedules/...`` and return a
`ScheduleResult` (see `_v3_schedules`); like every write they are never
retried and never coalesced.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, NoReturn

from . import _models as m
from ._batch import BatchResponse
from ._converter import invalid_response
from ._endpoints import normalize_path
from ._exceptions import CompatibilityError, error_from_response
from ._io import VehicleIO
from ._json_checks import Mismatch
from ._makes import Audi, Bmw, Cadillac, Chevrolet, Ford, Nissan, Tesla
from ._models import Meta
from ._names import UnitSystem
from ._options import CallOptions
from ._tokens import TokenSource
from ._transport import RawResponse
from ._v3 import ALL
from ._v3_compat import V2_READS
from ._v3_models import CommandResult, Signal, Signals, read_command
from ._v3_schedules import (
    ChargeWindow,
    ScheduleResult,
    WindowLike,
    check_schedule_id,
    daily_attributes,
    read_schedule,
    weekly_attributes,
    workweek_attributes,
)
from ._validate import (
    check_charge_limit,
    check_coordinates,
    check_method,
    check_request_path,
    encode_body,
)
from ._vehicle import Vehicle

__all__ = ["API_V3", "VehicleV3", "check_user_id"]

#: The ``api_version`` that selects Smartcar API v3.
API_V3: Final = "3"
_CODE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_user_id(user_id: object) -> str:
    """A Smartcar user id for ``sc-user-id``: one printable token, no whitespace."""
    if not isinstance(user_id, str):
        raise TypeError(f"user_id must be a str, got {type(user_id).__name__}")
    if not user_id or len(user_id) > 256 or not user_id.isprintable() or " " in user_id:
        raise ValueError("user_id must be 1 to 256 printable characters without spaces")
    return user_id


def _v2_only(name: str) -> NoReturn:
    raise CompatibilityError(
        f"{name} has no Smartcar API v3 equivalent; use a handle with api_version='2.0'",
        type="COMPATIBILITY",
    )


class VehicleV3(Vehicle):
    """A handle on one vehicle over Smartcar API v3 (``client.vehicle(..., api_version="3")``).

    Everything :class:`Vehicle` reads that v3 has signals for works the same,
    plus `get_signals` and `get_signal`. Added in 0.2.0.
    """

    __slots__ = ()

    def __init__(
        self,
        io: VehicleIO,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = "metric",
        flags: Mapping[str, str | bool | int | float] | None = None,
        options: CallOptions,
        user_id: str | None = None,
    ) -> None:
        super().__init__(
            io,
            vehicle_id,
            access_token=access_token,
            unit_system=unit_system,
            flags=flags,
            options=options,
            api_version=API_V3,
            user_id=None if user_id is None else check_user_id(user_id),
        )

    @property
    def api_version(self) -> str:
        return API_V3

    @property
    def user_id(self) -> str | None:
        """The ``sc-user-id`` every request of this handle carries, if any."""
        return self._key.user_id

    def __repr__(self) -> str:
        age = "" if self._io.max_age is None else f" max_age={self._io.max_age!r}"
        return f"<VehicleV3 {self.vehicle_id!r} unit_system={self.unit_system!r}{age}>"

    # ---------------------------------------------------------------- signals

    async def get_signals(self) -> Signals:
        """Every signal of the vehicle (``GET /signals``), failed ones included."""
        return await self._io.read(self._key, ALL, Signals)

    async def get_signal(self, code: str) -> Signal:
        """One signal by code (``"odometer-traveleddistance"``).

        Raises the signal's typed error when its status is ERROR, and
        :class:`ResourceNotFoundError` when the vehicle has no such signal.
        """
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, got {type(code).__name__}")
        if not _CODE.fullmatch(code):
            raise ValueError("code must be a signal code such as 'odometer-traveleddistance'")
        return await self._io.read(self._key, code, Signal)

    # ------------------------------------------------------- v2-only reads

    async def permissions(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> m.Permissions:
        _v2_only("permissions()")

    async def diagnostic_system_status(self) -> m.DiagnosticSystemStatus:
        _v2_only("diagnostic_system_status()")

    async def diagnostic_trouble_codes(self) -> m.DiagnosticTroubleCodes:
        _v2_only("diagnostic_trouble_codes()")

    async def service_history(
        self,
        start_date: dt.date | dt.datetime | str | None = None,
        end_date: dt.date | dt.datetime | str | None = None,
    ) -> m.ServiceHistory:
        _v2_only("service_history()")

    async def disconnect(self) -> m.Status:
        _v2_only("disconnect()")

    async def subscribe(self, webhook_id: str) -> m.Subscribe:
        _v2_only("subscribe()")

    async def unsubscribe(self, amt: str, webhook_id: str) -> m.Status:
        _v2_only("unsubscribe()")

    @property
    def tesla(self) -> Tesla:
        _v2_only("tesla")

    @property
    def nissan(self) -> Nissan:
        _v2_only("nissan")

    @property
    def ford(self) -> Ford:
        _v2_only("ford")

    @property
    def bmw(self) -> Bmw:
        _v2_only("bmw")

    @property
    def audi(self) -> Audi:
        _v2_only("audi")

    @property
    def chevrolet(self) -> Chevrolet:
        _v2_only("chevrolet")

    @property
    def cadillac(self) -> Cadillac:
        _v2_only("cadillac")

    async def batch(self, paths: Iterable[str]) -> BatchResponse:
        """As :meth:`Vehicle.batch`, for the v2 paths that have v3 signals (one ``/signals``)."""
        if isinstance(paths, str):
            raise TypeError("paths must be an iterable of paths, not a single str")
        wanted = [normalize_path(check_request_path(p)) for p in paths]
        for path in wanted:
            if path not in V2_READS:
                _v2_only(f"batch path {path!r}")
        return await super().batch(wanted)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> m.Response:
        """Any other v3 endpoint, relative to ``/v3/vehicles/{id}`` (sent on its own)."""
        verb = check_method(method)
        clean = normalize_path(check_request_path(path))
        body = encode_body(body)
        return await self._io.send(
            verb,
            self._key,
            "" if clean == "/" else clean,
            unit_system=None,
            params=params,
            json_body=body,
            write=verb != "GET",
            model=m.Response,
        )

    # --------------------------------------------------------------- commands

    async def lock(self) -> CommandResult:
        """``POST /commands/security/lock``. Never retried."""
        return await self._command("/commands/security/lock")

    async def unlock(self) -> CommandResult:
        """``POST /commands/security/unlock``. Never retried."""
        return await self._command("/commands/security/unlock")

    async def start_charge(self) -> CommandResult:
        """``POST /commands/charge/start``."""
        return await self._command("/commands/charge/start")

    async def stop_charge(self) -> CommandResult:
        """``POST /commands/charge/stop``."""
        return await self._command("/commands/charge/stop")

    async def open_charge_port(self) -> CommandResult:
        """``POST /commands/charge-port/open``."""
        return await self._command("/commands/charge-port/open")

    async def close_charge_port(self) -> CommandResult:
        """``POST /commands/charge-port/close``."""
        return await self._command("/commands/charge-port/close")

    async def set_charge_limit(self, limit: float) -> CommandResult:
        """Set the charge limit: a fraction 0.5..1, as in v2, sent as a whole percent (50..100)."""
        value = check_charge_limit(limit)
        percent = round(value * 100)
        if not math.isclose(value * 100, percent, abs_tol=1e-6):
            raise ValueError(f"limit must be a whole percent (a multiple of 0.01), not {limit!r}")
        return await self._command("/commands/charge/set-limit", {"percent": percent})

    async def send_destination(self, latitude: float, longitude: float) -> CommandResult:
        """``POST /commands/navigation/set-destination``."""
        lat, lon = check_coordinates(latitude, longitude)
        body = {"latitude": lat, "longitude": lon}
        return await self._command("/commands/navigation/set-destination", body)

    # -------------------------------------------------------- charge schedules

    async def set_daily_charge_schedule(
        self,
        start: dt.time | str,
        stop: dt.time | str,
        *,
        latitude: float,
        longitude: float,
    ) -> ScheduleResult:
        """``POST /charge-schedules/daily``: charge every day from ``start`` to ``stop``.

        Times are the vehicle's local time, a naive `datetime.time` in whole
        minutes or ``"HH:MM"`` (``stop`` before ``start`` runs overnight);
        the schedule applies at the charging location ``latitude``,
        ``longitude``. The body is the documented one. Tesla and Volvo
        support it; other makes answer :class:`CompatibilityError`. Returns
        the created ``schedule_id``. Never retried. Added in 0.2.0.
        """
        window = ChargeWindow(start, stop)
        lat, lon = check_coordinates(latitude, longitude)
        attributes = daily_attributes(window, lat, lon)
        return await self._schedule("POST", "/charge-schedules/daily", attributes)

    async def set_weekly_charge_schedule(
        self,
        days: Mapping[str | int, WindowLike],
        *,
        latitude: float,
        longitude: float,
    ) -> ScheduleResult:
        """``POST /charge-schedules/weekly``: one window per weekday named.

        ``days`` maps a weekday (``"monday"`` in any case, or 0 = Monday ..
        6 = Sunday) to a `ChargeWindow` or a ``(start, stop)`` pair. Tesla
        only. The wire shape ``"days": {"monday": {"startTime", "stopTime"}}``
        is an assumption: the spec names ``days`` keyed by weekday and no
        example was found. Never retried. Added in 0.2.0.
        """
        lat, lon = check_coordinates(latitude, longitude)
        attributes = weekly_attributes(days, lat, lon)
        return await self._schedule("POST", "/charge-schedules/weekly", attributes)

    async def set_workweek_charge_schedule(
        self,
        *,
        weekdays: WindowLike | None = None,
        weekends: WindowLike | None = None,
        latitude: float,
        longitude: float,
    ) -> ScheduleResult:
        """``POST /charge-schedules/workweek``: one window Monday..Friday, one at weekends.

        Give either or both. Tesla only. The wire shape (``"weekdays"`` and
        ``"weekends"`` each ``{"startTime", "stopTime"}``) is an assumption
        from the field names the spec gives. Never retried. Added in 0.2.0.
        """
        lat, lon = check_coordinates(latitude, longitude)
        attributes = workweek_attributes(weekdays, weekends, lat, lon)
        return await self._schedule("POST", "/charge-schedules/workweek", attributes)

    async def delete_charge_schedule(self, schedule_id: str) -> ScheduleResult:
        """``DELETE /charge-schedules/{schedule_id}``; unknown: :class:`ResourceNotFoundError`.

        The answer's shape is undocumented: an execution document, an empty
        body and a 204 all read as success. Never retried. Added in 0.2.0.
        """
        sid = check_schedule_id(schedule_id)
        return await self._schedule("DELETE", f"/charge-schedules/{sid}", None, schedule_id=sid)

    async def _schedule(
        self,
        method: str,
        path: str,
        attributes: dict[str, Any] | None,
        *,
        schedule_id: str | None = None,
    ) -> ScheduleResult:
        resp = await self._send_write(method, path, attributes)
        meta = Meta.from_headers(resp.headers, resp.request_id)
        action = "delete" if method == "DELETE" else "create"
        try:
            return read_schedule(
                resp.status, resp.body, meta, action=action, schedule_id=schedule_id
            )
        except Mismatch as exc:
            raise invalid_response(ScheduleResult, exc, resp.request_id) from None

    async def _send_write(
        self, method: str, path: str, attributes: dict[str, Any] | None
    ) -> RawResponse:
        body = {"data": {"attributes": attributes}} if attributes is not None else None
        resp = await self._io.exchange(method, self._key, path, json_body=body, write=True)
        answer = resp.body
        if isinstance(answer, dict) and isinstance(answer.get("errors"), list):
            # A held (202) command that failed sends its errors in the 2xx body.
            raise error_from_response(resp.status, answer, resp.headers, request_id=resp.request_id)
        return resp

    async def _command(self, path: str, attributes: dict[str, Any] | None = None) -> CommandResult:
        resp = await self._send_write("POST", path, attributes)
        meta = Meta.from_headers(resp.headers, resp.request_id)
        try:
            return read_command(resp.status, resp.body, meta)
        except Mismatch as exc:
            raise invalid_response(CommandResult, exc, resp.request_id) from None
