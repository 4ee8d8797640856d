"""The shared schedule of a Redis store: vehicles by next-due time, shared out by leases.

:class:`RedisSchedule` is the part of :class:`~smartcar_async.redis.RedisState`
that implements :class:`~smartcar_async._shared_schedule.SharedSchedule` (see
the "schedule and leases" section of :mod:`smartcar_async.redis`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._exceptions import StateError
from ._redis_core import RedisCore
from ._redis_helpers import _US, _duration_us, _epoch_us, _nonempty, _seconds, _text
from ._redis_types import Claim, ClaimedVehicle
from ._state import check_vehicle_ids

__all__ = ["RedisSchedule"]


class RedisSchedule(RedisCore):
    """The schedule and lease methods of :class:`~smartcar_async.redis.RedisState`."""

    async def load_schedule(
        self,
        vehicle_ids: Iterable[str],
        *,
        first_due: float | None = None,
        rounds: int = 0,
    ) -> bool:
        """Put ``vehicle_ids`` on the shared schedule, once: True if this call loaded it.

        ``first_due``: Redis-clock epoch seconds (None: now). ``rounds``: polls per
        vehicle across all workers (0: no end). Idempotent: a later call with the
        same ids and rounds answers False and changes nothing; different ones
        raise :class:`StateError` (use another namespace, or :meth:`reset_schedule`).
        """
        ids = check_vehicle_ids(vehicle_ids)
        if isinstance(rounds, bool) or not isinstance(rounds, int):
            raise TypeError(f"rounds must be an int, not {type(rounds).__name__}")
        if rounds < 0:
            raise ValueError(f"rounds must be >= 0 (0: no end), not {rounds}")
        due = "" if first_due is None else str(_epoch_us("first_due", first_due))
        digest = hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()
        loaded = await self._script(
            "load the schedule",
            "LOAD_SCHEDULE",
            [self._key("clock"), self._key("schedule"), self._key("schedule", "meta")],
            [digest, rounds, due, *ids],
        )
        if int(loaded) < 0:
            raise StateError(
                f"redis {self._where}: namespace {self._namespace!r} already has a schedule "
                "with other vehicles or another rounds count; use another namespace "
                "(--fleet-name), or reset the schedule first"
            )
        return int(loaded) == 1

    async def reset_schedule(self) -> None:
        """Forget the schedule, leases and poll counts (tokens, records and gates stay)."""
        keys = [self._key(*part) for part in _SCHEDULE_KEYS]
        await self._call("reset the schedule", self._client.delete(*keys))

    async def claim(self, worker_id: str, *, max_n: int, lease: float, ahead: float = 0.0) -> Claim:
        """Lease up to ``max_n`` vehicles due by Redis' now + ``ahead``, earliest first.

        One script call: expired leases (anyone's, ``until <= now``) go back to
        the schedule first, then the due vehicles move to the lease set until
        now + ``lease`` seconds, held by ``worker_id``.
        """
        worker = _nonempty("worker_id", worker_id)
        if isinstance(max_n, bool) or not isinstance(max_n, int):
            raise TypeError(f"max_n must be an int, not {type(max_n).__name__}")
        if max_n < 0:
            raise ValueError(f"max_n must be >= 0, not {max_n}")
        lease_us = _duration_us("lease", lease, allow_zero=False)
        ahead_us = _duration_us("ahead", ahead, allow_zero=True)
        reply = await self._script(
            "claim vehicles",
            "CLAIM",
            [self._key("clock"), *self._lease_keys(), self._key("rounds")],
            [worker, ahead_us, max_n, lease_us],
        )
        try:
            now, until, reclaimed, *rest = reply
            vehicles = tuple(
                ClaimedVehicle(
                    vehicle_id=_text(rest[i]),
                    due=_seconds(rest[i + 1]),
                    polls_done=int(rest[i + 2]),
                )
                for i in range(0, len(rest), 3)
            )
            return Claim(
                now=_seconds(now),
                lease_until=_seconds(until),
                vehicles=vehicles,
                reclaimed=int(reclaimed),
            )
        except (TypeError, ValueError, IndexError):
            raise StateError(f"redis {self._where}: unexpected answer to a claim") from None

    async def reschedule(self, vehicle_id: str, next_due: float, worker_id: str) -> bool:
        """Complete ``worker_id``'s lease of ``vehicle_id``: count the poll and schedule the
        next at ``next_due`` (Redis-clock epoch seconds). False if the lease is no longer
        that worker's (it expired: another worker may poll the vehicle)."""
        done = await self.reschedule_many(worker_id, {vehicle_id: next_due})
        return done[vehicle_id] is not None

    async def reschedule_many(
        self,
        worker_id: str,
        next_due: Mapping[str, float],
        *,
        claimed: Mapping[str, float] | None = None,
    ) -> dict[str, int | None]:
        """:meth:`reschedule` for many vehicles in one call: vehicle id -> the polls it has
        had now (``rounds_done``), or None where the lease was refused.

        ``claimed``: vehicle id -> the ``due`` its lease was claimed at
        (:attr:`ClaimedVehicle.due`); a lease claimed at another due time is refused.
        Pass it when a reschedule may be sent again after an outage: the first attempt
        may have taken effect, and the worker may since hold a new lease of the vehicle.
        """
        worker = _nonempty("worker_id", worker_id)
        if not isinstance(next_due, Mapping):
            raise TypeError(f"next_due must be a mapping, not {type(next_due).__name__}")
        if claimed is not None and not isinstance(claimed, Mapping):
            raise TypeError(f"claimed must be a mapping, not {type(claimed).__name__}")
        args: list[str | int] = [worker]
        for vid, due in next_due.items():
            at = "" if claimed is None or vid not in claimed else claimed[vid]
            args += [
                _nonempty("a vehicle id", vid),
                _epoch_us("next_due", due),
                "" if at == "" else _epoch_us("claimed", at),
            ]
        if not next_due:
            return {}
        keys = [self._key("clock"), *self._lease_keys(), self._key("rounds")]
        reply = await self._script(
            "reschedule vehicles", "RESCHEDULE", [*keys, self._key("schedule", "meta")], args
        )
        return {
            vid: (None if int(done) < 0 else int(done))
            for vid, done in zip(next_due, reply, strict=True)
        }

    async def release(self, worker_id: str, vehicle_ids: Iterable[str] | None = None) -> int:
        """Give ``worker_id``'s leases (all, or these) back to the schedule unpolled, at
        their old due time; how many it gave back. For a worker leaving."""
        worker = _nonempty("worker_id", worker_id)
        ids = [] if vehicle_ids is None else check_vehicle_ids(vehicle_ids)
        if vehicle_ids is not None and not ids:
            return 0
        given = await self._script(
            "release leases", "RELEASE", [self._key("clock"), *self._lease_keys()], [worker, *ids]
        )
        return int(given)

    async def renew(self, worker_id: str, vehicle_ids: Iterable[str], lease: float) -> int:
        """Extend ``worker_id``'s unexpired leases of ``vehicle_ids`` to now + ``lease``;
        how many were still held and extended."""
        worker = _nonempty("worker_id", worker_id)
        ids = check_vehicle_ids(vehicle_ids)
        lease_us = _duration_us("lease", lease, allow_zero=False)
        if not ids:
            return 0
        renewed = await self._script(
            "renew leases",
            "RENEW",
            [self._key("clock"), self._key("leases"), self._key("leases", "info")],
            [worker, lease_us, *ids],
        )
        return int(renewed)

    async def rounds_done(self, vehicle_id: str) -> int:
        """How many polls of ``vehicle_id`` were completed (rescheduled), by any worker."""
        vid = _nonempty("vehicle_id", vehicle_id)
        done = await self._call("read a poll count", self._client.hget(self._key("rounds"), vid))
        return 0 if done is None else int(done)

    async def remaining(self) -> int:
        """Vehicles with a poll left (scheduled or leased): 0 once all had their rounds."""

        async def count() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zcard(self._key("schedule"))
                pipe.zcard(self._key("leases"))
                scheduled, leased = await pipe.execute()
            return int(scheduled) + int(leased)

        return await self._call("count the vehicles left", count())

    async def next_due(self) -> float | None:
        """When a claim may next find work (Redis-clock epoch seconds): the earliest due
        vehicle or lease expiry, whichever comes first; None when no vehicle has a poll left.

        One round trip; a worker with nothing to claim sleeps until then."""

        async def earliest() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrange(self._key("schedule"), 0, 0, withscores=True)
                pipe.zrange(self._key("leases"), 0, 0, withscores=True)
                return await pipe.execute()

        heads = await self._call("read the schedule", earliest())
        try:
            scores = [float(head[0][1]) for head in heads if head]
        except (TypeError, ValueError, IndexError):
            raise StateError(f"redis {self._where}: unexpected answer from the schedule") from None
        return min(scores) / _US if scores else None

    async def schedule_loaded(self) -> bool:
        """Whether a schedule is loaded under this namespace (False after :meth:`reset_schedule`,
        or after a Redis restart that kept nothing)."""
        found = await self._call(
            "read the schedule", self._client.exists(self._key("schedule", "meta"))
        )
        return int(found) == 1

    def _lease_keys(self) -> list[str]:
        return [self._key("schedule"), self._key("leases"), self._key("leases", "info")]


_SCHEDULE_KEYS: Final = (
    ("schedule",),
    ("schedule", "meta"),
    ("leases",),
    ("leases", "info"),
    ("rounds",),
)
