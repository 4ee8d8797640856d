"""The value types of the Redis store: what admit and claim answer, and the lock's error.

Re-exported by :mod:`smartcar_async.redis`, their public home.
"""

from __future__ import annotations

from typing import Literal

import attrs

from ._exceptions import StateError

__all__ = ["Admission", "Claim", "ClaimedVehicle", "LockTimeoutError"]


class LockTimeoutError(StateError):
    """The refresh lock was held by another worker for longer than the wait. Added in 0.1.0."""


@attrs.frozen
class Admission:
    """What :meth:`RedisState.admit` decided: sleep ``wait`` seconds, then...

    ``reason == "bucket"`` (``reserved``): the request's budget is reserved, send
    it after the wait. ``"app"`` or ``"vehicle"``: that gate is closed for
    ``wait`` more seconds and nothing was reserved: ask again after it.

    Added in 0.1.0.
    """

    wait: float
    reason: Literal["bucket", "app", "vehicle"]

    @property
    def reserved(self) -> bool:
        return self.reason == "bucket"


@attrs.frozen
class ClaimedVehicle:
    """One vehicle of a :class:`Claim`: its due time (Redis-clock epoch seconds) and the
    polls it has had so far (0 in the first round).

    Added in 0.1.0.
    """

    vehicle_id: str
    due: float
    polls_done: int


@attrs.frozen
class Claim:
    """The leases one :meth:`RedisState.claim` took.

    ``now`` and ``lease_until`` are Redis-clock epoch seconds; ``reclaimed`` is how
    many expired leases (anyone's) that call returned to the schedule first.

    Added in 0.1.0.
    """

    now: float
    lease_until: float
    vehicles: tuple[ClaimedVehicle, ...]
    reclaimed: int
