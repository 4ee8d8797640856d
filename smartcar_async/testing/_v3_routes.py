"""The Vehicle API v3 under ``/v3``: routing, checks and the JSON:API documents.

Routes (relative to ``/v3/vehicles/{id}``; anything else under ``/v3`` is 404
``RESOURCE_NOT_FOUND/INVALID_PATH``, as live):

* ``GET /`` (a trailing slash is fine): ``{"data": <vehicle>}`` with
  ``attributes`` ``make, model, year, powertrainType (BEV|ICE|PHEV), mode``;
  needs ``read_vehicle_info``.
* ``GET /signals``: ``{"data": [<signal>...], "meta": {"totalCount",
  "pageSize", "pageNumber"}, "links": {"self"[, "next"]}, "included":
  {"vehicle": <vehicle>}}``, every signal of the catalogue in code order, each
  with its own status (see ``_v3_signals``). The 3.0.0 spec documents no paging
  parameter and live answers hold the whole set, so by default one page holds
  everything. For testing a client's paging, ``Emulator.signals_page_size``
  splits the list: ``meta`` then says which page this is and ``links.next``
  (absolute, ``?page[number]=N&page[size]=S``) points at the next one. The
  request may itself pass ``page[number]`` and ``page[size]`` (the names v3
  documents for ``/connections``); a page past the end has no data.
* ``GET /signals/{code}``: ``{"data": <signal>, "included": {"vehicle"}}``,
  200 even when the signal's status is ERROR; a code the vehicle does not list
  is 404 ``RESOURCE_NOT_FOUND/SIGNAL_NOT_FOUND``.
* ``POST /commands/...``: see ``_v3_commands``. A command answers 200 with
  its execution, or, while ``Emulator.slow_command_seconds`` is set, 202 at
  once (headers sent, no Content-Length) with the connection held that many
  seconds and then the final result as the body of the same response, as the
  docs describe long commands (findings item 17); a command that fails while
  held carries its ``{"errors": [...]}`` in the 202 body.
* ``POST /charge-schedules/{daily|weekly|workweek}`` and ``DELETE
  /charge-schedules/{scheduleId}``: see ``_v3_schedules``; answered like the
  commands (200, or a held 202), with the same checks, plus a make check
  (501) and, for a delete, an unknown id (404) before any hold.

Order of checks: route (404) -> scripted/random HTTP faults -> Bearer auth
(401) and ``sc-user-id`` (400) -> application bucket (429 SMARTCAR_API) ->
vehicle access (403, 401 when disconnected) -> [scope 403, capability 501 for
``/`` and commands] -> [unknown code 404] -> vehicle window (429 VEHICLE) ->
[asleep/unreachable 409 and body validation 400 for commands] -> the answer.
Errors are JSON:API documents (``_v3_errors``); 429s carry ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
from aiohttp import web

from . import _v3_signals as signals
from ._auth import Grant
from ._errors import ApiError, authentication, not_capable, permission, vehicle_state
from ._fleet import SimulatedVehicle
from ._iam import v3_grant
from ._v3_commands import COMMANDS, Command, Params
from ._v3_errors import errors_body, invalid_path, signal_not_found
from ._v3_schedules import DELETE_SCHEDULE, SCHEDULES

if TYPE_CHECKING:
    from ._server import State

Result = tuple[int, Any, Mapping[str, str] | None]

_SIGNALS = "/signals"
_SIGNAL_PREFIX = "/signals/"
_SCHEDULE_PREFIX = "/charge-schedules/"


@attrs.frozen
class Deferred:
    """A held (202) command: the server waits ``seconds``, then sends ``finish()``."""

    seconds: float
    finish: Callable[[], Any]


def _page_param(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ApiError(
            "VALIDATION",
            "INVALID_PARAMETER",
            description=f'"{name}" must be an integer greater than or equal to 1',
        )
    return value


class V3Api:
    """Answers the ``/v3`` requests of one server `State`."""

    def __init__(self, state: State) -> None:
        self.state = state

    def dispatch(self, vehicle_id: str | None, key: str, request: web.Request, body: Any) -> Result:
        """``key`` is ``/v3`` plus the sub-path after the vehicle id (``/v3/signals``)."""
        sub = key[3:] or "/"
        if vehicle_id is None:
            raise invalid_path()
        base = f"{request.scheme}://{request.host}"
        method = request.method
        if method == "GET":
            if sub == "/":
                return self._vehicle(request, vehicle_id, base)
            if sub == _SIGNALS:
                return self._signals(request, vehicle_id, base)
            code = sub[len(_SIGNAL_PREFIX) :]
            if sub.startswith(_SIGNAL_PREFIX) and code and "/" not in code:
                return self._signal(request, vehicle_id, code, base)
        elif method == "POST":
            command = COMMANDS.get(sub) or SCHEDULES.get(sub)
            if command is not None:
                return self._command(request, vehicle_id, command, body)
        elif method == "DELETE":
            schedule_id = sub[len(_SCHEDULE_PREFIX) :]
            if sub.startswith(_SCHEDULE_PREFIX) and schedule_id and "/" not in schedule_id:
                extra = {"scheduleId": schedule_id}
                return self._command(request, vehicle_id, DELETE_SCHEDULE, None, extra)
        raise invalid_path()

    # -- shared checks ---------------------------------------------------------

    def _access(
        self, request: web.Request, vehicle_id: str, *, need_user: bool
    ) -> tuple[Grant, SimulatedVehicle]:
        state = self.state
        grant = v3_grant(
            state.app_tokens, state.credentials, state.fleet, request.headers, need_user=need_user
        )
        limited = state.limiter.take_app(state.rate_limits, 1)
        if limited is not None:
            raise ApiError("RATE_LIMIT", "SMARTCAR_API", retry_after=limited.retry_after)
        vehicle = state.fleet.get(vehicle_id)
        if vehicle is None or not grant.has_vehicle(vehicle_id):
            raise permission()
        if not vehicle.connected:
            raise authentication()
        return grant, vehicle

    def _take_slot(self, vehicle: SimulatedVehicle) -> None:
        state = self.state
        limited = state.limiter.take_vehicle(state.rate_limits, vehicle.id)
        if limited is not None:
            raise ApiError("RATE_LIMIT", "VEHICLE", retry_after=limited.retry_after)

    # -- reads ---------------------------------------------------------------

    def _vehicle(self, request: web.Request, vehicle_id: str, base: str) -> Result:
        grant, vehicle = self._access(request, vehicle_id, need_user=False)
        if not grant.has_scope("read_vehicle_info"):
            raise permission()
        self._take_slot(vehicle)
        self.state.billing.bill(vehicle.id)
        return 200, {"data": signals.vehicle_resource(vehicle, base)}, None

    def _signals(self, request: web.Request, vehicle_id: str, base: str) -> Result:
        query = request.query
        state = self.state
        number = _page_param(query, "page[number]", 1)
        size = _page_param(query, "page[size]", state.signals_page_size)
        grant, vehicle = self._access(request, vehicle_id, need_user=True)
        self._take_slot(vehicle)
        codes = signals.CODES
        total = len(codes)
        assert number is not None
        page_size = size if size is not None else total
        start = (number - 1) * page_size
        chosen = codes[start : start + page_size]
        wall = state.clock.wall()
        url = f"{base}/v3/vehicles/{vehicle.id}/signals"
        links = {"self": f"{url}?{request.query_string}" if request.query_string else url}
        if start + page_size < total:
            links["next"] = f"{url}?{urlencode({'page[number]': number + 1, 'page[size]': size})}"
        document = {
            "data": signals.render_all(vehicle, grant, state.faults, wall, base, chosen),
            "meta": {"totalCount": total, "pageSize": page_size, "pageNumber": number},
            "links": links,
            "included": {"vehicle": signals.vehicle_resource(vehicle, base)},
        }
        state.billing.bill(vehicle.id)
        return 200, document, None

    def _signal(self, request: web.Request, vehicle_id: str, code: str, base: str) -> Result:
        grant, vehicle = self._access(request, vehicle_id, need_user=True)
        spec = signals.BY_CODE.get(code)
        if spec is None:
            raise signal_not_found(code, vehicle.id)
        self._take_slot(vehicle)
        state = self.state
        document = {
            "data": signals.render(spec, vehicle, grant, state.faults, state.clock.wall(), base),
            "included": {"vehicle": signals.vehicle_resource(vehicle, base)},
        }
        state.billing.bill(vehicle.id)
        return 200, document, None

    # -- commands --------------------------------------------------------------

    def _command(
        self,
        request: web.Request,
        vehicle_id: str,
        command: Command,
        body: Any,
        extra: Params | None = None,
    ) -> Result:
        grant, vehicle = self._access(request, vehicle_id, need_user=True)
        if not grant.has_scope(command.scope):
            raise permission()
        if not command.supports(vehicle):
            raise not_capable()
        self._take_slot(vehicle)
        state = self.state
        if vehicle.id in state.faults.asleep:
            raise vehicle_state("ASLEEP")
        if vehicle.id in state.faults.unreachable:
            raise vehicle_state("UNREACHABLE")
        params = command.parse(body) if command.parse is not None else {}
        if extra:
            params = {**params, **extra}
        if command.check is not None:
            command.check(vehicle, params)
        started = state.clock.wall()
        hold = state.command_hold
        if hold is None:
            outcome = command.run(vehicle, params)
            state.billing.bill(vehicle.id)
            finished = state.clock.wall()
            return 200, command.document(vehicle, params, outcome, started, finished, False), None

        def finish() -> Any:
            try:
                outcome = command.run(vehicle, params)
            except ApiError as error:
                return errors_body(error)
            state.billing.bill(vehicle.id)
            finished = state.clock.wall()
            return command.document(vehicle, params, outcome, started, finished, True)

        return 202, Deferred(hold, finish), None
