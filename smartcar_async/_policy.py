"""The send policy: when a request may go, with which token, and what its failure means.

One `SendPolicy` per client decides everything between "send this" and "here
is the answer", as a chain of short steps::

    SendPolicy.send(method, key, path)
      -> wait for the vehicle's gates and the request budget     _wait_turn
         (a read gated for longer than max_retry_after fails)
      -> the token: the key's string, or its source's            fetch_token
      -> one attempt: a place under the concurrency limit, one   (inline)
         HTTP exchange on the transport, counted and reported
      -> what a failure means:
           401, token source: refresh once and send again        _refreshed
             (writes too: the API refused them unread)
           429: close the vehicle's or the application's gate;   _retry_429
             retry behind it if allowed and not too long
           5xx, 408, timeout, lost connection: back off, retry   _retry_transient
           anything else: raise

With a shared state (``Client(state=RedisState(...))``, anything that is a
`SharedLimits`), `_wait_turn` also takes every request's token from the shared
application bucket, behind the shared gates, in one `admit` round trip, and a
429 closes the shared gate as well as the local one. The local gates stay in
front (a gate this worker knows of fails fast or is slept out with no round
trip), and a shared gate learnt from `admit` is copied into them. When the
shared store cannot be reached the policy carries on with the local gates and
the local budget alone (degraded: logged once, counted in
``shared_state_unavailable``), and a probe every ``probe_interval`` seconds
brings the shared state back when it answers again.

The coalescer asks the same object about reads that never reach `send`:
whether a read must fail at once (`fail_fast`) and whether a failed batch
item goes again, and after how long (`retry_item`). Writes are never
retried (Smartcar has no idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio
import attrs
from yarl import URL

from ._endpoints import API_VERSION
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ClientClosedError,
    RateLimitError,
    ServerError,
    SmartcarError,
    StateUnavailableError,
    UpstreamError,
)
from ._gates import Gates, TokenBucket, still_limited
from ._limiter import Limiter
from ._observability import Counters, Hooks, ResponseReceived, log_fields, logger
from ._quota import BillingMeter, billable
from ._shared import Admitted, SharedLimits
from ._tokens import TokenSource
from ._transport import RawResponse, Transport
from ._urls import UrlMaker
from ._validate import check_seconds, check_token

if TYPE_CHECKING:
    from ._coalescer import QueueKey

__all__ = ["RetryConfig", "SendPolicy", "fetch_token", "is_transient"]

Kind = Literal["batch", "get", "write"]


@attrs.frozen
class RetryConfig:
    """Retry settings for reads (writes are never retried: Smartcar has no idempotency key).

    Retries (as many as the call's ``CallOptions.max_retries``) wait
    ``initial_backoff`` seconds doubling up to ``max_backoff``, less up to 25%
    jitter so that a fleet of workers does not retry in lockstep. A 429 whose Retry-After is at
    most ``max_retry_after`` seconds is waited out and retried; a longer one is
    raised at once.

    Added in 0.1.0.
    """

    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        for name in ("initial_backoff", "max_backoff", "max_retry_after"):
            check_seconds(name, getattr(self, name))

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        # Past 2**63 every sane cap is reached; a larger power would overflow.
        growth = 2.0 ** min(max(retry - 1, 0), 63)
        delay = min(self.max_backoff, self.initial_backoff * growth)
        return delay * (1.0 - 0.25 * random.random())


def is_transient(exc: SmartcarError) -> bool:
    """Failures a later identical request may not meet: 5xx, 408, timeouts, lost connections."""
    if isinstance(exc, ServerError | UpstreamError | APITimeoutError | APIConnectionError):
        return True
    return exc.status_code == 408


class SendPolicy:
    """Gates, request budget, concurrency limit, retries and token refresh of one client.

    ``connect`` returns the transport to send on (the client's, opened on
    first use); it raises if the client cannot serve a call from here. The
    client sets ``closed`` when it starts closing (nothing more is sent;
    `cancel_waits` cuts waits short) and ``released`` once its session is gone
    (a request that fails then failed because of the close).
    """

    def __init__(
        self,
        *,
        retry: RetryConfig | None = None,
        gates: Gates | None = None,
        budget: TokenBucket | None = None,
        max_concurrent: int = 100,
        counters: Counters | None = None,
        hooks: Hooks | None = None,
        origin: str = "",
        user_agent: str = "",
        connect: Callable[[], Transport] | None = None,
        shared: SharedLimits | None = None,
        v3_origin: str = "",
    ) -> None:
        self.retry = retry if retry is not None else RetryConfig()
        self.gates = gates if gates is not None else Gates()
        self.budget = budget
        self.shared = shared
        #: Seconds between two probes of an unreachable shared state.
        self.probe_interval = 5.0
        # Whether every request waits its turn, even with every local gate open.
        self._paced = budget is not None or shared is not None
        self._shared_down = False
        self._next_probe = 0.0
        self._probing = False
        # Gate publications and probes: short tasks of the shared state, ended at close.
        self._background: set[asyncio.Task[None]] = set()
        self.counters = counters if counters is not None else Counters()
        #: Billed requests of the vehicles a budgeted poller watches.
        self.meter = BillingMeter()
        self.hooks = hooks if hooks is not None else Hooks((), ())
        self.closed = False
        self.released = False
        self._max_wait = self.retry.max_retry_after
        self._limiter = Limiter(max_concurrent)
        self._origin = UrlMaker(origin)
        self._v3_origin = UrlMaker(v3_origin)
        self._user_agent = user_agent
        self._connect = connect if connect is not None else _no_transport
        self._pauses: set[anyio.CancelScope] = set()

    # ------------------------------------------------------ asked by the coalescer

    def fail_fast(self, vehicle_id: str) -> RateLimitError | None:
        """The error a call must raise now: its vehicle is gated for longer than it would wait.

        Called on every read, so it costs one look at the gates when none is closed.
        """
        wait, error = self.gates.blocked_for(vehicle_id)
        if error is None or wait <= self._max_wait:
            return None
        return still_limited(error, wait)

    def retry_item(
        self,
        vehicle_id: str,
        path: str,
        error: SmartcarError,
        attempt: int,
        may_retry: bool,
    ) -> float | None:
        """A batch item failed: seconds before its path may go again, or None if it fails now.

        ``attempt`` is the retries the path already used; ``may_retry`` is
        False when it has none left (or the client is closing). A 429 closes
        the vehicle's (or the application's) gate for its Retry-After either
        way; a transient error (5xx, 408) holds the vehicle for one backoff
        step, as a failed single GET waits before its retry. The request that
        carries the path again counts as the retry, not this call.
        """
        if isinstance(error, RateLimitError):
            wait = self._close_gate(vehicle_id, error, attempt)
            if wait > self._max_wait:
                return None
        elif is_transient(error):
            wait = self.retry.backoff(attempt + 1)
        else:
            return None
        if not may_retry:
            return None
        if not isinstance(error, RateLimitError):
            self.gates.hold(vehicle_id, wait)
        self.hooks.retry_scheduled(vehicle_id, path, attempt + 1, error, wait, item=True)
        _log_item_retry(vehicle_id, path, error, attempt + 1, wait)
        return wait

    # ------------------------------------------------------------------ sending

    async def send(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        unit_system: str | None,
        retry: bool,
        kind: Kind,
        cost: int = 1,
        auth: str | TokenSource | None = None,
        spent: int = 0,
    ) -> RawResponse:
        """One logical request under the policy; see the module's docstring for the steps.

        ``retry`` is False for writes. ``kind`` is what each request sent is
        counted as; ``cost`` its billed requests (a batch's paths; the request
        budget takes one per request whatever the cost); ``auth``
        replaces the key's credentials (the AMT of unsubscribe); ``spent`` is
        the retries its reads already used in earlier flights.
        """
        vehicle_id = key.vehicle_id
        source = key.auth if auth is None else auth
        retries = key.options.max_retries if retry else 0
        # Secrets the Authorization header does not carry but an answer may
        # quote: the vehicle's own token when another one is sent (the AMT of
        # unsubscribe), and after a refresh the token that was refused.
        stale: tuple[str, ...] = ()
        if auth is not None and isinstance(key.auth, str):
            stale = (key.auth,)
        if key.api_version == API_VERSION:
            url, extra = self._url(vehicle_id, path), None
        else:
            url, extra = self._v3_url(vehicle_id, path), _v3_headers(key)
        attempt = spent
        counted = 0  # the last attempt counted as a retry
        fresh: str | None = None  # the token a refresh returned, for the next attempt
        refreshed = False
        limiter = self._limiter
        while True:
            if self.closed:
                raise ClientClosedError("The client was closed before this request was sent")
            if self._paced or self.gates.blocked_for(vehicle_id)[0] > 0:
                await self._wait_turn(vehicle_id)
            else:
                self.gates.passed(vehicle_id)
            if isinstance(source, str):
                token = source
            elif fresh is not None:
                token, fresh = fresh, None
            else:
                # Not on the wire yet: a close cuts this short too. The sources
                # refresh in a task of their own, so the new pair is not lost.
                async with self._pause():
                    token = await fetch_token(source.token())
            if attempt > counted:
                # A repeat after a failed request, or a flight carrying reads
                # re-queued after failed batch items; not the resend after a refresh.
                counted = attempt
                self.counters.retries += 1
            self._count(kind, cost)
            if billable(method, path):
                # Each attempt, as sent: see _quota for why retries count.
                self.counters.billed_requests += cost
                self.meter.add(vehicle_id, cost)
            try:
                # One attempt, inline rather than a coroutine of its own: every
                # resume of the request passes through each coroutine frame
                # between the flight and aiohttp, and a lone read has nothing
                # else to spend its CPU on.
                transport = self._connect()
                headers = {"Authorization": f"Bearer {token}", "User-Agent": self._user_agent}
                if unit_system is not None:
                    headers["SC-Unit-System"] = unit_system
                if extra:
                    headers.update(extra)
                # acquire() and release() rather than ``async with``: no two
                # more coroutines per request.
                await limiter.acquire()
                try:
                    self.counters.http_requests += 1
                    started = time.perf_counter()
                    try:
                        resp = await transport.request(
                            method,
                            url,
                            headers=headers,
                            params=params,
                            json_body=json_body,
                            timeout=key.options.timeout,
                            redact=stale,
                        )
                    except SmartcarError as exc:
                        self._report(
                            method, path, vehicle_id, exc.status_code, started, type(exc).__name__
                        )
                        if self.released:
                            raise ClientClosedError(
                                "The client was closed during this request"
                            ) from exc
                        raise
                finally:
                    limiter.release()
                self._report(method, path, vehicle_id, resp.status, started, None)
                return resp
            except AuthenticationError:
                if isinstance(source, str) or refreshed:
                    raise  # a plain token cannot be refreshed; a refreshed one was refused too
                refreshed = True
                stale = (*stale, token)
                async with self._pause():
                    fresh = await self._refreshed(source, token, vehicle_id)
            except RateLimitError as exc:
                if not self._retry_429(exc, vehicle_id, path, attempt, retries):
                    raise
                attempt += 1  # the gate it closed is the wait
            except SmartcarError as exc:
                delay = self._retry_transient(exc, method, path, vehicle_id, attempt, retries)
                if delay is None:
                    raise
                attempt += 1
                async with self._pause():
                    await anyio.sleep(delay)

    async def _wait_turn(self, vehicle_id: str) -> None:
        """Wait until the vehicle's gates open and the budget has a request to spare.

        One token per HTTP request, a batch included: Smartcar's application
        bucket counts requests, while billing counts each path.

        With a shared state, the budget is the shared bucket: the reservation
        `admit` makes is ours, so the wait it answers is slept holding nothing
        (first come, first served across workers). The local budget paces
        only while the shared state is unreachable.
        """
        async with self._pause():
            while True:
                wait, error = self.gates.blocked_for(vehicle_id)
                if wait > 0:
                    if error is not None and wait > self._max_wait:
                        raise still_limited(error, wait)
                    await anyio.sleep(wait)
                    continue
                admission = await self._admit(vehicle_id)
                if admission is None or admission.reserved:
                    break
                # Another worker's 429 closed a shared gate: keep it here too, so
                # that fail-fast and the wait above need no round trip.
                self._copy_gate(vehicle_id, admission)
            self.gates.passed(vehicle_id)
            if admission is not None:
                if admission.wait > 0:
                    await anyio.sleep(admission.wait)
                return
            if self.shared is not None:
                self.counters.shared_state_unavailable += 1
            if self.budget is not None:
                await self.budget.acquire(1)

    async def _admit(self, vehicle_id: str) -> Admitted | None:
        """The shared state's answer for one request; None: there is none to ask (or it is down)."""
        shared = self.shared
        if shared is None or not self._shared_usable():
            return None
        try:
            return await shared.admit(1, vehicle_id)
        except StateUnavailableError as exc:
            self._shared_unavailable(exc)
            return None

    def _copy_gate(self, vehicle_id: str, admission: Admitted) -> None:
        app = admission.reason == "app"
        code = "SMARTCAR_API" if app else "VEHICLE"
        error = RateLimitError(
            f"Rate limited (RATE_LIMIT:{code}): another worker sharing this state got a 429 "
            + ("for the application" if app else f"for vehicle {vehicle_id}"),
            type="RATE_LIMIT",
            code=code,
            status_code=429,
            retry_after=admission.wait,
        )
        self.gates.block(None if app else vehicle_id, admission.wait, error)

    # ------------------------------------------------------------ shared state

    def _shared_usable(self) -> bool:
        """Whether to ask the shared state; while it is down, start a probe when one is due."""
        if not self._shared_down:
            return True
        if not self._probing and time.monotonic() >= self._next_probe:
            self._probing = True
            self._spawn(self._probe())
        return False

    def _shared_unavailable(self, exc: StateUnavailableError) -> None:
        if self._shared_down:
            return
        self._shared_down = True
        self._next_probe = time.monotonic() + self.probe_interval
        logger.warning(
            "shared state unreachable (%s): carrying on with local gates and local pacing; "
            "probing every %gs",
            exc,
            self.probe_interval,
            extra={"event": "shared_state_unavailable"},
        )

    async def _probe(self) -> None:
        assert self.shared is not None
        try:
            answered = await self.shared.ping()
        except Exception:  # a closed or broken store: still down, the next probe will tell
            answered = False
        finally:
            self._probing = False
            self._next_probe = time.monotonic() + self.probe_interval
        if answered and self._shared_down:
            self._shared_down = False
            logger.warning(
                "shared state reachable again: shared budget and gates back in use",
                extra={"event": "shared_state_recovered"},
            )

    def _publish_gate(self, vehicle_id: str, exc: RateLimitError, wait: float) -> None:
        """Close the shared gate a 429 names as well, in the background (see `_close_gate`)."""
        if wait > 0 and self._shared_usable():
            self._spawn(self._publish(vehicle_id, exc.code, wait))

    async def _publish(self, vehicle_id: str, code: str | None, wait: float) -> None:
        shared = self.shared
        assert shared is not None
        try:
            if code == "SMARTCAR_API":
                await shared.block_app(wait, "RATE_LIMIT:SMARTCAR_API")
            else:
                await shared.block_vehicle(vehicle_id, wait, f"RATE_LIMIT:{code or 'VEHICLE'}")
        except StateUnavailableError as exc:
            self._shared_unavailable(exc)
        except Exception as exc:  # the local gate holds anyway; a task must not fail unread
            logger.warning("could not close the shared rate-limit gate: %s", exc)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self, timeout: float) -> None:
        """At close: let gate publications finish for up to ``timeout`` seconds, then cancel."""
        if not self._background:
            return
        tasks = list(self._background)
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    def _count(self, kind: Kind, cost: int) -> None:
        # Counted as sent, so that requests add up: http_requests ==
        # batches + single_gets + writes, and retries are some of them.
        if kind == "batch":
            self.counters.batches += 1
            self.counters.sub_requests += cost
        elif kind == "get":
            self.counters.single_gets += 1
        else:
            self.counters.writes += 1

    def _url(self, vehicle_id: str | None, path: str) -> URL | str:
        if vehicle_id is None:
            return self._origin.make(f"/v{API_VERSION}{path}")
        return self._origin.vehicle(f"v{API_VERSION}", vehicle_id, path)

    def _v3_url(self, vehicle_id: str, path: str) -> URL | str:
        return self._v3_origin.vehicle("v3", vehicle_id, path)

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
            self.counters.failed_requests += 1
            logger.debug("%s %s -> %s (%s) in %.3fs", method, path, status, error, latency)
        if self.hooks.on_response:
            self.hooks.response_received(
                ResponseReceived(method, path, vehicle_id, status, latency, error)
            )

    # ---------------------------------------------------- what a failure means

    async def _refreshed(self, source: TokenSource, refused: str, vehicle_id: str) -> str:
        """A 401 that a token source may cure: its fresh token, for one more attempt."""
        logger.info("401 for vehicle %s: refreshing its token once", vehicle_id)
        return await fetch_token(source.refresh(refused))

    def _retry_429(
        self, exc: RateLimitError, vehicle_id: str, path: str, attempt: int, retries: int
    ) -> bool:
        """Close the gate a 429 names; whether the request goes again behind it."""
        wait = self._close_gate(vehicle_id, exc, attempt)
        logger.warning(
            "rate limited (%s) %s: waiting %.1fs",
            exc.code,
            _scope(exc, vehicle_id),
            wait,
            extra=log_fields("rate_limited", vehicle_id, exc, wait=round(wait, 3)),
        )
        if attempt >= retries or wait > self._max_wait:
            return False
        self.hooks.retry_scheduled(vehicle_id, path, attempt + 1, exc, wait)
        return True

    def _retry_transient(
        self,
        exc: SmartcarError,
        method: str,
        path: str,
        vehicle_id: str,
        attempt: int,
        retries: int,
    ) -> float | None:
        """Seconds to back off before the request goes again, or None if ``exc`` is final."""
        if attempt >= retries or not is_transient(exc):
            return None
        attempt += 1
        delay = self.retry.backoff(attempt)
        self.hooks.retry_scheduled(vehicle_id, path, attempt, exc, delay)
        logger.info(
            "%s %s for vehicle %s failed (%s); retry %d in %.2fs",
            method,
            path,
            vehicle_id,
            type(exc).__name__,
            attempt,
            delay,
            extra=log_fields("retry", vehicle_id, exc, attempt=attempt, delay=round(delay, 3)),
        )
        return delay

    def _close_gate(self, vehicle_id: str, exc: RateLimitError, attempt: int) -> float:
        """Close the gate a 429 names (see `Gates.rate_limited`); return how long it stays shut."""
        self.counters.rate_limited += 1
        wait = self.gates.rate_limited(vehicle_id, exc, self.retry.backoff(attempt + 1))
        self.hooks.rate_limited(vehicle_id, exc.code, exc.retry_after, wait)
        if self.shared is not None:
            self._publish_gate(vehicle_id, exc, wait)
        return wait

    # ---------------------------------------------------------------- closing

    @contextlib.asynccontextmanager
    async def _pause(self) -> AsyncIterator[None]:
        """A wait before sending (gate, budget, backoff) that closing the client cuts short.

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

    def cancel_waits(self) -> None:
        """End every wait before a send: their callers get ClientClosedError.

        A wait for a concurrency place too: such a request is not on the wire,
        and would otherwise go out when a place frees up, after the close began.
        """
        self._limiter.close()
        for scope in list(self._pauses):
            scope.cancel()


def _scope(exc: RateLimitError, vehicle_id: str) -> str:
    return "application-wide" if exc.code == "SMARTCAR_API" else f"vehicle {vehicle_id}"


def _log_item_retry(
    vehicle_id: str, path: str, error: SmartcarError, attempt: int, wait: float
) -> None:
    if isinstance(error, RateLimitError):
        logger.warning(
            "rate limited (%s) %s, batch item %s: waiting %.1fs",
            error.code,
            _scope(error, vehicle_id),
            path,
            wait,
            extra=log_fields("rate_limited", vehicle_id, error, wait=round(wait, 3)),
        )
    else:
        logger.info(
            "batch item %s for vehicle %s failed (%s); retry %d in %.2fs",
            path,
            vehicle_id,
            type(error).__name__,
            attempt,
            wait,
            extra=log_fields("retry", vehicle_id, error, attempt=attempt, delay=round(wait, 3)),
        )


def _v3_headers(key: QueueKey) -> dict[str, str] | None:
    # v3 scopes an application token to one user by this header.
    return {"sc-user-id": key.user_id} if key.user_id is not None else None


def _no_transport() -> Transport:
    raise RuntimeError("this SendPolicy has no transport to send on")


async def fetch_token(pending: Awaitable[str]) -> str:
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
