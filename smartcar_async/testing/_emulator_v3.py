"""The v3 part of `Emulator`'s public surface: origins, application tokens, paging, billing."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._v3_schedules import schedules_of
from ._v3_signals import CODES

if TYPE_CHECKING:
    from ._server import State


class V3Surface:
    """Mixed into `Emulator`. Everything here may be read or changed mid-test.

    The same server speaks Smartcar API v3 beside v2.0, from the same fleet:

    * ``GET {vehicle_api_url}/v3/vehicles/{id}``, ``.../signals``,
      ``.../signals/{code}`` and ``POST .../commands/<group>/<action>``
      (``security/lock``, ``charge/set-limit`` ...): shapes, errors and check
      order are described in ``smartcar_async.testing._v3_routes``, the signal
      catalogue and per-signal statuses in ``_v3_signals``, the commands in
      ``_v3_commands``; ``POST .../charge-schedules/{daily|weekly|workweek}``
      and ``DELETE .../charge-schedules/{id}`` (Tesla; Volvo daily only) in
      ``_v3_schedules``, with `charge_schedules` to see what a vehicle holds.
      Point the official SDK at it with
      ``SMARTCAR_VEHICLE_API_V3_ORIGIN={vehicle_api_url}`` (read at import).
    * ``POST {iam_url}/oauth2/token`` mints one-hour application tokens by
      client credentials; with one, send ``sc-user-id`` naming a user of the
      fleet (``emu.fleet.users``, or a ``user_id`` given to `issue_tokens`,
      `issue_code` or `register_token`); see ``_iam`` for the exact rules. A
      user's own access token works on v3 exactly as on v2.
    * Both rate limits (``emu.rate_limits``) apply to v3 requests as to v2
      ones: one application-bucket token and one vehicle-window slot per
      request, ``/signals`` included, with JSON:API 429s and ``Retry-After``.
    * ``emu.faults``, ``emu.inject`` (``path="/v3/signals"``, ``"/v3"``,
      ``"/v3/commands/security/lock"``; the IAM endpoint is
      ``"/oauth2/token"``), ``latency`` and ``emu.requests`` cover v3 too; an
      injected error on a v3 path is rendered as a JSON:API error.
    """

    _state: State

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

    @property
    def vehicle_api_url(self) -> str:
        """The v3 Vehicle API origin (the SDK's ``SMARTCAR_VEHICLE_API_V3_ORIGIN``): ``url``."""
        return self.url

    @property
    def iam_url(self) -> str:
        """The application-token origin: ``POST {iam_url}/oauth2/token``. Same server as ``url``."""
        return self.url

    @property
    def signal_codes(self) -> tuple[str, ...]:
        """Every signal code a ``/signals`` answer lists, in the order it lists them."""
        return CODES

    # -- application tokens ----------------------------------------------------

    @property
    def app_token_ttl(self) -> int:
        """Seconds an application token lives (``expires_in``; Smartcar's is 3600)."""
        return self._state.app_tokens.ttl

    @app_token_ttl.setter
    def app_token_ttl(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"app_token_ttl must be whole seconds >= 1, not {value!r}")
        self._state.app_tokens.ttl = value

    @property
    def app_token_requests(self) -> int:
        """How many application tokens were issued (by the endpoint or `issue_app_token`)."""
        return self._state.app_tokens.issued

    def issue_app_token(self, client_id: str = "client_emulator") -> str:
        """An application token, as ``POST /oauth2/token`` would mint, without the round trip."""
        return str(self._state.app_tokens.issue(client_id)["access_token"])

    def expire_app_token(self, token: str) -> None:
        """Make an application token expired now: it then gets 401 AUTHENTICATION."""
        self._state.app_tokens.expire(token)

    # -- signals and commands --------------------------------------------------

    @property
    def signals_page_size(self) -> int | None:
        """Signals per ``/signals`` page (None, the default and what live answers show: all)."""
        return self._state.signals_page_size

    @signals_page_size.setter
    def signals_page_size(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"signals_page_size must be an int or None, not {value!r}")
        if value is not None and value < 1:
            raise ValueError(f"signals_page_size must be >= 1, not {value!r}")
        self._state.signals_page_size = value

    @property
    def slow_command_seconds(self) -> float | None:
        """While set, v3 commands answer 202 at once and send their result this much later.

        None (the default): commands answer 200 with their result. The hold
        runs in real seconds (like ``latency``) and ends early on shutdown.
        """
        return self._state.command_hold

    @slow_command_seconds.setter
    def slow_command_seconds(self, value: float | None) -> None:
        if value is not None and not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            raise ValueError(f"slow_command_seconds must be >= 0 or None, not {value!r}")
        self._state.command_hold = None if value is None else float(value)

    def charge_schedules(self, vehicle_id: str) -> dict[str, dict[str, Any]]:
        """The v3 charge schedules a vehicle holds: id -> ``{"scheduleType", "location", ...}``.

        A copy; what ``POST /v3/vehicles/{id}/charge-schedules/...`` created and
        ``DELETE`` has not removed (see ``smartcar_async.testing._v3_schedules``).
        Raises `KeyError` for a vehicle the fleet does not hold.
        """
        vehicle = self._state.fleet.get(vehicle_id)
        if vehicle is None:
            raise KeyError(vehicle_id)
        return {sid: dict(record) for sid, record in schedules_of(vehicle).items()}

    # -- billing ---------------------------------------------------------------

    @property
    def billed_requests(self) -> int:
        """Billable requests served so far, over all vehicles.

        Counted: every successful v2 vehicle request (not ``/permissions``,
        ``DELETE /application`` or webhook subscriptions), every successful
        path of a v2 batch, and every successful v3 vehicle request, one per
        ``/signals`` page however many signals it holds, one per command.
        Failed requests, token requests, ``/vehicles`` and ``/user`` are free.
        Evidence and caveats: ``smartcar_async.testing._billing``.
        """
        return self._state.billing.total()

    @property
    def billed_requests_by_vehicle(self) -> dict[str, int]:
        """`billed_requests` per vehicle id (a copy; vehicles never billed are absent)."""
        return self._state.billing.by_vehicle()

    def reset_billed_requests(self) -> None:
        self._state.billing.reset()
