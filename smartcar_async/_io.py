"""The one interface vehicles and make groups send through, and the client's implementation.

A `Vehicle` (and ``car.tesla`` and the other make groups) knows nothing of
the `Client`: it holds a `VehicleIO` and its queue key, and every call it
makes is one of three:

* `VehicleIO.read`: a coalesced GET of one path, answered as a model;
* `VehicleIO.send`: a request sent on its own (a write, a paged or filtered
  read), under the same send policy;
* `VehicleIO.exchange`: the same as `send`, answered as the raw response
  (a v3 command reads its HTTP status: 200 done, 202 held);
* `VehicleIO.check_usable`: raise now if the client cannot serve a call.

`ClientIO` is the client's: reads go to its coalescer, requests to its
`SendPolicy`, both bounded by the handle's deadline. A handle with
``max_age`` holds a `ReusingIO` around it instead, which asks the
client's `ReadingCache` before the coalescer; a handle without one pays
nothing for the cache. Every write drops what it may change from the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio

from ._coalescer import Coalescer, QueueKey
from ._converter import structure
from ._exceptions import APITimeoutError, ClientClosedError, SmartcarError
from ._models import Meta
from ._observability import Counters
from ._policy import SendPolicy
from ._quota import BillingMeter
from ._reuse import ReadingCache, scope_of
from ._transport import RawResponse

__all__ = ["ClientIO", "ReusingIO", "VehicleIO"]

T = TypeVar("T")


class VehicleIO(Protocol):
    """What a vehicle handle needs from the client that made it."""

    @property
    def max_age(self) -> float | None:
        """Seconds a stored answer may be reused for reads through this IO (None: never)."""
        ...

    def with_max_age(self, max_age: float | None) -> VehicleIO:
        """This IO with another ``max_age``."""
        ...

    @property
    def billing(self) -> BillingMeter:
        """The client's per-vehicle billed-request meter (a budgeted poller reads it)."""
        ...

    def check_usable(self) -> None:
        """Raise now, in the caller, if the client cannot serve a call from here."""

    def read(self, key: QueueKey, path: str, model: type[T]) -> Coroutine[Any, Any, T]:
        """The coalesced read of ``path``, as ``model``, for the caller to await."""
        ...

    def read_many(
        self, key: QueueKey, wanted: Sequence[tuple[str, type[Any]]]
    ) -> Coroutine[Any, Any, list[Any]]:
        """Coalesced reads of several paths, awaited together: each path's
        model, or its `SmartcarError`, in its place."""
        ...

    def send(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        unit_system: str | None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
        auth: str | None = None,
        model: type[T],
    ) -> Coroutine[Any, Any, T]:
        """A request that bypasses the coalescer, answered as ``model``.

        ``write`` requests are never retried; ``auth`` replaces the key's
        token (the AMT of unsubscribe).
        """
        ...

    def exchange(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
    ) -> Coroutine[Any, Any, RawResponse]:
        """`send` without a model: the 2xx answer as received."""
        ...


class ClientIO:
    """The `VehicleIO` a client hands its vehicles."""

    __slots__ = ("_coalescer", "_counters", "_inflight", "_policy", "check_usable", "readings")

    def __init__(
        self,
        *,
        coalescer: Coalescer,
        policy: SendPolicy,
        counters: Counters,
        check_usable: Callable[[], None],
        readings: ReadingCache | None = None,
    ) -> None:
        self._coalescer = coalescer
        self._policy = policy
        self._counters = counters
        self.check_usable = check_usable
        self.readings = readings if readings is not None else ReadingCache(0, counters)
        # Per request sent on its own: a marker for the close to wait on, and
        # the scope it cancels when the request outlives the close's grace.
        self._inflight: dict[asyncio.Future[None], anyio.CancelScope] = {}

    @property
    def max_age(self) -> float | None:
        return None

    def with_max_age(self, max_age: float | None) -> VehicleIO:
        return self if max_age is None else ReusingIO(self, self.readings, max_age)

    @property
    def billing(self) -> BillingMeter:
        """The client's per-vehicle billed-request meter (a budgeted poller reads it)."""
        return self._policy.meter

    def read(self, key: QueueKey, path: str, model: type[T]) -> Coroutine[Any, Any, T]:
        """The coalesced read, for the caller's coroutine to await.

        A plain function, so a read costs one coroutine frame fewer; it is
        only ever called from inside a coroutine, so raising here still
        raises where the caller awaits.
        """
        self.check_usable()
        if key.options.deadline is None:  # the common case: no cancel scope to pay for
            return self._coalescer.read(key, path, model)
        return self._read_within(key.options.deadline, key, path, model)

    async def _read_within(self, deadline: float, key: QueueKey, path: str, model: type[T]) -> T:
        with _deadline(deadline):
            return await self._coalescer.read(key, path, model)

    def read_many(
        self, key: QueueKey, wanted: Sequence[tuple[str, type[Any]]]
    ) -> Coroutine[Any, Any, list[Any]]:
        self.check_usable()
        if key.options.deadline is None:
            return self._coalescer.read_many(key, wanted)
        return self._read_many_within(key.options.deadline, key, wanted)

    async def _read_many_within(
        self, deadline: float, key: QueueKey, wanted: Sequence[tuple[str, type[Any]]]
    ) -> list[Any]:
        with _deadline(deadline):
            return await self._coalescer.read_many(key, wanted)

    async def send(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        unit_system: str | None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
        auth: str | None = None,
        model: type[T],
    ) -> T:
        resp = await self.exchange(
            method,
            key,
            path,
            unit_system=unit_system,
            params=params,
            json_body=json_body,
            write=write,
            auth=auth,
        )
        return structure(model, resp.body, Meta.from_headers(resp.headers))

    async def exchange(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        unit_system: str | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
        auth: str | None = None,
    ) -> RawResponse:
        self.check_usable()
        if not write:
            self._counters.logical_reads += 1
        error = self._policy.fail_fast(key.vehicle_id)
        if error is not None:
            raise error
        query = dict(params or {})
        if key.flags:
            query["flags"] = key.flags
        readings = self.readings if write and self.readings.used else None
        if readings is not None:  # before: no read may reuse what the write is changing
            readings.drop_for_write(key.vehicle_id, method, path)
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with anyio.CancelScope() as closing:
            self._inflight[marker] = closing
            try:
                with _deadline(key.options.deadline):
                    resp = await self._policy.send(
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
                del self._inflight[marker]
                if readings is not None:  # after: what was read meanwhile predates the write
                    readings.drop_for_write(key.vehicle_id, method, path)
        if closing.cancelled_caught:
            raise ClientClosedError("The client was closed before this request was answered")
        return resp

    async def drain(self, timeout: float) -> None:
        """Give the requests sent on their own ``timeout`` seconds to finish, then cancel them.

        Cancelled, not left to the session's close: one may be waiting for
        something other than the wire (a token source), and would outlive the
        client, its caller never answered.
        """
        if not self._inflight:
            return
        _done, left = await asyncio.wait(set(self._inflight), timeout=timeout)
        for marker in left:
            scope = self._inflight.get(marker)
            if scope is not None:
                scope.cancel()
        if left:
            await asyncio.wait(left)


class ReusingIO:
    """The `VehicleIO` of a handle with ``max_age``: the client's, with the cache asked first."""

    __slots__ = ("_cache", "_io", "_key", "_scope", "max_age")

    def __init__(self, io: VehicleIO, cache: ReadingCache, max_age: float) -> None:
        self._io = io
        self._cache = cache
        cache.used = True
        self.max_age: float | None = max_age
        self._key: QueueKey | None = None
        self._scope: tuple[object, ...] = ()

    @property
    def readings(self) -> ReadingCache:
        return self._cache

    @property
    def billing(self) -> BillingMeter:
        # What a reused read saves is never billed; what misses is, on the client's meter.
        return self._io.billing

    def check_usable(self) -> None:
        self._io.check_usable()

    def with_max_age(self, max_age: float | None) -> VehicleIO:
        return self._io.with_max_age(max_age)

    def _scope_of(self, key: QueueKey) -> tuple[object, ...]:
        if key is not self._key:  # one handle, one key: computed once
            self._scope = scope_of(key)
            self._key = key
        return self._scope

    def read(self, key: QueueKey, path: str, model: type[T]) -> Coroutine[Any, Any, T]:
        self._io.check_usable()
        scope = self._scope_of(key)
        max_age = self.max_age
        assert max_age is not None
        hit = self._cache.reuse(key, scope, path, model, max_age)
        if hit is not None:
            return _ready(hit)
        return self._fill(key, scope, path, model)

    async def read_many(self, key: QueueKey, wanted: Sequence[tuple[str, type[Any]]]) -> list[Any]:
        # Each read through the cache on its own (each checks the client is usable): a
        # fresh answer costs no request.
        results = await asyncio.gather(
            *[self.read(key, path, model) for path, model in wanted], return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, SmartcarError):
                raise result
        return results

    async def _fill(self, key: QueueKey, scope: tuple[object, ...], path: str, model: type[T]) -> T:
        since = self._cache.epoch()
        # The read's coroutine is made here, not by `read`: a task cancelled before
        # its first step (a gather's, in read_many) never runs this frame, and a
        # coroutine made outside it would be left never awaited.
        value = await self._io.read(key, path, model)
        self._cache.store(key, scope, path, value, since)
        return value

    def send(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        unit_system: str | None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
        auth: str | None = None,
        model: type[T],
    ) -> Coroutine[Any, Any, T]:
        return self._io.send(
            method,
            key,
            path,
            unit_system=unit_system,
            params=params,
            json_body=json_body,
            write=write,
            auth=auth,
            model=model,
        )

    def exchange(
        self,
        method: str,
        key: QueueKey,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        write: bool,
    ) -> Coroutine[Any, Any, RawResponse]:
        return self._io.exchange(method, key, path, params=params, json_body=json_body, write=write)


async def _ready(value: T) -> T:
    return value


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Bound a whole call; running out is an APITimeoutError like any other timeout."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise APITimeoutError(f"No answer within the call deadline of {seconds}s") from None
