"""The Client: configuration, session ownership, lifecycle, and the HTTP layer under the queues."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar
from urllib.parse import quote

import aiohttp
import anyio

from ._batch import batch_bytes, parse_batch_envelope
from ._coalescer import Answer, Coalescer, QueueKey, RawItem
from ._converter import structure
from ._exceptions import (
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    RateLimitError,
    SmartcarError,
)
from ._gates import Gates, TokenBucket
from ._http import USER_AGENT
from ._models import Meta
from ._names import UnitSystem
from ._observability import (
    BatchHook,
    ClientHooks,
    ClientStats,
    Counters,
    Hooks,
    ResponseHook,
    ResponseReceived,
    log_fields,
    logger,
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
from ._retry import RetryConfig, is_transient
from ._tokens import TokenSource
from ._transport import RawResponse, Transport
from ._validate import check_bound, check_int, check_seconds, check_token, check_user_agent

if TYPE_CHECKING:
    from ._vehicle import Vehicle

__all__ = ["API_VERSION", "DEFAULT_API_ORIGIN", "Client"]

T = TypeVar("T")

API_VERSION = "2.0"
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

    Added in 0.1.0.
    """

    def __init__(
        self,
        *,
        api_origin: str | None = None,
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
    ) -> None:
        self._origin = resolve_api_origin(api_origin)
        self._options = CallOptions(
            timeout=check_bound("timeout", timeout),
            max_retries=check_retries(max_retries),
            deadline=check_bound("deadline", deadline),
        )
        self._retry = RetryConfig(
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
        self._budget = (
            TokenBucket(request_budget.capacity, request_budget.refill_per_minute)
            if request_budget is not None
            else None
        )
        self._gates = Gates(
            min_vehicle_interval=check_seconds("min_vehicle_interval", min_vehicle_interval)
        )
        self._max_concurrent = max_concurrent_requests
        self._limiter: asyncio.Semaphore | None = None
        self._close_timeout = check_seconds("close_timeout", close_timeout)
        self._max_connections = max_connections
        self._max_response_size = check_response_size(max_response_size)
        self._user_agent = check_user_agent(user_agent) or USER_AGENT
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._transport_obj: Transport | None = (
            Transport(session, max_response_size=self._max_response_size) if session else None
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.UNOPENED
        self._closing: asyncio.Task[None] | None = None
        self._pauses: set[anyio.CancelScope] = set()
        self._counters = Counters()
        self._hooks = Hooks(on_batch, on_response, observers=hooks, stats=self._counters.snapshot)
        self._direct_inflight: set[asyncio.Future[None]] = set()
        self._coalescer = Coalescer(
            executor=self._execute_reads,
            window=window,
            max_batch_size=max_batch_size,
            max_flights_per_queue=max_batches_per_vehicle,
            join_inflight=join_inflight,
            counters=self._counters,
            hooks=self._hooks,
            gates=self._gates,
            retry=self._retry,
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
            self._closing = asyncio.get_running_loop().create_task(self._close())
        # A second, concurrent aclose() returns only when the first one is done;
        # the shield keeps a cancelled closer from abandoning the close half-way.
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for scope in list(self._pauses):
            scope.cancel()
        await self._coalescer.close(grace=self._close_timeout)
        if self._direct_inflight:
            await asyncio.wait(set(self._direct_inflight), timeout=self._close_timeout)
        session, self._session, self._transport_obj = self._session, None, None
        if session is not None and session is not self._borrowed:
            await session.close()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def api_origin(self) -> str:
        return self._origin

    @property
    def stats(self) -> ClientStats:
        """A snapshot of this client's counters (reads, HTTP requests, dedupe hits...)."""
        return self._counters.snapshot()

    def __repr__(self) -> str:
        return f"<smartcar_async.Client origin={self._origin!r} state={self._state.value}>"

    # -------------------------------------------------------------- vehicles

    def vehicle(
        self,
        vehicle_id: str,
        *,
        access_token: str | TokenSource | Callable[[], Awaitable[str]],
        unit_system: UnitSystem = "metric",
        flags: Mapping[str, str | bool | int | float] | None = None,
    ) -> Vehicle:
        """A handle on one vehicle: no task, no I/O, cheap to keep by the thousand.

        ``access_token`` is a token string, a :class:`TokenSource` (such as a
        :class:`RefreshingTokenSource`), or an ``async def () -> str``.
        """
        from ._vehicle import Vehicle

        return Vehicle(
            self,
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
        self._check_usable()
        if self._transport_obj is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
            self._session = session
            self._transport_obj = Transport(session, max_response_size=self._max_response_size)
        if self._limiter is None:
            self._limiter = asyncio.Semaphore(self._max_concurrent)
        return self._transport_obj

    def _url(self, vehicle_id: str | None, path: str) -> str:
        if vehicle_id is None:
            return f"{self._origin}/v{API_VERSION}{path}"
        return f"{self._origin}/v{API_VERSION}/vehicles/{quote(vehicle_id, safe='')}{path}"

    def _headers(self, token: str, unit_system: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "User-Agent": self._user_agent}
        if unit_system is not None:
            headers["SC-Unit-System"] = unit_system
        return headers

    async def _send_once(
        self,
        method: str,
        vehicle_id: str | None,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None,
        json_body: Any,
        timeout: float | None,
        redact: Sequence[str] = (),
    ) -> RawResponse:
        """One HTTP exchange, bounded by the client's concurrency limit, counted and reported.

        The transport scrubs the token of ``headers`` from the answer (and so
        from batch items, models and errors); ``redact`` names more secrets.
        """
        transport = self._ensure_transport()
        assert self._limiter is not None
        async with self._limiter:
            self._counters.http_requests += 1
            started = time.perf_counter()
            try:
                resp = await transport.request(
                    method,
                    self._url(vehicle_id, path),
                    headers=headers,
                    params=params,
                    json_body=json_body,
                    timeout=timeout,
                    redact=redact,
                )
            except SmartcarError as exc:
                self._report(method, path, vehicle_id, exc.status_code, started, type(exc).__name__)
                if self._state is _State.CLOSED and self._session is None:
                    raise ClientClosedError("The client was closed during this request") from exc
                raise
        self._report(method, path, vehicle_id, resp.status, started, None)
        return resp

    async def _send(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        unit_system: str | None,
        retry: bool,
        kind: Literal["batch", "get", "write"],
        cost: int = 1,
        auth: object = None,
        spent: int = 0,
    ) -> RawResponse:
        """One logical request under the policy: gates, pacing, token, retries.

        ``retry`` is False for writes: they are never sent twice, except after
        a 401 that a token source could cure (the API refused them unread).
        ``kind`` is what each request sent is counted as.
        """
        options: CallOptions = key.options
        vehicle_id = key.vehicle_id
        source = auth if auth is not None else key.auth
        attempt = spent  # retries this read already used in earlier flights
        refreshed = False
        fresh: str | None = None
        # Secrets the Authorization header does not carry but an answer may
        # quote: the vehicle's own token when another one is sent (the AMT of
        # unsubscribe), and after a refresh the token that was refused.
        stale: tuple[str, ...] = ()
        if auth is not None and isinstance(key.auth, str):
            stale = (key.auth,)
        counted = 0  # the last attempt counted as a retry
        while True:
            if self._state is _State.CLOSED:
                raise ClientClosedError("The client was closed before this request was sent")
            if self._budget is not None or self._gates.blocked_for(vehicle_id)[0] > 0:
                async with self._pause():
                    await self._gates.wait(vehicle_id, self._retry.max_retry_after)
                    if self._budget is not None:
                        await self._budget.acquire(cost)
            else:
                self._gates.passed(vehicle_id)
            if isinstance(source, str):
                token = source
            elif fresh is not None:
                token, fresh = fresh, None
            else:
                token = await _fetch_token(_source(source).token())
            # Counted as sent, so that requests add up: http_requests ==
            # batches + single_gets + writes, and retries are some of them.
            if attempt > counted:
                # A repeat after a failed request, or a flight carrying reads
                # re-queued after failed batch items; not the resend after a refresh.
                counted = attempt
                self._counters.retries += 1
            if kind == "batch":
                self._counters.batches += 1
                self._counters.sub_requests += cost
            elif kind == "get":
                self._counters.single_gets += 1
            else:
                self._counters.writes += 1
            try:
                return await self._send_once(
                    method,
                    vehicle_id,
                    path,
                    headers=self._headers(token, unit_system),
                    params=params,
                    json_body=json_body,
                    timeout=options.timeout,
                    redact=stale,
                )
            except AuthenticationError:
                if isinstance(source, str) or refreshed:
                    raise
                refreshed = True
                logger.info("401 for vehicle %s: refreshing its token once", vehicle_id)
                stale = (*stale, token)
                fresh = await _fetch_token(_source(source).refresh(token))
            except RateLimitError as exc:
                self._counters.rate_limited += 1
                wait = self._note_rate_limit(vehicle_id, exc, attempt)
                if (
                    not retry
                    or attempt >= options.max_retries
                    or wait > self._retry.max_retry_after
                ):
                    raise
                attempt += 1
                self._hooks.retry_scheduled(vehicle_id, path, attempt, exc, wait)
            except SmartcarError as exc:
                if not retry or attempt >= options.max_retries or not is_transient(exc):
                    raise
                attempt += 1
                delay = self._retry.backoff(attempt)
                self._hooks.retry_scheduled(vehicle_id, path, attempt, exc, delay)
                logger.info(
                    "%s %s for vehicle %s failed (%s); retry %d in %.2fs",
                    method,
                    path,
                    vehicle_id,
                    type(exc).__name__,
                    attempt,
                    delay,
                    extra=log_fields(
                        "retry", vehicle_id, exc, attempt=attempt, delay=round(delay, 3)
                    ),
                )
                async with self._pause():
                    await anyio.sleep(delay)

    @contextlib.asynccontextmanager
    async def _pause(self) -> AsyncIterator[None]:
        """A wait before sending (gate, budget, backoff) that aclose() may cut short.

        Nothing is on the wire yet, so there is nothing to let finish: closing
        cancels the wait and the caller gets ClientClosedError at once.
        """
        with anyio.CancelScope() as scope:
            self._pauses.add(scope)
            try:
                yield
            finally:
                self._pauses.discard(scope)
        if scope.cancel_called:
            raise ClientClosedError("The client was closed while this request waited to be sent")

    def _note_rate_limit(self, vehicle_id: str, exc: RateLimitError, attempt: int) -> float:
        """Close the right gate for a 429; return how long it stays closed."""
        wait = self._gates.rate_limited(vehicle_id, exc, self._retry.backoff(attempt + 1))
        self._hooks.rate_limited(vehicle_id, exc.code, exc.retry_after, wait)
        logger.warning(
            "rate limited (%s) %s: waiting %.1fs",
            exc.code,
            "application-wide" if exc.code == "SMARTCAR_API" else f"vehicle {vehicle_id}",
            wait,
            extra=log_fields("rate_limited", vehicle_id, exc, wait=round(wait, 3)),
        )
        return wait

    def _report(
        self,
        method: str,
        path: str,
        vehicle_id: str | None,
        status: int | None,
        started: float,
        error: str | None,
    ) -> None:
        latency = time.perf_counter() - started
        if error is not None:
            self._counters.failed_requests += 1
            logger.debug("%s %s -> %s (%s) in %.3fs", method, path, status, error, latency)
        if self._hooks.on_response:
            self._hooks.response_received(
                ResponseReceived(method, path, vehicle_id, status, latency, error)
            )

    async def _execute_reads(self, key: QueueKey, paths: tuple[str, ...], spent: int = 0) -> Answer:
        """The coalescer's executor: a plain GET for one path, a batch POST for more."""
        params = {"flags": key.flags} if key.flags else None
        if len(paths) == 1:
            resp = await self._send(
                "GET",
                key,
                paths[0],
                params=params,
                unit_system=key.unit_system,
                retry=True,
                kind="get",
                spent=spent,
            )
            return Answer(
                {paths[0]: RawItem(resp.status, resp.body, resp.headers)}, resp.request_id
            )
        logger.debug("batch for vehicle %s: %s", key.vehicle_id, ", ".join(paths))
        resp = await self._send(
            "POST",
            key,
            "/batch",
            params=params,
            json_body=batch_bytes(paths),
            unit_system=key.unit_system,
            retry=True,
            kind="batch",
            cost=len(paths),
            spent=spent,
        )
        return parse_batch_envelope(resp.body, resp.request_id)

    def _read(self, key: QueueKey, path: str, model: type[T]) -> Coroutine[Any, Any, T]:
        """The coalesced read, for the caller's coroutine to await.

        A plain function, so a read costs one coroutine frame fewer; it is
        only ever called from inside a coroutine, so raising here still
        raises where the caller awaits.
        """
        self._check_usable()
        if key.options.deadline is None:  # the common case: no cancel scope to pay for
            return self._coalescer.read(key, path, model)
        return self._read_within(key.options.deadline, key, path, model)

    async def _read_within(self, deadline: float, key: QueueKey, path: str, model: type[T]) -> T:
        with _deadline(deadline):
            return await self._coalescer.read(key, path, model)

    async def _direct(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        unit_system: str | None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
        auth: object = None,
        model: type[T],
    ) -> T:
        """A request that bypasses the coalescer (writes, paged or filtered reads), as ``model``."""
        self._check_usable()
        if not write:
            self._counters.logical_reads += 1
        error = self._gates.fail_fast_error(key.vehicle_id, self._retry.max_retry_after)
        if error is not None:
            raise error
        query = dict(params or {})
        if key.flags:
            query["flags"] = key.flags
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._direct_inflight.add(marker)
        try:
            with _deadline(key.options.deadline):
                resp = await self._send(
                    method,
                    key,
                    path,
                    params=query or None,
                    json_body=json_body,
                    unit_system=unit_system,
                    retry=not write,
                    kind="write" if write else "get",
                    auth=auth,
                )
        finally:
            marker.set_result(None)
            self._direct_inflight.discard(marker)
        return structure(model, resp.body, Meta.from_headers(resp.headers))


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Bound a whole call; running out is an APITimeoutError like any other timeout."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise APITimeoutError(f"No answer within the call deadline of {seconds}s") from None


async def _fetch_token(pending: Awaitable[str]) -> str:
    """Await a token source; its own failures reach callers as a SmartcarError.

    What it returns must be a token that can go in a header: the rule of
    `check_token` for a token given directly, and no whitespace or control
    character at all. A bad one is the source's fault, so it is an
    AuthenticationError, raised before the token goes near a header; the
    message never holds the value.
    """
    try:
        token = await pending
    except SmartcarError:
        raise
    except Exception as exc:
        raise AuthenticationError(
            f"The token source failed: {type(exc).__name__}", type="AUTHENTICATION"
        ) from exc
    try:
        check_token(token, "token")
    except (TypeError, ValueError) as exc:
        # The check's message names the fault, never the value.
        raise AuthenticationError(
            f"The token source returned an unusable token: {exc}", type="AUTHENTICATION"
        ) from None
    # Every whitespace but the plain space is unprintable: two scans in C.
    if not token.isprintable() or " " in token:
        raise AuthenticationError(
            "The token source returned an unusable token: "
            "token must not contain whitespace or control characters",
            type="AUTHENTICATION",
        )
    return token


def _source(auth: object) -> TokenSource:
    assert isinstance(auth, TokenSource)
    return auth
