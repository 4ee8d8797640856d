"""RedisState's billed-request counts and per-vehicle quotas (makes, recent poll times).

Keys, under the store's ``smartcar_async:{namespace}:`` prefix:

- ``billed:{YYYY-MM}``: a hash, vehicle id -> billed requests of that month,
  incremented with HINCRBY (atomic across workers). Each increment sets the
  key to expire 40 days later, so a month's counts outlive the month by about
  ten days and then go. The month is the caller's (from its UTC wall clock, see
  ``smartcar_async._quota``), not Redis' clock: a request is counted in the
  month its worker saw, which matters only in the seconds around midnight.
- ``quotas``: a hash, vehicle id -> ``{"make": ..., "polls": [...]}`` as JSON.

`RedisQuotas` is the part of :class:`~smartcar_async.redis.RedisState` that
keeps them; every call goes through its error mapping (unreachable ->
StateUnavailableError).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Final

from ._exceptions import StateError
from ._quota import VehicleQuota, check_count, check_month, check_quotas
from ._redis_core import RedisCore
from ._state import check_vehicle_id, check_vehicle_ids

#: How long a month's counts live after its last increment.
BILLED_TTL: Final = 40 * 86_400


def quota_text(quota: VehicleQuota) -> str:
    return json.dumps(
        {"make": quota.make, "polls": list(quota.polls)}, separators=(",", ":"), allow_nan=False
    )


def parse_quota(value: object) -> VehicleQuota:
    """A stored quota; TypeError/ValueError when it is malformed."""
    text = value.decode() if isinstance(value, bytes) else value
    if not isinstance(text, str):
        raise TypeError("a stored quota is not text")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError("a stored quota is not a JSON object")
    polls = data.get("polls")
    if not isinstance(polls, list):
        raise TypeError("a stored quota's polls are not a list")
    return VehicleQuota(make=data.get("make"), polls=tuple(polls))


class RedisQuotas(RedisCore):
    """Billed-request counts and per-vehicle quotas of :class:`~smartcar_async.redis.RedisState`."""

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        """Add ``n`` to the vehicle's billed requests of ``month`` (HINCRBY); the new total."""
        vid, key = check_vehicle_id(vehicle_id), self._key("billed", check_month(month))
        count = check_count("n", n, minimum=0)

        async def add() -> int:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, vid, count)
                pipe.expire(key, BILLED_TTL)
                total, _ = await pipe.execute()
            return int(total)

        return await self._call("count billed requests", add())

    async def billed(self, vehicle_id: str, month: str) -> int:
        """The vehicle's billed requests of ``month`` (0 when none)."""
        vid, key = check_vehicle_id(vehicle_id), self._key("billed", check_month(month))
        value = await self._call("read billed requests", self._client.hget(key, vid))
        if value is None:
            return 0
        try:
            # HINCRBY refuses what is not a 64-bit int; HSET by another writer does not.
            count = int(value)
        except ValueError:
            count = -1
        if count < 0:  # as SQLiteState reads its own table
            raise StateError(
                f"redis {self._where}: the billed requests of vehicle {vid!r} are not a count"
            )
        return count

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleQuota]:
        """The stored make and recent poll times of ``vehicle_ids``; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        found = await self._hmget_all("load quotas", self._key("quotas"), ids)
        try:
            return {vid: parse_quota(value) for vid, value in found.items()}
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(f"redis {self._where}: a stored quota is malformed: {exc}") from None

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        """Replace these vehicles' makes and recent poll times in one MULTI/EXEC."""
        items = [(vid, quota_text(q)) for vid, q in check_quotas(records).items()]
        await self._hset_all("save quotas", self._key("quotas"), items)
