"""What a shared store can do beyond the StateStore protocol, as capabilities the core asks for.

The core (the send policy, the stored token source) must work with any store
and must never import an optional backend, so it recognises a shared store by
what it can do, not by its class. :class:`~smartcar_async.redis.RedisState`
satisfies both protocols; ``SQLiteState`` satisfies neither (one process needs
no shared bucket, and its token swaps are already serialised by the file).

- :class:`SharedLimits`: the application's request bucket and the rate-limit
  gates, shared by every worker (see ``smartcar_async.redis`` for the scripts).
- :class:`RefreshLocks`: a lock per token lineage, so that one process in the
  fleet refreshes a user's tokens while the others wait and re-read.

A capability method that cannot reach its store raises
:class:`~smartcar_async.StateUnavailableError`; callers then carry on with
what they hold locally (see ``SendPolicy``), except that a token is never
refreshed without the lock.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Admitted", "RefreshLocks", "SharedLimits", "SharedLock"]


class Admitted(Protocol):
    """The answer of :meth:`SharedLimits.admit`: sleep ``wait`` seconds, then...

    ``reserved``: send (the budget is taken); otherwise the gate ``reason``
    names (``"app"`` or ``"vehicle"``) is closed for ``wait`` more seconds.
    """

    @property
    def wait(self) -> float: ...

    @property
    def reason(self) -> str: ...

    @property
    def reserved(self) -> bool: ...


@runtime_checkable
class SharedLimits(Protocol):
    """The application bucket and rate-limit gates, shared across processes.

    ``capacity`` is the bucket's: a cost above it could never be granted, so
    the policy charges a larger batch the whole bucket, as the local one does.
    """

    @property
    def capacity(self) -> int: ...

    async def admit(self, cost: int = 1, vehicle_id: str | None = None) -> Admitted: ...

    async def block_vehicle(self, vehicle_id: str, seconds: float, code: str) -> bool: ...

    async def block_app(self, seconds: float, code: str = ...) -> bool: ...

    async def blocked_for(self, vehicle_id: str | None = None) -> float: ...

    async def ping(self) -> bool: ...


class SharedLock(Protocol):
    """One lineage's refresh lock: taken by ``acquire`` (bounded wait), given back by ``release``.

    ``acquire`` raises a ``StateError`` when it cannot take the lock in time
    (``StateUnavailableError`` when the store is unreachable); ``release``
    answers False when the lock had expired, and may raise a ``StateError``.
    """

    async def acquire(self) -> None: ...

    async def release(self) -> bool: ...


@runtime_checkable
class RefreshLocks(Protocol):
    """A store that can lock a token lineage across processes."""

    def lock(self, lineage: str, *, ttl: float = ..., wait: float = ...) -> SharedLock: ...
