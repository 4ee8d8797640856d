"""The Client: configuration, session ownership, lifecycle, and the HTTP layer under the queues."""

from __future__ import annotations

import asyncio
import enum
import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from ._batch import batch_body, parse_batch_envelope
from ._coalescer import Answer, Coalescer, QueueKey, RawItem
from ._exceptions import ClientClosedError, SmartcarError
from ._observability import (
    BatchHook,
    ClientStats,
    Counters,
    Hooks,
    ResponseHook,
    ResponseReceived,
    logger,
)
from ._transport import RawResponse, Transport
from ._version import __version__

if TYPE_CHECKING:
    from ._vehicle import Vehicle

__all__ = ["API_VERSION", "DEFAULT_API_ORIGIN", "Client"]

T = TypeVar("T")

DEFAULT_API_ORIGIN = "https://api.smartcar.com"
API_VERSION = "2.0"
#: Smartcar documents answers of up to 300 s; the official SDKs wait 310 s.
DEFAULT_TIMEOUT = 310.0
#: Long enough to catch reads issued a few event-loop turns apart, short
#: against Smartcar's 3 to 45 s answers (5 ms is at most 0.2% of that).
DEFAULT_BATCH_WINDOW = 0.005
DEFAULT_MAX_BATCH_SIZE = 25
UNIT_SYSTEMS = frozenset({"metric", "imperial"})


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
        batch_window: seconds a queue waits, from its first read, before it is
            flushed; ``0`` flushes at the next event-loop turn.
        max_batch_size: a queue flushes at once when it holds this many
            distinct paths; larger flushes are split.
        max_batches_per_vehicle: batches in flight at once for one vehicle
            queue; reads arriving meanwhile gather into the next batch.
        join_inflight: whether a read joins an identical read already in flight
            for the same vehicle instead of queueing a new one.
        close_timeout: seconds :meth:`aclose` lets in-flight requests finish.
        max_connections: connection pool size of an owned session.
        on_batch, on_response: observability hooks (see :class:`BatchFlushed`
            and :class:`ResponseReceived`).

    Added in 0.1.0.
    """

    def __init__(
        self,
        *,
        api_origin: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        batch_window: float = DEFAULT_BATCH_WINDOW,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_batches_per_vehicle: int = 1,
        join_inflight: bool = True,
        close_timeout: float = 10.0,
        max_connections: int = 100,
        user_agent: str | None = None,
        on_batch: Sequence[BatchHook] = (),
        on_response: Sequence[ResponseHook] = (),
    ) -> None:
        self._origin = _check_origin(
            api_origin or os.environ.get("SMARTCAR_API_ORIGIN") or DEFAULT_API_ORIGIN
        )
        self._timeout = _check_seconds("timeout", timeout, allow_none=True)
        window = _check_seconds("batch_window", batch_window)
        assert window is not None
        _check_positive_int("max_batch_size", max_batch_size)
        _check_positive_int("max_batches_per_vehicle", max_batches_per_vehicle)
        _check_positive_int("max_connections", max_connections)
        grace = _check_seconds("close_timeout", close_timeout)
        assert grace is not None
        self._close_timeout = grace
        self._max_connections = max_connections
        self._user_agent = user_agent or (
            f"smartcar-async/{__version__} (Python {platform.python_version()}; "
            f"aiohttp {aiohttp.__version__})"
        )
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._transport_obj: Transport | None = Transport(session) if session else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state = _State.UNOPENED
        self._counters = Counters()
        self._hooks = Hooks(on_batch, on_response)
        self._direct_inflight: set[asyncio.Future[None]] = set()
        self._coalescer = Coalescer(
            executor=self._execute_reads,
            window=window,
            max_batch_size=max_batch_size,
            max_flights_per_queue=max_batches_per_vehicle,
            join_inflight=join_inflight,
            counters=self._counters,
            hooks=self._hooks,
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
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
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
        access_token: str,
        unit_system: str = "metric",
        flags: Mapping[str, str | bool | int | float] | None = None,
    ) -> Vehicle:
        """A handle on one vehicle: no task, no I/O, cheap to keep by the thousand."""
        from ._vehicle import Vehicle

        return Vehicle(
            self, vehicle_id, access_token=access_token, unit_system=unit_system, flags=flags
        )

    # ------------------------------------------------------------- internals

    def _ensure_transport(self) -> Transport:
        if self._state is _State.CLOSED:
            raise ClientClosedError("The client is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "This client was first used in another event loop; create one client per loop"
            )
        if self._transport_obj is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
            self._transport_obj = Transport(self._session)
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

    async def _send(
        self,
        method: str,
        vehicle_id: str | None,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> RawResponse:
        """One HTTP exchange, counted and reported to the hooks."""
        transport = self._ensure_transport()
        self._counters.http_requests += 1
        started = time.perf_counter()
        try:
            resp = await transport.request(
                method,
                self._url(vehicle_id, path),
                headers=headers,
                params=params,
                json_body=json_body,
                timeout=self._timeout,
            )
        except SmartcarError as exc:
            self._report(method, path, vehicle_id, exc.status_code, started, type(exc).__name__)
            if self._state is _State.CLOSED and self._session is None:
                raise ClientClosedError("The client was closed during this request") from exc
            raise
        self._report(method, path, vehicle_id, resp.status, started, None)
        return resp

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
            logger.debug("%s %s -> %s (%s) in %.3fs", method, path, status, error, latency)
        if self._hooks.on_response:
            self._hooks.response_received(
                ResponseReceived(method, path, vehicle_id, status, latency, error)
            )

    async def _execute_reads(self, key: QueueKey, paths: tuple[str, ...]) -> Answer:
        """The coalescer's executor: a plain GET for one path, a batch POST for more."""
        token = _token_of(key)
        params = {"flags": key.flags} if key.flags else None
        if len(paths) == 1:
            self._counters.single_gets += 1
            resp = await self._send(
                "GET",
                key.vehicle_id,
                paths[0],
                headers=self._headers(token, key.unit_system),
                params=params,
            )
            return Answer(
                {paths[0]: RawItem(resp.status, resp.body, resp.headers)}, resp.request_id
            )
        self._counters.batches += 1
        self._counters.sub_requests += len(paths)
        logger.debug("batch for vehicle %s: %s", key.vehicle_id, ", ".join(paths))
        resp = await self._send(
            "POST",
            key.vehicle_id,
            "/batch",
            headers=self._headers(token, key.unit_system),
            params=params,
            json_body=batch_body(paths),
        )
        return parse_batch_envelope(resp.body, resp.request_id)

    async def _read(self, key: QueueKey, path: str, model: type[T]) -> T:
        if self._state is _State.CLOSED:
            raise ClientClosedError("The client is closed")
        return await self._coalescer.read(key, path, model)

    async def _direct(
        self,
        method: str,
        vehicle_id: str | None,
        path: str,
        *,
        token: str,
        unit_system: str | None,
        flags: str | None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
    ) -> RawResponse:
        """A request that bypasses the coalescer (writes, paged or filtered reads)."""
        if self._state is _State.CLOSED:
            raise ClientClosedError("The client is closed")
        if write:
            self._counters.writes += 1
        else:
            self._counters.logical_reads += 1
            self._counters.single_gets += 1
        query = dict(params or {})
        if flags:
            query["flags"] = flags
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._direct_inflight.add(marker)
        try:
            return await self._send(
                method,
                vehicle_id,
                path,
                headers=self._headers(token, unit_system),
                params=query or None,
                json_body=json_body,
            )
        finally:
            marker.set_result(None)
            self._direct_inflight.discard(marker)


def _token_of(key: QueueKey) -> str:
    auth = key.auth
    assert isinstance(auth, str)
    return auth


def _check_origin(origin: str) -> str:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"api_origin must be an http(s) origin, got {origin!r}")
    if parts.query or parts.fragment:
        raise ValueError("api_origin must not carry a query or fragment")
    return origin.rstrip("/")


def _check_seconds(name: str, value: float | None, *, allow_none: bool = False) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number of seconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
