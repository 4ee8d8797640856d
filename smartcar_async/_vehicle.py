"""Vehicle: one async method per Smartcar endpoint, named as in the official SDK."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Self, TypeVar, cast

from . import _endpoints as ep
from . import _models as m
from ._batch import BatchResponse
from ._coalescer import QueueKey
from ._endpoints import Read, model_for_path
from ._io import VehicleIO
from ._makes import Audi, Bmw, Cadillac, Chevrolet, Ford, Nissan, Tesla
from ._names import UnitSystem
from ._options import NOT_GIVEN, CallOptions, NotGiven
from ._tokens import TokenSource, as_token_source
from ._validate import (
    check_bound,
    check_charge_limit,
    check_coordinates,
    check_int,
    check_method,
    check_request_path,
    check_token,
    check_unit_system,
    check_vehicle_id,
    encode_body,
    format_date,
    format_flags,
    format_segment,
)

__all__ = ["Vehicle"]

T = TypeVar("T")


class Vehicle:
    """A handle on one connected vehicle, bound to one access token.

    Creating one does no I/O and starts no task. Reads (``odometer()``,
    ``location()``, ...) issued concurrently on the same vehicle, token, unit
    system and flags are coalesced into one batch request; writes (``lock()``,
    ``start_charge()``, ...) are always sent on their own.

    Get one from :meth:`Client.vehicle`. Added in 0.1.0.
    """

    __slots__ = ("_io", "_key")

    def __init__(
        self,
        io: VehicleIO,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = "metric",
        flags: Mapping[str, str | bool | int | float] | None = None,
        options: CallOptions,
        api_version: str = ep.API_VERSION,
        user_id: str | None = None,
    ) -> None:
        self._io = io
        auth: str | TokenSource | None
        if isinstance(access_token, str):
            auth = check_token(access_token)
        else:
            auth = as_token_source(access_token)
            if auth is None:
                raise TypeError(
                    "access_token must be a str, a TokenSource or an async callable returning"
                    f" a str, got {type(access_token).__name__}"
                )
        self._key = QueueKey(
            check_vehicle_id(vehicle_id),
            auth,
            check_unit_system(unit_system),
            format_flags(flags),
            options,
            api_version=api_version,
            user_id=user_id,
        )

    @classmethod
    def _from_key(cls, io: VehicleIO, key: QueueKey) -> Self:
        twin = cls.__new__(cls)
        twin._io = io
        twin._key = key
        return twin

    @property
    def vehicle_id(self) -> str:
        return self._key.vehicle_id

    @property
    def unit_system(self) -> UnitSystem:
        return cast("UnitSystem", self._key.unit_system)  # checked when the handle was made

    @property
    def options(self) -> CallOptions:
        """The timeout, retries and deadline this handle's calls use."""
        return self._key.options

    @property
    def max_age(self) -> float | None:
        """Seconds an earlier answer may be reused for instead of a request (None: never)."""
        return self._io.max_age

    def with_options(
        self,
        *,
        timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        max_age: float | NotGiven | None = NOT_GIVEN,
    ) -> Self:
        """A copy of this handle with other per-call options (the client's are the default).

        ``car.with_options(deadline=30, max_retries=0).odometer()``. Reads of
        handles with different options never share a batch, so one batch
        always has one retry policy. ``max_age`` (seconds, or None) is not
        one of them: it only decides whether a stored answer is returned
        instead of queueing the read (see :meth:`Client.vehicle`).
        """
        io = self._io
        if not isinstance(max_age, NotGiven):
            io = io.with_max_age(check_bound("max_age", max_age))
        if timeout is NOT_GIVEN and max_retries is NOT_GIVEN and deadline is NOT_GIVEN:
            return type(self)._from_key(io, self._key)
        options = self._key.options.replace(
            timeout=timeout, max_retries=max_retries, deadline=deadline
        )
        return type(self)._from_key(io, self._key.with_options(options))

    def __repr__(self) -> str:
        age = "" if self._io.max_age is None else f" max_age={self._io.max_age!r}"
        return f"<Vehicle {self.vehicle_id!r} unit_system={self.unit_system!r}{age}>"

    # ------------------------------------------------------- per-make groups

    @property
    def tesla(self) -> Tesla:
        """Tesla-only endpoints: ``await car.tesla.compass()``."""
        return Tesla(self._io, self._key)

    @property
    def nissan(self) -> Nissan:
        """Nissan-only endpoints (charge schedules)."""
        return Nissan(self._io, self._key)

    @property
    def ford(self) -> Ford:
        """Ford and Lincoln endpoints (charge schedule by location)."""
        return Ford(self._io, self._key)

    @property
    def bmw(self) -> Bmw:
        """BMW and MINI endpoints (charge records)."""
        return Bmw(self._io, self._key)

    @property
    def audi(self) -> Audi:
        """Audi endpoints (charge)."""
        return Audi(self._io, self._key)

    @property
    def chevrolet(self) -> Chevrolet:
        """Chevrolet endpoints (charge completion, voltmeter)."""
        return Chevrolet(self._io, self._key)

    @property
    def cadillac(self) -> Cadillac:
        """Cadillac endpoints (charge completion, voltmeter)."""
        return Cadillac(self._io, self._key)

    # ---------------------------------------------------------------- reads

    async def attributes(self) -> m.Attributes:
        """Make, model and year (``GET /vehicles/{id}``)."""
        return await self._fetch(ep.ATTRIBUTES)

    async def vin(self) -> m.Vin:
        """The vehicle identification number."""
        return await self._fetch(ep.VIN)

    async def odometer(self) -> m.Odometer:
        """Total distance travelled (km, or miles when imperial)."""
        return await self._fetch(ep.ODOMETER)

    async def location(self) -> m.Location:
        """Last known latitude and longitude, in degrees."""
        return await self._fetch(ep.LOCATION)

    async def fuel(self) -> m.Fuel:
        """Fuel tank level: fraction remaining, amount (L or gal) and range (km or mi)."""
        return await self._fetch(ep.FUEL)

    async def battery(self) -> m.Battery:
        """EV battery level (fraction 0..1) and range (km or mi)."""
        return await self._fetch(ep.BATTERY)

    async def battery_capacity(self) -> m.BatteryCapacity:
        """Usable battery capacity in kWh."""
        return await self._fetch(ep.BATTERY_CAPACITY)

    async def nominal_capacity(self) -> m.NominalCapacity:
        """Nominal battery capacity and the capacities the user may choose from."""
        return await self._fetch(ep.NOMINAL_CAPACITY)

    async def charge(self) -> m.Charge:
        """Whether the vehicle is plugged in and its charging state."""
        return await self._fetch(ep.CHARGE)

    async def get_charge_limit(self) -> m.ChargeLimit:
        """The charge limit, a fraction between 0.5 and 1."""
        return await self._fetch(ep.CHARGE_LIMIT)

    async def tire_pressure(self) -> m.TirePressure:
        """Tire pressures (kPa, or psi when imperial)."""
        return await self._fetch(ep.TIRE_PRESSURE)

    async def engine_oil(self) -> m.EngineOil:
        """Remaining engine oil life, a fraction 0..1."""
        return await self._fetch(ep.ENGINE_OIL)

    async def lock_status(self) -> m.LockStatus:
        """Lock state and open/closed status of doors, windows, sunroof, storage, charging port."""
        return await self._fetch(ep.LOCK_STATUS)

    async def diagnostic_system_status(self) -> m.DiagnosticSystemStatus:
        """Health of the vehicle's systems."""
        return await self._fetch(ep.SYSTEM_STATUS)

    async def diagnostic_trouble_codes(self) -> m.DiagnosticTroubleCodes:
        """Active diagnostic trouble codes."""
        return await self._fetch(ep.TROUBLE_CODES)

    async def permissions(
        self, *, limit: int | None = None, offset: int | None = None
    ) -> m.Permissions:
        """The permissions this token grants for the vehicle.

        Without paging the read coalesces like any other; with ``limit`` or
        ``offset`` it is sent on its own, since a batch item carries no query.
        """
        if limit is None and offset is None:
            return await self._fetch(ep.PERMISSIONS)
        params = {}
        if limit is not None:
            params["limit"] = str(check_int("limit", limit, minimum=1))
        if offset is not None:
            params["offset"] = str(check_int("offset", offset))
        return await self._get(ep.PERMISSIONS, params)

    async def service_history(
        self,
        start_date: dt.date | dt.datetime | str | None = None,
        end_date: dt.date | dt.datetime | str | None = None,
    ) -> m.ServiceHistory:
        """Service records, by default of the last year.

        Always sent on its own: Smartcar does not document service history as
        batchable, and one refused path would fail a whole batch.
        """
        params = {}
        start = format_date("start_date", start_date)
        end = format_date("end_date", end_date)
        if start is not None:
            params["startDate"] = start
        if end is not None:
            params["endDate"] = end
        return await self._get(ep.SERVICE_HISTORY, params)

    async def batch(self, paths: Iterable[str]) -> BatchResponse:
        """Read several paths in one go; per-path failures do not raise here.

        The paths join this vehicle's queue like any other reads, so they go
        out as one batch (deduplicated with concurrent reads), and the result
        maps each normalised path to its model (``Response`` for unknown
        paths) or raises that path's error when indexed.
        """
        if isinstance(paths, str):
            raise TypeError("paths must be an iterable of paths, not a single str")
        self._io.check_usable()
        wanted = list(dict.fromkeys([check_request_path(p) for p in paths]))  # normalised
        if not wanted:
            raise ValueError("batch() needs at least one path")
        results = await self._io.read_many(self._key, [(p, model_for_path(p)) for p in wanted])
        return BatchResponse(dict(zip(wanted, results, strict=True)))

    def _fetch(self, read: Read[T]) -> Coroutine[Any, Any, T]:
        """A typed read from the endpoint table: its path and model stated once, there.

        Returns the coalesced read for the public method to await (one
        coroutine frame fewer per read than awaiting it here).
        """
        return self._io.read(self._key, read.path, read.model)

    # --------------------------------------------------------------- writes

    async def lock(self) -> m.Action:
        """Lock the vehicle. Never batched, never retried."""
        return await self._write("POST", "/security", {"action": "LOCK"}, m.Action)

    async def unlock(self) -> m.Action:
        """Unlock the vehicle. Never batched, never retried."""
        return await self._write("POST", "/security", {"action": "UNLOCK"}, m.Action)

    async def start_charge(self) -> m.Action:
        """Start charging."""
        return await self._write("POST", "/charge", {"action": "START"}, m.Action)

    async def stop_charge(self) -> m.Action:
        """Stop charging."""
        return await self._write("POST", "/charge", {"action": "STOP"}, m.Action)

    async def set_charge_limit(self, limit: float) -> m.Action:
        """Set the charge limit, a fraction between 0.5 and 1."""
        value = check_charge_limit(limit)
        return await self._write("POST", "/charge/limit", {"limit": value}, m.Action)

    async def send_destination(self, latitude: float, longitude: float) -> m.Action:
        """Send a destination to the vehicle's navigation system."""
        lat, lon = check_coordinates(latitude, longitude)
        body = {"latitude": lat, "longitude": lon}
        return await self._write("POST", "/navigation/destination", body, m.Action)

    async def disconnect(self) -> m.Status:
        """Revoke this application's access to the vehicle."""
        return await self._write("DELETE", "/application", None, m.Status)

    async def subscribe(self, webhook_id: str) -> m.Subscribe:
        """Subscribe the vehicle to a webhook."""
        path = "/webhooks/" + format_segment("webhook_id", webhook_id)
        return await self._write("POST", path, None, m.Subscribe)

    async def unsubscribe(self, amt: str, webhook_id: str) -> m.Status:
        """Unsubscribe from a webhook; authorised by the application management token (AMT)."""
        token = check_token(amt, "amt")
        path = "/webhooks/" + format_segment("webhook_id", webhook_id)
        return await self._io.send(
            "DELETE", self._key, path, unit_system=None, write=True, auth=token, model=m.Status
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> m.Response:
        """Any other vehicle endpoint, e.g. ``request("GET", "tesla/speedometer")``.

        ``path`` is relative to ``/vehicles/{id}``. A plain GET (no body, no
        params) coalesces like the typed reads; anything else is sent on its own.
        """
        verb = check_method(method)
        clean = check_request_path(path)
        body = encode_body(body)
        if verb == "GET" and body is None and not params:
            return await self._io.read(self._key, clean, m.Response)
        return await self._io.send(
            verb,
            self._key,
            clean,
            unit_system=self.unit_system,
            params=params,
            json_body=body,
            write=verb != "GET",
            model=m.Response,
        )

    # ------------------------------------------------------------- plumbing

    async def _get(self, read: Read[T], params: Mapping[str, str]) -> T:
        """A read with a query (paging, date filters): sent on its own, never batched."""
        return await self._io.send(
            "GET",
            self._key,
            read.path,
            unit_system=self.unit_system,
            params=params,
            write=False,
            model=read.model,
        )

    async def _write(self, method: str, path: str, body: Any, model: type[T]) -> T:
        return await self._io.send(
            method, self._key, path, unit_system=None, json_body=body, write=True, model=model
        )
