"""`Emulator`: the public face of the Smartcar API emulator (v2.0 and v3) and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from . import _webhooks, _webhooks_v4
from ._auth import Credentials, TokenPair
from ._clock import Clock, iso
from ._emulator_v3 import V3Surface
from ._errors import ApiError, status_for
from ._faults import FaultEngine, FaultKind, Faults, Injection, normalize_path
from ._fleet import Fleet, SimulatedVehicle, generate_fleet
from ._iam import AppTokens
from ._ratelimit import RateLimiter, RateLimits
from ._recording import RecordedRequest, RequestLog
from ._routes import default_capabilities
from ._server import Server, State

_STARTUP_TIMEOUT = 30.0
_SHUTDOWN_TIMEOUT = 30.0

Latency = float | tuple[float, float]
WebhookVersion = Literal["2.0", "4.0"]


def _id_list(vehicle_ids: Iterable[str]) -> list[str]:
    if isinstance(vehicle_ids, str):
        raise TypeError("pass a list of vehicle ids, not a single string")
    return list(vehicle_ids)


def _check_version(version: str) -> None:
    if version not in ("2.0", "4.0"):
        raise ValueError(f'version must be "2.0" or "4.0", not {version!r}')


class Emulator(V3Surface):
    """A local Smartcar API (v2.0 and v3) server with a simulated fleet, for tests and benchmarks.

    Use it as an async context manager inside a running event loop::

        async with Emulator(vehicles=10, seed=0) as emu:
            url = f"{emu.url}/v2.0/vehicles/{emu.fleet.ids[0]}/odometer"
            ...  # any HTTP client, "Authorization: Bearer <anything>"

    or from synchronous code (and from any async framework) with a server running
    on its own event loop in a daemon thread::

        with Emulator().in_thread() as emu:
            smartcar.config.API_ORIGIN = emu.url

    ``emu.url`` is the origin (no ``/v2.0``). By default every non-empty Bearer
    token has every scope for every vehicle; `register_token` narrows a token and
    `issue_code` plus ``POST /oauth/token`` runs the real OAuth flow. Shape the
    traffic with ``emu.faults`` (random faults), `inject` (scripted errors),
    ``emu.rate_limits`` and ``latency``; all may change mid-test. Everything
    time-based runs on the emulator clock (`advance_clock`, `freeze_clock`).
    ``emu.requests`` records what clients sent.

    Arguments are keyword-only: ``vehicles`` and ``seed`` fix the fleet (same
    seed, same fleet); ``latency`` is seconds added to every response, fixed or
    ``(low, high)``; ``port=0`` picks a free port; ``max_recorded`` bounds the
    request log (0 disables it); ``accept_any_token=False`` admits only
    registered or issued tokens; ``refresh_token_grace`` is how long a used
    refresh token keeps working; ``management_token`` is the Application
    Management Token to require (None accepts any).

    ``token_ttl`` (whole seconds, None for Smartcar's 2 hours) is the life of
    every access token the OAuth token endpoint issues (its ``expires_in``);
    after it, the token gets 401 AUTHENTICATION, also with
    ``accept_any_token``. In that mode a refresh token works exactly once, with
    no grace window (stricter than Smartcar, so a double spend shows), and
    ``refresh_token_grace`` is ignored. `issue_tokens` mints a connected
    user's pair without the OAuth round trip.

    The same server speaks Smartcar API v3 (``/v3/vehicles/...``, the
    application-token endpoint ``POST /oauth2/token``) from the same fleet, so
    a v2 read and the matching v3 signal agree; see `V3Surface` for its
    attributes (``vehicle_api_url``, ``iam_url``, ``signals_page_size``,
    ``slow_command_seconds``, ``billed_requests`` ...).

    Added in 0.1.0.
    """

    def __init__(
        self,
        *,
        vehicles: int = 10,
        seed: int = 0,
        latency: Latency = 0.0,
        faults: Faults | None = None,
        rate_limits: RateLimits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_recorded: int = 10_000,
        accept_any_token: bool = True,
        refresh_token_grace: float = 60.0,
        management_token: str | None = None,
        token_ttl: int | None = None,
    ) -> None:
        clock = Clock()
        credentials = Credentials(
            clock,
            accept_any_token=accept_any_token,
            refresh_grace=refresh_token_grace,
            token_ttl=token_ttl,
        )
        credentials.management_token = management_token
        self._state = State(
            clock=clock,
            fleet=generate_fleet(vehicles, seed, clock, default_capabilities),
            credentials=credentials,
            limiter=RateLimiter(clock),
            engine=FaultEngine(),
            log=RequestLog(max_recorded),
            faults=faults if faults is not None else Faults(),
            rate_limits=rate_limits if rate_limits is not None else RateLimits(),
            latency=latency,
            app_tokens=AppTokens(clock, credentials),
        )
        self._server = Server(self._state)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._phase: Literal["new", "running", "closed"] = "new"
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread_stop: asyncio.Event | None = None
        # What the last 4.0 delivery per (webhook, vehicle) said, to name its triggers.
        self._last_signals: dict[tuple[str, str], dict[str, Any]] = {}

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> Emulator:
        """Bind and start serving. An emulator runs once: it cannot be restarted."""
        if self._phase != "new":
            raise RuntimeError(f"Emulator is {self._phase}; create a new one instead")
        self._phase = "running"
        runner = web.AppRunner(
            self._server.app(),
            access_log=None,
            handle_signals=False,
            handler_cancellation=True,
            shutdown_timeout=1.0,
        )
        try:
            await runner.setup()
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            self._phase = "closed"
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        self._url = f"http://{shown}:{port}"
        return self

    async def aclose(self) -> None:
        """Stop serving: in-flight delays end at once, then connections close. Idempotent."""
        if self._phase == "closed":
            return
        self._phase = "closed"
        self._server.release_all()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Emulator]:
        """Serve from a fresh event loop in a daemon thread for the duration of the block.

        Yields this same object. Works from synchronous tests (the official SDK)
        and from any async framework, since the server never touches the
        caller's loop. The thread is joined on exit.
        """
        if self._phase != "new":
            raise RuntimeError(f"Emulator is {self._phase}; create a new one instead")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            stop = asyncio.Event()
            self._thread_loop = asyncio.get_running_loop()
            self._thread_stop = stop
            ready.set()
            try:
                await stop.wait()
            finally:
                await self.aclose()

        thread = threading.Thread(
            target=asyncio.run, args=(serve(),), name="smartcar-emulator", daemon=True
        )
        self._thread = thread
        thread.start()
        if not ready.wait(_STARTUP_TIMEOUT):
            raise RuntimeError("the emulator thread did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            self._stop_thread()

    def _stop_thread(self) -> None:
        loop, stop, thread = self._thread_loop, self._thread_stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may already be gone
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_SHUTDOWN_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError("the emulator thread did not stop in time")
        self._thread = self._thread_loop = self._thread_stop = None

    @property
    def running(self) -> bool:
        return self._phase == "running"

    @property
    def url(self) -> str:
        """The origin clients should use, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._url is None:
            raise RuntimeError("the emulator is not running; use `async with` or in_thread()")
        return self._url

    # -- fleet, clock, requests -------------------------------------------------

    @property
    def fleet(self) -> Fleet:
        """The simulated vehicles; their attributes are live, mutable state."""
        return self._state.fleet

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of recorded requests, oldest first (at most ``max_recorded``)."""
        return self._state.log.snapshot()

    def clear_requests(self) -> None:
        """Empty the request log and the `error_responses` tally."""
        self._state.log.clear()
        self._state.errors.clear()

    @property
    def error_responses(self) -> dict[str, int]:
        """Error responses served so far, by status and code: ``{"429 RATE_LIMIT:SMARTCAR_API": 3,
        "400 invalid_grant": 1}`` (a copy). Never truncated, unlike `requests`, and
        counted even with ``max_recorded=0``; errors inside a batch's items are not
        counted (the batch itself answered 200)."""
        return self._state.errors.snapshot()

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator clock forward: tokens expire, rate windows free, vehicles drive."""
        self._state.clock.advance(seconds)

    def freeze_clock(self) -> None:
        """Stop the emulator clock (state stops drifting) until `unfreeze_clock`."""
        self._state.clock.freeze()

    def unfreeze_clock(self) -> None:
        self._state.clock.unfreeze()

    # -- traffic shaping --------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._state.faults = value
        self._state.engine.restart()

    @property
    def rate_limits(self) -> RateLimits:
        return self._state.rate_limits

    @rate_limits.setter
    def rate_limits(self, value: RateLimits) -> None:
        self._state.rate_limits = value
        self._state.limiter.reset()

    def reset_rate_limits(self) -> None:
        """Forget all counted requests: every window empties and the bucket refills."""
        self._state.limiter.reset()

    @property
    def latency(self) -> Latency:
        return self._state.latency

    @latency.setter
    def latency(self, value: Latency) -> None:
        self._state.latency = value

    def inject(
        self,
        status: int | None = None,
        type: str = "SERVER",
        code: str | None = "INTERNAL",
        *,
        times: int | None = 1,
        path: str | None = None,
        vehicle_id: str | None = None,
        retry_after: int | None = None,
        in_batch: bool = False,
        fault: FaultKind | None = None,
        seconds: float | None = None,
        description: str | None = None,
    ) -> None:
        """Script the next ``times`` matching requests (None: until `clear_injections`).

        Errors: ``emu.inject(status=409, type="VEHICLE_STATE", code="ASLEEP")``.
        ``status`` defaults to the documented status of ``type``. ``path`` matches
        a vehicle sub-path (``"/odometer"``, ``"/"``, ``"/batch"``) or, for other
        calls, the path after the version (``"/user"``, ``"/vehicles"``) or
        ``"/oauth/token"``; a v3 call by ``"/v3"`` plus its sub-path
        (``"/v3/signals"``, ``"/v3"`` for the vehicle itself) and the IAM token
        endpoint by ``"/oauth2/token"``; None matches every request. ``in_batch=True`` fails
        matching batch items (inside a 200 envelope) instead of HTTP responses.
        ``retry_after`` adds ``Retry-After`` (an item header inside a batch).

        Transport faults: ``emu.inject(fault="drop" | "malformed" | "slow",
        seconds=...)``; ``slow`` holds the response ``seconds`` (default
        ``faults.slow_seconds``) and then serves it.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        if fault is not None and in_batch:
            raise ValueError("transport faults apply to HTTP responses, not batch items")
        if fault not in (None, "drop", "malformed", "slow"):
            raise ValueError(f"unknown fault {fault!r}")
        error = None
        if fault is None:
            error = ApiError(
                type,
                code,
                status=status if status is not None else status_for(type),
                description=description,
                retry_after=retry_after,
            )
        self._state.engine.add(
            Injection(
                error=error,
                fault=fault,
                seconds=seconds,
                remaining=times,
                path=None if path is None else normalize_path(path),
                vehicle_id=vehicle_id,
                in_batch=in_batch,
            )
        )

    def clear_injections(self) -> None:
        self._state.engine.clear()

    # -- credentials ------------------------------------------------------------

    def register_token(
        self,
        token: str,
        scopes: Iterable[str] | None = None,
        vehicle_ids: Iterable[str] | None = None,
        *,
        user_id: str | None = None,
        expires_in: float | None = None,
    ) -> None:
        """Give ``token`` exactly these scopes and vehicles (None: all of them)."""
        self._state.credentials.register_token(
            token, scopes, vehicle_ids, user_id=user_id, expires_in=expires_in
        )

    def expire_token(self, token: str) -> None:
        """Make ``token`` expired now: it then gets 401 AUTHENTICATION."""
        self._state.credentials.expire_token(token)

    def revoke_token(self, token: str) -> None:
        """Revoke ``token``: it then gets 401 AUTHENTICATION."""
        self._state.credentials.revoke_token(token)

    def register_client(
        self, client_id: str, client_secret: str, redirect_uri: str | None = None
    ) -> None:
        """Require these client credentials (until one is registered, any are accepted)."""
        self._state.credentials.register_client(client_id, client_secret, redirect_uri)

    def issue_code(
        self,
        scopes: Iterable[str] | None = None,
        vehicle_ids: Iterable[str] | None = None,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        redirect_uri: str | None = None,
    ) -> str:
        """An authorization code, as Smartcar Connect would redirect with, valid 10 minutes.

        Exchange it at ``POST {url}/oauth/token`` for tokens carrying these grants.
        """
        return self._state.credentials.issue_code(
            scopes, vehicle_ids, user_id=user_id, client_id=client_id, redirect_uri=redirect_uri
        )

    def issue_tokens(
        self,
        vehicle_ids: Iterable[str] | None = None,
        *,
        scopes: Iterable[str] | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        expires_in: float | None = None,
    ) -> TokenPair:
        """A connected user's access and refresh tokens for ``vehicle_ids`` (None: all).

        The same grant an `issue_code` exchange would give, without the round
        trip: the access token lives ``expires_in`` seconds (default:
        ``token_ttl``, else 2 hours) and the refresh token works at ``POST
        {url}/oauth/token`` with any client credentials the emulator accepts
        (only ``client_id``'s, if given). ``scopes`` None means all of them.
        Unknown vehicle ids are refused with ``ValueError``.
        """
        wanted = None if vehicle_ids is None else _id_list(vehicle_ids)
        if wanted is not None:
            known = set(self._state.fleet.ids)
            unknown = [vid for vid in wanted if vid not in known]
            if unknown:
                raise ValueError(f"not vehicles of this fleet: {', '.join(unknown)}")
        return self._state.credentials.issue_tokens(
            scopes, wanted, user_id=user_id, client_id=client_id, expires_in=expires_in
        )

    @property
    def token_ttl(self) -> int | None:
        """Seconds issued access tokens live (None: Smartcar's 2 hours); see the class docs."""
        return self._state.credentials.token_ttl

    @property
    def management_token(self) -> str | None:
        """The Application Management Token required (None accepts any non-empty one)."""
        return self._state.credentials.management_token

    @management_token.setter
    def management_token(self, value: str | None) -> None:
        self._state.credentials.management_token = value

    @property
    def refresh_token_grace(self) -> float:
        return self._state.credentials.refresh_grace

    @refresh_token_grace.setter
    def refresh_token_grace(self, value: float) -> None:
        self._state.credentials.refresh_grace = value

    # ------------------------------------------------------------- webhooks

    def _amt(self, amt: str | None) -> str:
        key = amt if amt is not None else self.management_token
        if not key:
            raise ValueError(
                "pass amt=, or set emu.management_token: deliveries are signed with it"
            )
        return key

    async def verify_webhook(
        self,
        url: str,
        *,
        webhook_id: str | None = None,
        amt: str | None = None,
        timeout: float = 10.0,
        version: WebhookVersion = "2.0",
    ) -> bool:
        """Send Smartcar's one-time verify event to your receiver at ``url``.

        ``version="2.0"`` sends the legacy ``{"eventName": "verify", "payload":
        {"challenge"}}`` form; ``"4.0"`` the current ``{"eventType": "VERIFY",
        "data": {"challenge"}, "meta"}`` one. True when the receiver answered 200
        with ``{"challenge": HMAC-SHA256(amt, challenge)}``, as Smartcar requires
        before it delivers anything.
        """
        _check_version(version)
        key = self._amt(amt)
        wid = webhook_id or str(uuid.uuid4())
        if version == "4.0":
            body, challenge = _webhooks_v4.verify(wid, self._state.clock.wall())
        else:
            body, challenge = _webhooks.verify_payload_body(wid)
        delivery = await _webhooks.post(url, body, key, timeout=timeout, version=version)
        expected = _webhooks.sign(key, challenge.encode())
        answer = delivery.body
        return (
            delivery.status == 200
            and isinstance(answer, dict)
            and isinstance(answer.get("challenge"), str)
            and hmac.compare_digest(answer["challenge"], expected)
        )

    async def deliver_webhook(
        self,
        url: str,
        *,
        webhook_id: str | None = None,
        vehicle_ids: Iterable[str] | None = None,
        body: Mapping[str, Any] | None = None,
        amt: str | None = None,
        timeout: float = 10.0,
        version: WebhookVersion = "2.0",
        event_type: Literal["VEHICLE_STATE", "VEHICLE_ERROR"] | None = None,
    ) -> _webhooks.WebhookDelivery:
        """POST one signed webhook delivery to your receiver, as Smartcar would.

        The body is ``body`` if given. Otherwise, for ``version="2.0"`` (the
        default), a v2 data event with the odometer and location of
        ``vehicle_ids`` (default: the vehicles subscribed to ``webhook_id``, else
        the first vehicle). For ``version="4.0"``, a 4.0 event about one vehicle
        (``vehicle_ids`` must then name at most one; the default is the one
        subscribed vehicle, else the first): ``event_type="VEHICLE_STATE"``
        (the default) lists its signals, with a ``FIRST_DELIVERY`` trigger the
        first time and ``SIGNAL_UPDATED`` ones for what changed since;
        ``"VEHICLE_ERROR"`` reports the vehicle's ASLEEP/UNREACHABLE fault, or
        else the signals it is not capable of. ``meta.deliveredAt`` and signal
        times are epoch milliseconds on the emulator clock.

        Every delivery carries ``SC-Signature``: hex HMAC-SHA256 of the raw body
        keyed with ``amt`` (default: ``emu.management_token``). Returns the
        receiver's status and answer.
        """
        _check_version(version)
        if event_type is not None and (version != "4.0" or body is not None):
            raise ValueError("event_type applies to generated 4.0 deliveries only")
        key = self._amt(amt)
        wid = webhook_id or str(uuid.uuid4())
        if body is None:
            fleet = self._state.fleet
            if vehicle_ids is not None:
                wanted = set(vehicle_ids)
                chosen = [v for v in fleet.vehicles if v.id in wanted]
            else:
                chosen = [v for v in fleet.vehicles if wid in v.webhooks] or fleet.vehicles[:1]
            wall = self._state.clock.wall()
            if version == "4.0":
                body = self._v4_event(wid, chosen, wall, event_type or "VEHICLE_STATE")
            else:
                body = _webhooks.data_payload(wid, chosen, iso(wall), mode="test")
        return await _webhooks.post(url, body, key, timeout=timeout, version=version)

    def _v4_event(
        self, webhook_id: str, chosen: list[SimulatedVehicle], wall: float, event_type: str
    ) -> dict[str, Any]:
        if len(chosen) != 1:
            raise ValueError(
                "a 4.0 delivery is about one vehicle: pass vehicle_ids=[one id] "
                f"({len(chosen)} selected)"
            )
        vehicle = chosen[0]
        if event_type == "VEHICLE_ERROR":
            faults = self._state.faults
            condition = (
                "ASLEEP"
                if vehicle.id in faults.asleep
                else "UNREACHABLE"
                if vehicle.id in faults.unreachable
                else None
            )
            return _webhooks_v4.vehicle_error(webhook_id, vehicle, wall, "TEST", condition)
        if event_type != "VEHICLE_STATE":
            raise ValueError(f"unknown event_type {event_type!r}")
        pair = (webhook_id, vehicle.id)
        body, bodies = _webhooks_v4.vehicle_state(
            webhook_id, vehicle, wall, "TEST", self._last_signals.get(pair)
        )
        self._last_signals[pair] = bodies
        return body

    def __repr__(self) -> str:
        where = self._url or "not running"
        return f"<Emulator {self._phase} {where} vehicles={len(self._state.fleet)}>"
