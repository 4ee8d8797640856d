"""The Client: settings, session ownership, lifecycle, and the vehicle handles it gives out.

What happens under a call is other modules' work: `_io.ClientIO` is what
vehicles send through, `_coalescer` gathers reads into flights,
`_batch.execute_reads` sends a flight, `_policy.SendPolicy` decides when and
how often a request goes, and `_transport` makes the HTTP exchange.
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Literal, Self, overload

import aiohttp

from ._batch import execute_reads
from ._coalescer import Coalescer, Executor
from ._endpoints import API_VERSION
from ._exceptions import ClientClosedError
from ._gates import Gates, TokenBucket
from ._io import ClientIO
from ._models_account import WebhookPayload
from ._names import UnitSystem
from ._observability import (
    BatchHook,
    ClientHooks,
    ClientStats,
    Counters,
    Hooks,
    ResponseHook,
)
from ._options import (
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    CallOptions,
    RequestBudget,
    check_response_size,
    check_retries,
)
from ._origins import DEFAULT_API_ORIGIN
from ._origins import api_origin as resolve_api_origin
from ._origins import vehicle_api_origin as resolve_v3_origin
from ._policy import RetryConfig, SendPolicy
from ._reuse import DEFAULT_CACHE_SIZE, ReadingCache
from ._shared import SharedLimits
from ._state import StateStore
from ._tokens import TokenSource
from ._transport import USER_AGENT, Transport
from ._v3 import execute_signals
from ._validate import (
    check_bound,
    check_int,
    check_seconds,
    check_unit_system,
    check_user_agent,
)
from ._vehicle import Vehicle
from ._vehicle_v3 import API_V3, VehicleV3

# API_VERSION lives in _endpoints; it is re-exported for modules that still import it from here.
__all__ = ["API_VERSION", "DEFAULT_API_ORIGIN", "Client"]

#: Long enough to catch reads issued a few event-loop turns apart, short
#: against Smartcar's 3 to 45 s answers (5 ms is at most 0.2% of that).
DEFAULT_BATCH_WINDOW = 0.005
DEFAULT_MAX_BATCH_SIZE = 25


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class Client:
    """An async Smartcar API client that coalesces concurrent vehicle reads.

    Use it as ``async with smartcar_async.Client() as client:`` (or call
    :meth:`aclose` yourself). ``client.vehicle(...)`` gives a cheap handle whose
    reads, issued concurrently, go out as one ``POST /vehicles/{id}/batch``.

    Args:
        api_origin: scheme and host of the API; defaults to the
            ``SMARTCAR_API_ORIGIN`` environment variable, else
            ``https://api.smartcar.com``.
        vehicle_api_origin: scheme and host of the Vehicle API v3 (without
            ``/v3``), for handles made with ``api_version="3"``; defaults to
            ``SMARTCAR_VEHICLE_API_V3_ORIGIN``, else
            ``https://vehicle.api.smartcar.com``.
        session: an aiohttp session to borrow. It is never closed by us, and
            its ``base_url`` and ``raise_for_status`` are not used. Without it
            the client creates (and owns) one on first use, inside the running
            event loop.
        timeout: seconds for one HTTP attempt, ``None`` for no limit.
        deadline: seconds for a whole call (queueing, retries and backoff
            included), ``None`` (the default) for no limit. Exceeding it raises
            :class:`APITimeoutError`. Like every bound, ``timeout`` and
            ``deadline`` are a number > 0 or None: 0 is a ValueError.
        max_retries: retries of a failed read (5xx, 408, timeouts, lost
            connections, and 429s within ``max_retry_after``); writes are never
            retried. Applied once per batch, not once per caller.
        retry_backoff, max_backoff: the first retry waits ``retry_backoff``
            seconds, doubling up to ``max_backoff``, with jitter.
        max_retry_after: a 429 asking to wait longer than this is raised at
            once (with ``retry_after`` set) and the vehicle, or the whole
            client for RATE_LIMIT:SMARTCAR_API, fails fast locally until then.
        request_budget: client-side pacing under Smartcar's application bucket
            (off by default; ``RequestBudget()`` for the documented 120
            requests refilling at 2 per minute).
        min_vehicle_interval: minimum seconds between two requests to the same
            vehicle (0 by default).
        max_concurrent_requests: HTTP requests in flight at once for this
            client; further requests wait for a free place.
        batch_window: seconds a queue waits, from its first read, before it is
            flushed (up to a fifth more: queues whose windows end close
            together share one timer); ``0`` flushes at the next event-loop turn.
        max_batch_size: a queue flushes at once when it holds this many
            distinct paths; larger flushes are split.
        max_batches_per_vehicle: batches in flight at once for one vehicle
            queue; reads arriving meanwhile gather into the next batch.
        join_inflight: whether a read joins an identical read already in flight
            for the same vehicle instead of queueing a new one.
        close_timeout: seconds :meth:`aclose` lets in-flight requests finish.
        max_connections: connection pool size of an owned session.
        max_response_size: the most bytes one answer's body may have (after
            decompression; 8 MiB by default). A larger one fails with
            :class:`InvalidResponseError`, unread past the limit, and is not
            retried.
        user_agent: the ``User-Agent`` header; no line breaks or control
            characters.
        on_batch, on_response: observability hooks (see :class:`BatchFlushed`
            and :class:`ResponseReceived`).
        hooks: :class:`ClientHooks` objects (one or a sequence), which also see
            retries, rate limits and failed batch items, e.g.
            ``smartcar_async.metrics.PrometheusHooks()``. ``async def`` hooks
            of either kind raise ``TypeError`` here: hooks are never awaited.
        state: a :class:`StateStore`, which the client uses and never closes.
            A shared one (:class:`~smartcar_async.redis.RedisState`) makes
            every request take from the application bucket shared by every
            client on it (one per HTTP request, a batch included) and shares the
            rate-limit gates: a 429 one worker gets closes the vehicle (or the
            application) for all. While it cannot be reached, the client
            carries on with its local gates and ``request_budget`` (counted in
            ``stats.shared_state_unavailable``, logged once per outage).
        cache_size: the most answers and webhook readings kept for reuse by
            handles with ``max_age`` (see :meth:`vehicle`), least recently
            used vehicles dropped first; 0 keeps none. About 0.75 kB each,
            the answer included; 50,000 by default.

    Added in 0.1.0.
    """

    def __init__(
        self,
        *,
        api_origin: str | None = None,
        vehicle_api_origin: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_retry_after: float = 60.0,
        request_budget: RequestBudget | None = None,
        min_vehicle_interval: float = 0.0,
        max_concurrent_requests: int = 100,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batches_per_vehicle: int = 1,
        join_inflight: bool = True,
        close_timeout: float = 10.0,
        max_connections: int = 100,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        user_agent: str | None = None,
        on_batch: Sequence[BatchHook] = (),
        on_response: Sequence[ResponseHook] = (),
        hooks: ClientHooks | Sequence[ClientHooks] = (),
        state: StateStore | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._origin = resolve_api_origin(api_origin)
        self._v3_origin = resolve_v3_origin(vehicle_api_origin)
        self._options = CallOptions(
            timeout=check_bound("timeout", timeout),
            max_retries=check_retries(max_retries),
            deadline=check_bound("deadline", deadline),
        )
        retry = RetryConfig(
            initial_backoff=check_seconds("retry_backoff", retry_backoff),
            max_backoff=check_seconds("max_backoff", max_backoff),
            max_retry_after=check_seconds("max_retry_after", max_retry_after),
        )
        window = check_seconds("batch_window", batch_window)
        check_int("max_batch_size", max_batch_size, minimum=1)
        check_int("max_batches_per_vehicle", max_batches_per_vehicle, minimum=1)
        check_int("max_connections", max_connections, minimum=1)
        check_int("max_concurrent_requests", max_concurrent_requests, minimum=1)
        if request_budget is not None and not isinstance(request_budget, RequestBudget):
            raise TypeError("request_budget must be a RequestBudget or None")
        interval = check_seconds("min_vehicle_interval", min_vehicle_interval)
        if state is not None and not isinstance(state, StateStore):
            raise TypeError(f"state must be a StateStore or None, not {type(state).__name__}")
        self._state_store = state
        self._close_timeout = check_seconds("close_timeout", close_timeout)
        self._max_connections = max_connections
        self._max_response_size = check_response_size(max_response_size)
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._transport: Transport | None = (
            Transport(session, max_response_size=self._max_response_size) if session else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.UNOPENED
        self._closing: asyncio.Task[None] | None = None
        self._counters = Counters()
        self._readings = ReadingCache(check_int("cache_size", cache_size), self._counters)
        self._hooks = Hooks(on_batch, on_response, observers=hooks, stats=self._counters.snapshot)
        self._policy = SendPolicy(
            retry=retry,
            gates=Gates(min_vehicle_interval=interval),
            budget=TokenBucket(request_budget.capacity, request_budget.refill_per_minute)
            if request_budget is not None
            else None,
            max_concurrent=max_concurrent_requests,
            counters=self._counters,
            hooks=self._hooks,
            origin=self._origin,
            user_agent=check_user_agent(user_agent) or USER_AGENT,
            connect=self._ensure_transport,
            shared=state if isinstance(state, SharedLimits) else None,
            v3_origin=self._v3_origin,
        )

        def coalescer(executor: Executor) -> Coalescer:
            return Coalescer(
                executor=executor,
                window=window,
                max_batch_size=max_batch_size,
                max_flights_per_queue=max_batches_per_vehicle,
                join_inflight=join_inflight,
                counters=self._counters,
                hooks=self._hooks,
                policy=self._policy,
            )

        self._coalescer = coalescer(functools.partial(execute_reads, self._policy))
        self._io = ClientIO(
            coalescer=self._coalescer,
            policy=self._policy,
            counters=self._counters,
            check_usable=self._check_usable,
            readings=self._readings,
        )
        # API v3 reads queue apart (their keys differ anyway) behind their own executor.
        self._v3_coalescer = coalescer(functools.partial(execute_signals, self._policy))
        self._v3_io = ClientIO(
            coalescer=self._v3_coalescer,
            policy=self._policy,
            counters=self._counters,
            check_usable=self._check_usable,
            readings=self._readings,
        )

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._state is _State.CLOSED:
            raise ClientClosedError("This client is closed; create a new one")
        if self._state is _State.OPENED:
            raise RuntimeError("This client is already open; enter it only once")
        self._ensure_transport()
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client: idempotent.

        Reads still waiting in a queue fail with :class:`ClientClosedError`;
        requests already on the wire get ``close_timeout`` seconds to finish
        and are cancelled after that. An owned session is closed; a borrowed
        one is left open.
        """
        if self._closing is None:
            self._state = _State.CLOSED
            self._policy.closed = True
            self._closing = asyncio.get_running_loop().create_task(self._close())
        # A second, concurrent aclose() returns only when the first one is done;
        # the shield keeps a cancelled closer from abandoning the close half-way.
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._policy.cancel_waits()
        # One grace period for everything on the wire, reads and requests sent on
        # their own alike: close_timeout bounds the close, not each kind in turn.
        await asyncio.gather(
            self._coalescer.close(grace=self._close_timeout),
            self._v3_coalescer.close(grace=self._close_timeout),
            self._io.drain(self._close_timeout),
            self._v3_io.drain(self._close_timeout),
        )
        await self._policy.settle(self._close_timeout)
        session, self._session, self._transport = self._session, None, None
        # A request failing from now on failed because its session went away.
        self._policy.released = True
        if session is not None and session is not self._borrowed:
            await session.close()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def api_origin(self) -> str:
        return self._origin

    @property
    def vehicle_api_origin(self) -> str:
        """The Vehicle API v3 origin (``/v3`` is appended to it)."""
        return self._v3_origin

    @property
    def stats(self) -> ClientStats:
        """A snapshot of this client's counters (reads, HTTP requests, dedupe hits...)."""
        return self._counters.snapshot()

    @property
    def readings(self) -> ReadingCache:
        """The answers and webhook readings kept for handles with ``max_age``.

        Ask it whether a read would be answered without a request
        (``client.readings.is_fresh(car, "/odometer", max_age=300)``).
        """
        return self._readings

    def ingest_webhook(self, payload: WebhookPayload, *, unit_system: UnitSystem = "metric") -> int:
        """Keep a webhook delivery's readings, so reads with ``max_age`` are answered from them.

        ``payload`` is a parsed delivery: ``client.ingest_webhook(parse_webhook(raw))``
        once its signature is verified. v4 ``VEHICLE_STATE`` signals answer
        ``get_signal(code)`` and the v2-named reads built from them (the same
        models as a polled read, in the handle's unit system); v2 data events
        answer the reads of their paths. ``unit_system`` is that of v2 items
        that do not say (``sc-unit-system``). Failed signals and items are
        never kept, and a reading older than the one kept (by the data's own
        timestamps) never replaces it: deliveries are at least once and
        unordered. Readings answer handles of any token without ``flags``.

        Returns the number of readings stored. No I/O; callable from any
        thread that owns the client's loop, or before it is opened.
        Added in 0.2.0.
        """
        return self._readings.ingest(payload, check_unit_system(unit_system))

    def __repr__(self) -> str:
        return f"<smartcar_async.Client origin={self._origin!r} state={self._state.value}>"

    # -------------------------------------------------------------- vehicles

    @overload
    def vehicle(
        self,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = ...,
        flags: Mapping[str, str | bool | int | float] | None = ...,
        api_version: Literal["2.0"] = ...,
        user_id: None = ...,
        max_age: float | None = ...,
    ) -> Vehicle: ...

    @overload
    def vehicle(
        self,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = ...,
        flags: Mapping[str, str | bool | int | float] | None = ...,
        api_version: Literal["3"],
        user_id: str | None = ...,
        max_age: float | None = ...,
    ) -> VehicleV3: ...

    def vehicle(
        self,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = "metric",
        flags: Mapping[str, str | bool | int | float] | None = None,
        api_version: Literal["2.0", "3"] = "2.0",
        user_id: str | None = None,
        max_age: float | None = None,
    ) -> Vehicle | VehicleV3:
        """A handle on one vehicle: no task, no I/O, cheap to keep by the thousand.

        ``access_token`` is a token string, a :class:`TokenSource` (such as a
        :class:`RefreshingTokenSource`), or an ``async def () -> str``.
        ``api_version="3"`` gives a :class:`VehicleV3`, which reads Smartcar
        API v3 signals; ``user_id`` (v3 only) is sent as ``sc-user-id`` on
        every request, and is required with an application token.

        ``max_age`` (seconds, None by default) lets a read return an answer
        to the same read, for the same vehicle, credentials, unit system and
        flags, that is at most that old instead of sending a request (its
        ``meta.reused`` is True and ``meta.age`` says how old it is); see
        :attr:`readings` and :meth:`ingest_webhook`.
        """
        age = check_bound("max_age", max_age)
        app_token = bool(getattr(access_token, "application_token", False))
        if api_version == API_V3:
            if app_token and user_id is None:
                raise ValueError("an application token needs user_id= (sent as sc-user-id)")
            return VehicleV3(
                self._v3_io.with_max_age(age),
                vehicle_id,
                access_token=access_token,
                unit_system=unit_system,
                flags=flags,
                options=self._options,
                user_id=user_id,
            )
        if api_version != API_VERSION:
            raise ValueError(f"api_version must be '2.0' or '3', got {api_version!r}")
        if user_id is not None:
            raise ValueError("user_id is for api_version='3' handles")
        if app_token:
            raise ValueError("application tokens work with api_version='3' only")
        return Vehicle(
            self._io.with_max_age(age),
            vehicle_id,
            access_token=access_token,
            unit_system=unit_system,
            flags=flags,
            options=self._options,
        )

    # ------------------------------------------------------------- internals

    def _check_usable(self) -> None:
        """Raise now, in the caller, if this client cannot serve a call from here."""
        if self._state is _State.CLOSED:
            raise ClientClosedError("The client is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "This client was first used in another event loop; create one client per loop"
            )

    def _ensure_transport(self) -> Transport:
        """The transport requests go out on; an owned session is opened on first use."""
        self._check_usable()
        if self._transport is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
            self._session = session
            self._transport = Transport(
                session, max_response_size=self._max_response_size, owned=True
            )
        return self._transport
