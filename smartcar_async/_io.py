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
`SendPolicy`, both bounded by the handle's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import anyio

from ._coalescer import Coalescer, QueueKey
from ._converter import structure
from ._exceptions import APITimeoutError
from ._models import Meta
from ._observability import Counters
from ._policy import SendPolicy
from ._quota import BillingMeter
from ._transport import RawResponse

__all__ = ["ClientIO", "VehicleIO"]

T = TypeVar("T")


class VehicleIO(Protocol):
    """What a vehicle handle needs from the client that made it."""

    def check_usable(self) -> None:
        """Raise now, in the caller, if the client cannot serve a call from here."""

    def read(self, key: QueueKey, path: str, model: type[T]) -> Coroutine[Any, Any, T]:
        """The coalesced read of ``path``, as ``model``, for the caller to await."""
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

    __slots__ = ("_coalescer", "_counters", "_inflight", "_policy", "check_usable")

    def __init__(
        self,
        *,
        coalescer: Coalescer,
        policy: SendPolicy,
        counters: Counters,
        check_usable: Callable[[], None],
    ) -> None:
        self._coalescer = coalescer
        self._policy = policy
        self._counters = counters
        self.check_usable = check_usable
        # One marker per request sent on its own, for the close to wait on.
        self._inflight: set[asyncio.Future[None]] = set()

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
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight.add(marker)
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
            self._inflight.discard(marker)
        return resp

    async def drain(self, timeout: float) -> None:
        """Give the requests sent on their own ``timeout`` seconds to finish."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    """Bound a whole call; running out is an APITimeoutError like any other timeout."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise APITimeoutError(f"No answer within the call deadline of {seconds}s") from None
