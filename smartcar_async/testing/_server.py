"""The aiohttp application: one catch-all route, a dispatcher, and a safety-net middleware.

A single route and a hand-written dispatcher keep the hot path short (no
router table walk, no per-route middleware chain) and let direct requests and
batch items share every check. The middleware turns anything that escapes,
aiohttp's own HTTP errors included, into a v2 JSON error, so every response
carries ``Content-Type: application/json`` and ``SC-Request-Id``.

Order of checks for a vehicle request (each failure answers at that point):
route (404) -> scripted/random HTTP faults -> Bearer auth (401) ->
SC-Unit-System (400) -> [batch body (400)] -> application bucket (429) ->
vehicle access (403 unknown or not granted, 401 disconnected) -> make (403) ->
scope (403) -> capability (501) -> vehicle window (429) -> asleep/unreachable
(409) -> [injected item errors] -> the endpoint (400 validation, 409 state).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import attrs
from aiohttp import web

from .. import _json
from . import _compatibility, _management
from ._auth import Credentials, Grant, OAuthError, bearer_token
from ._batch import parse_batch
from ._billing import Billing
from ._clock import Clock, iso
from ._endpoint import Ctx, Endpoint, query_int
from ._errors import ApiError, authentication, not_capable, not_found, permission, vehicle_state
from ._faults import FaultEngine, Faults
from ._fleet import Fleet, SimulatedVehicle
from ._iam import AppTokens
from ._ratelimit import RateLimiter, RateLimits
from ._recording import CaseInsensitiveDict, ErrorTally, RecordedRequest, RequestLog
from ._routes import BATCH, resolve, resolve_miscased_make
from ._units import UnitSystem, parse_unit_system
from ._v3_errors import errors_body
from ._v3_routes import Deferred, V3Api

_VERSION = re.compile(r"v\d+\.\d+")
_TOP_LEVEL = frozenset({"vehicles", "user", "management", "compatibility"})
_REASONS = {430: "Billing Limit"}
_KINDS = {
    "/vehicles": "vehicles",
    "/user": "user",
    "/management/connections": "connections",
    "/compatibility": "compatibility",
    "/compatibility/matrix": "matrix",
}
_INVALID_JSON = object()
# Requests the random HTTP faults apply to (never OAuth, IAM, Management or Compatibility).
_VEHICLE_API = frozenset({"vehicle", "vehicles", "user", "v3"})
# Vehicle endpoints Smartcar does not bill (see _billing).
_UNBILLED = frozenset({"/permissions", "/application", "/webhooks"})

Result = tuple[int, Any, Mapping[str, str] | None]


@attrs.define(eq=False)
class State:
    """Everything the server reads; the `Emulator` owns it and exposes parts of it."""

    clock: Clock
    fleet: Fleet
    credentials: Credentials
    limiter: RateLimiter
    engine: FaultEngine
    log: RequestLog
    faults: Faults
    rate_limits: RateLimits
    latency: float | tuple[float, float]
    app_tokens: AppTokens
    billing: Billing = attrs.field(factory=Billing)
    errors: ErrorTally = attrs.field(factory=ErrorTally)
    signals_page_size: int | None = None
    """v3: how many signals one ``/signals`` page holds (None: all of them)."""
    command_hold: float | None = None
    """v3: seconds a command is held behind a 202 (None: commands answer 200)."""


def _dumps(payload: Any) -> bytes:
    return _json.dumps(payload)


def _response(
    status: int, payload: bytes, request_id: str, extra: Mapping[str, str] | None = None
) -> web.Response:
    headers = {"Content-Type": "application/json", "SC-Request-Id": request_id}
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=payload, headers=headers, reason=_REASONS.get(status))


def _error_result(error: ApiError, request_id: str, v3: bool = False) -> Result:
    headers = None if error.retry_after is None else {"Retry-After": str(error.retry_after)}
    body = errors_body(error) if v3 else error.body(request_id)
    return error.http_status, body, headers


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return _json.loads(raw)
    except ValueError:
        return _INVALID_JSON


def _classify(path: str) -> tuple[str, str | None, str]:
    """(kind, vehicle id, key). ``key`` is the sub-path for vehicle calls, else the path."""
    parts = path.split("/")
    if len(parts) > 2 and parts[-1] == "":
        parts.pop()
    first = parts[1] if len(parts) > 1 else ""
    if first == "oauth" and parts[2:] == ["token"]:
        return "oauth", None, "/oauth/token"
    if first == "oauth2" and parts[2:] == ["token"]:
        return "iam", None, "/oauth2/token"
    rest = parts[2:]
    if first == "v3":
        # Keys of v3 calls start with /v3 so that injections tell them from v2 ones.
        if len(rest) >= 2 and rest[0] == "vehicles" and rest[1]:
            sub = "/".join(rest[2:])
            return "v3", rest[1], "/v3/" + sub if sub else "/v3"
        return "v3", None, "/v3/" + "/".join(rest)
    key = "/" + "/".join(rest)
    if not _VERSION.fullmatch(first):
        if first.startswith("v") and rest and rest[0] in _TOP_LEVEL:
            return "version", None, key
        return "unknown", None, path
    if len(rest) >= 2 and rest[0] == "vehicles" and rest[1]:
        sub = "/" + "/".join(rest[2:])
        return "vehicle", rest[1], sub
    return _KINDS.get(key, "unknown"), None, key


class Server:
    """Serves one `State`. Create with the state, then hand `app()` to a runner."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._pauses: set[asyncio.Future[None]] = set()
        self._closing = False
        self._v3 = V3Api(state)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_safety_net])
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def release_all(self) -> None:
        """End every latency and slow-response hold now (called on shutdown)."""
        self._closing = True
        for pause in list(self._pauses):
            if not pause.done():
                pause.set_result(None)

    async def _pause(self, seconds: float) -> None:
        if seconds <= 0 or self._closing:
            return
        loop = asyncio.get_running_loop()
        pause: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _release, pause)
        self._pauses.add(pause)
        try:
            await pause
        finally:
            timer.cancel()
            self._pauses.discard(pause)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        request_id = str(uuid.uuid4())
        raw = await request.read() if request.body_exists else b""
        method = request.method
        path = request.path
        kind, vehicle_id, key = _classify(path)
        body = _parse_body(kind, raw, request.content_type)
        if state.log.enabled:
            state.log.append(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=dict(request.query),
                    headers=CaseInsensitiveDict(request.headers.items()),
                    body=None if body is _INVALID_JSON else body,
                    raw_body=raw,
                )
            )
        faults = state.faults
        if state.latency or faults.latency:
            await self._pause(state.engine.latency(state.latency, faults.latency, faults=faults))
        fault = state.engine.http_fault(faults, key, vehicle_id, kind in _VEHICLE_API)
        malformed = False
        result: Result | None = None
        if fault is not None:
            if fault.drop:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=204)
            if fault.slow:
                await self._pause(fault.slow)
            if fault.error is not None:
                result = _error_result(fault.error, request_id, kind == "v3")
            malformed = fault.malformed
        if result is None:
            result = self._run(kind, vehicle_id, key, request, body, request_id)
        status, payload, headers = result
        if status >= 400:
            state.errors.count(status, payload)
        if isinstance(payload, Deferred):
            return await self._hold(request, payload, request_id)
        data = _dumps(payload)
        if malformed:
            status, data = 200, data[: max(1, len(data) // 2)]
        return _response(status, data, request_id, headers)

    async def _hold(
        self, request: web.Request, deferred: Deferred, request_id: str
    ) -> web.StreamResponse:
        """A 202 sent at once, held open, then finished with the command's final body."""
        response = web.StreamResponse(
            status=202, headers={"Content-Type": "application/json", "SC-Request-Id": request_id}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        await self._pause(deferred.seconds)
        await response.write(_dumps(deferred.finish()))
        await response.write_eof()
        return response

    # -- dispatch ------------------------------------------------------------

    def _run(
        self,
        kind: str,
        vehicle_id: str | None,
        key: str,
        request: web.Request,
        body: Any,
        request_id: str,
    ) -> Result:
        try:
            if kind == "v3":
                return self._v3.dispatch(
                    vehicle_id, key, request, None if body is _INVALID_JSON else body
                )
            return self._dispatch(kind, vehicle_id, key, request, body, request_id)
        except ApiError as error:
            return _error_result(error, request_id, kind == "v3")
        except OAuthError as error:
            return (
                error.status,
                {"error": error.error, "error_description": error.description},
                None,
            )

    def _dispatch(
        self,
        kind: str,
        vehicle_id: str | None,
        key: str,
        request: web.Request,
        body: Any,
        request_id: str,
    ) -> Result:
        method = request.method
        if kind == "vehicle":
            assert vehicle_id is not None
            return self._vehicle(request, vehicle_id, key, body, request_id)
        if kind == "vehicles" and method == "GET":
            return self._vehicles(request)
        if kind == "user" and method == "GET":
            return self._user(request)
        if kind == "iam" and method == "POST":
            return (
                200,
                self.state.app_tokens.endpoint(request.headers.get("Authorization"), body),
                None,
            )
        if kind == "oauth" and method == "POST":
            form = body if isinstance(body, dict) else {}
            token = self.state.credentials.token_endpoint(
                request.headers.get("Authorization"), form
            )
            return 200, token, None
        if kind == "connections" and method in ("GET", "DELETE"):
            _management.check_management_basic(
                self.state.credentials, request.headers.get("Authorization")
            )
            if method == "GET":
                return 200, _management.list_connections(self.state.fleet, request.query), None
            return 200, _management.delete_connections(self.state.fleet, request.query), None
        if kind in ("compatibility", "matrix") and method == "GET":
            self.state.credentials.check_client(request.headers.get("Authorization"))
            if kind == "matrix":
                return 200, _compatibility.matrix(request.query), None
            return 200, _compatibility.by_vin(self.state.fleet, request.query), None
        if kind == "version":
            raise ApiError("RESOURCE_NOT_FOUND", "VERSION")
        raise not_found()

    def _authenticate(self, request: web.Request) -> tuple[Grant, UnitSystem]:
        grant = self.state.credentials.authenticate(request.headers.get("Authorization"))
        return grant, parse_unit_system(request.headers.get("SC-Unit-System"))

    def _charge_app(self) -> None:
        # One token per HTTP request, a batch included (see _ratelimit).
        limited = self.state.limiter.take_app(self.state.rate_limits, 1)
        if limited is not None:
            raise ApiError("RATE_LIMIT", "SMARTCAR_API", retry_after=limited.retry_after)

    def _default_user(self, grant: Grant) -> str:
        if grant.user_id is not None:
            return grant.user_id
        fleet = self.state.fleet
        if grant.vehicle_ids:
            for vehicle in fleet.vehicles:
                if vehicle.id in grant.vehicle_ids:
                    return vehicle.user_id
        return fleet.users[0]

    def _vehicles(self, request: web.Request) -> Result:
        grant, _ = self._authenticate(request)
        limit = query_int(request.query, "limit", 10, 1, 50)
        offset = query_int(request.query, "offset", 0, 0)
        self._charge_app()
        ids = [v.id for v in self.state.fleet.vehicles if v.connected and grant.has_vehicle(v.id)]
        body = {
            "paging": {"count": len(ids), "offset": offset},
            "vehicles": ids[offset : offset + limit],
        }
        return 200, body, None

    def _user(self, request: web.Request) -> Result:
        grant, _ = self._authenticate(request)
        self._charge_app()
        if not grant.has_scope("read_user_profile"):
            raise permission()
        return 200, {"id": self._default_user(grant)}, None

    def _vehicle_for(self, grant: Grant, vehicle_id: str) -> SimulatedVehicle:
        vehicle = self.state.fleet.get(vehicle_id)
        if vehicle is None or not grant.has_vehicle(vehicle_id):
            raise permission()
        if not vehicle.connected:
            raise authentication()
        return vehicle

    def _vehicle(
        self, request: web.Request, vehicle_id: str, sub: str, body: Any, request_id: str
    ) -> Result:
        method = request.method
        endpoint, param = resolve(method, sub)
        miscased = False
        if endpoint is None:
            endpoint = resolve_miscased_make(method, sub)
            if endpoint is None:
                raise not_found()
            miscased = True
        if endpoint.auth == "management":
            return self._management_call(request, endpoint, vehicle_id, param)
        grant, units = self._authenticate(request)
        if endpoint is BATCH:
            return self._batch(grant, units, vehicle_id, body, request_id)
        self._charge_app()
        vehicle = self._vehicle_for(grant, vehicle_id)
        wall = self.state.clock.wall()
        ctx = Ctx(
            vehicle,
            grant,
            units,
            request.query,
            None if body is _INVALID_JSON else body,
            wall,
            param,
        )
        payload = self._serve(endpoint, ctx, miscased, None)
        return 200, payload, _meta(endpoint, vehicle, units, wall, _DIRECT_KEYS)

    def _management_call(
        self, request: web.Request, endpoint: Endpoint, vehicle_id: str, param: str | None
    ) -> Result:
        self.state.credentials.check_management(bearer_token(request.headers.get("Authorization")))
        vehicle = self.state.fleet.get(vehicle_id)
        if vehicle is None:
            raise permission()
        ctx = Ctx(vehicle, Grant(""), "metric", request.query, None, 0.0, param)
        return 200, endpoint.handler(ctx), None

    def _serve(self, endpoint: Endpoint, ctx: Ctx, miscased: bool, item_key: str | None) -> Any:
        """Run the per-path checks and the handler; raises ApiError for this path only."""
        vehicle = ctx.vehicle
        if miscased or (endpoint.make is not None and endpoint.make != vehicle.make.lower()):
            raise permission()
        if endpoint.scope is not None and not ctx.grant.has_scope(endpoint.scope):
            raise permission()
        if endpoint.capability is not None and endpoint.capability not in vehicle.capabilities:
            raise not_capable()
        state = self.state
        limited = state.limiter.take_vehicle(state.rate_limits, vehicle.id)
        if limited is not None:
            raise ApiError("RATE_LIMIT", "VEHICLE", retry_after=limited.retry_after)
        faults = state.faults
        if endpoint.live:
            if vehicle.id in faults.asleep:
                raise vehicle_state("ASLEEP")
            if vehicle.id in faults.unreachable:
                raise vehicle_state("UNREACHABLE")
        if item_key is not None:
            injected = state.engine.item_error(faults, item_key, vehicle.id)
            if injected is not None:
                raise injected
        payload = endpoint.handler(ctx)
        if endpoint.path not in _UNBILLED:
            state.billing.bill(vehicle.id)
        return payload

    def _batch(
        self, grant: Grant, units: UnitSystem, vehicle_id: str, body: Any, request_id: str
    ) -> Result:
        items = parse_batch(body, body is not _INVALID_JSON)
        # The application bucket counts HTTP requests, so a batch costs one
        # (smartcar-api.md §4); its paths count per vehicle and in billing.
        self._charge_app()
        vehicle = self._vehicle_for(grant, vehicle_id)
        wall = self.state.clock.wall()
        responses: list[dict[str, Any]] = []
        # Items of one batch share their times: the headers by what shapes them,
        # built once (the answer is serialised before anything could change them).
        metas: dict[tuple[bool, bool], dict[str, str]] = {}
        for item in items:
            ctx = Ctx(vehicle, grant, units, item.query, None, wall, item.param)
            try:
                payload = self._serve(item.endpoint, ctx, item.miscased_make, item.key)
            except ApiError as error:
                entry: dict[str, Any] = {
                    "path": item.path,
                    "code": error.http_status,
                    "body": error.body(request_id),
                }
                if error.retry_after is not None:
                    entry["headers"] = {"Retry-After": error.retry_after}
                responses.append(entry)
                continue
            endpoint = item.endpoint
            shape = (endpoint.live and endpoint.method == "GET", endpoint.units)
            headers = metas.get(shape)
            if headers is None:
                headers = metas[shape] = _meta(endpoint, vehicle, units, wall, _ITEM_KEYS)
            responses.append(
                {
                    "path": item.path,
                    "code": 200,
                    "body": payload,
                    # Always present on success: the official Python SDK indexes it.
                    "headers": headers,
                }
            )
        # The envelope itself carries no SC-Unit-System: each item's headers say it.
        return 200, {"responses": responses}, None


_DIRECT_KEYS = ("SC-Data-Age", "SC-Fetched-At", "SC-Unit-System")
_ITEM_KEYS = ("sc-data-age", "sc-fetched-at", "sc-unit-system")


def _meta(
    endpoint: Endpoint,
    vehicle: SimulatedVehicle,
    units: UnitSystem,
    wall: float,
    keys: tuple[str, str, str],
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if endpoint.live and endpoint.method == "GET":
        headers[keys[0]] = iso(wall - vehicle.data_lag_seconds)
        headers[keys[1]] = iso(wall)
    if endpoint.units:
        headers[keys[2]] = units
    return headers


@web.middleware
async def _safety_net(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404 or exc.status == 405:
            error = not_found()
        elif exc.status < 500:
            error = ApiError("VALIDATION", status=exc.status, description=exc.reason)
        else:
            error = ApiError("SERVER", "INTERNAL", status=exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        error = ApiError("SERVER", "INTERNAL")
    request_id = str(uuid.uuid4())
    v3 = request.path.startswith("/v3/")
    body = errors_body(error) if v3 else error.body(request_id)
    return _response(error.http_status, _dumps(body), request_id)


def _parse_body(kind: str, raw: bytes, content_type: str) -> Any:
    if kind == "iam":
        # The IAM endpoint takes JSON (its spec) or a form (its prose example).
        if content_type == "application/json" or raw.lstrip().startswith(b"{"):
            return _parse_json(raw)
        return _parse_form(raw)
    return _parse_form(raw) if kind == "oauth" else _parse_json(raw)


def _parse_form(raw: bytes) -> dict[str, str] | None:
    if not raw:
        return None
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None


def _release(pause: asyncio.Future[None]) -> None:
    if not pause.done():
        pause.set_result(None)
