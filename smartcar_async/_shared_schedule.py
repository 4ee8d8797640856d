"""The seam between the poller and a shared schedule (Redis), without importing Redis.

A :class:`SharedSchedule` is a state store that also shares a fleet's polls out
among many workers by leases: a schedule of vehicles by next-due time, from
which a worker claims a batch of due vehicles in one call, polls them, and
reschedules them. :class:`~smartcar_async.redis.RedisState` is one; the poller
only knows this protocol (and :class:`ClaimedBatch`'s shape), so the core never
imports ``redis``.

Every time here is the shared store's clock (epoch seconds), never the worker's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["ClaimedBatch", "ClaimedSlot", "SharedSchedule"]


class ClaimedSlot(Protocol):
    """One claimed vehicle: its due time and the polls it has had so far (its round - 1)."""

    @property
    def vehicle_id(self) -> str: ...

    @property
    def due(self) -> float: ...

    @property
    def polls_done(self) -> int: ...


class ClaimedBatch(Protocol):
    """What one claim took: the store's ``now`` and the vehicles leased until ``lease_until``."""

    @property
    def now(self) -> float: ...

    @property
    def lease_until(self) -> float: ...

    @property
    def vehicles(self) -> Sequence[ClaimedSlot]: ...


@runtime_checkable
class SharedSchedule(Protocol):
    """A store whose schedule many workers share by leases (see ``smartcar_async.redis``)."""

    async def load_schedule(
        self, vehicle_ids: Iterable[str], *, first_due: float | None = None, rounds: int = 0
    ) -> bool: ...

    async def claim(
        self, worker_id: str, *, max_n: int, lease: float, ahead: float = 0.0
    ) -> ClaimedBatch: ...

    async def reschedule_many(
        self,
        worker_id: str,
        next_due: Mapping[str, float],
        *,
        claimed: Mapping[str, float] | None = None,
    ) -> dict[str, int | None]: ...

    async def renew(self, worker_id: str, vehicle_ids: Iterable[str], lease: float) -> int: ...

    async def release(self, worker_id: str, vehicle_ids: Iterable[str] | None = None) -> int: ...

    async def next_due(self) -> float | None: ...

    async def schedule_loaded(self) -> bool: ...
