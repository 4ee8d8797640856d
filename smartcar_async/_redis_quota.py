"""RedisState's billed-request counts and per-vehicle quotas (makes, recent poll times).

Keys, under the store's ``smartcar_async:{namespace}:`` prefix:

- ``billed:{YYYY-MM}``: a hash, vehicle id -> billed requests of that month,
  incremented with HINCRBY (atomic across workers). Each increment sets the
  key to expire 40 days later, so a month's counts outlive the month by about
  ten days and then go. The month is the caller's (from its UTC wall clock, see
  ``smartcar_async._quota``), not Redis' clock: a request is counted in the
  month its worker saw, which matters only in the seconds around midnight.
- ``quotas``: a hash, vehicle id -> ``{"make": ..., "polls": [...]}`` as JSON.

Functions take the redis-py client and the full keys; RedisState wraps each
call in its error mapping (unreachable -> StateUnavailableError).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._exceptions import StateError
from ._quota import VehicleQuota, check_count, check_month, check_quotas
from ._redis_core import RedisCore
from ._state import check_vehicle_id, check_vehicle_ids

if TYPE_CHECKING:
    import redis.asyncio as aioredis

#: How long a month's counts live after its last increment.
BILLED_TTL: Final = 40 * 86_400
_CHUNK: Final = 1000


async def add_billed(client: aioredis.Redis, key: str, vehicle_id: str, n: int) -> int:
    async with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, vehicle_id, n)
        pipe.expire(key, BILLED_TTL)
        total, _ = await pipe.execute()
    return int(total)


async def billed(client: aioredis.Redis, key: str, vehicle_id: str) -> int:
    value = await client.hget(key, vehicle_id)
    return 0 if value is None else int(value)


async def load_quotas(client: aioredis.Redis, key: str, ids: list[str]) -> dict[str, Any]:
    """The raw JSON text of each stored quota (parse it with `parse_quota`)."""
    if not ids:
        return {}
    async with client.pipeline(transaction=True) as pipe:
        for start in range(0, len(ids), _CHUNK):
            pipe.hmget(key, ids[start : start + _CHUNK])
        chunks = await pipe.execute()
    values = [value for chunk in chunks for value in chunk]
    return {vid: value for vid, value in zip(ids, values, strict=True) if value is not None}


async def save_quotas(
    client: aioredis.Redis, key: str, records: Mapping[str, VehicleQuota]
) -> None:
    items = [(vid, quota_text(q)) for vid, q in records.items()]
    if not items:
        return
    async with client.pipeline(transaction=True) as pipe:
        for start in range(0, len(items), _CHUNK):
            pipe.hset(key, mapping=dict(items[start : start + _CHUNK]))
        await pipe.execute()


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
        return await self._call("count billed requests", add_billed(self._client, key, vid, count))

    async def billed(self, vehicle_id: str, month: str) -> int:
        """The vehicle's billed requests of ``month`` (0 when none)."""
        vid, key = check_vehicle_id(vehicle_id), self._key("billed", check_month(month))
        return await self._call("read billed requests", billed(self._client, key, vid))

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleQuota]:
        """The stored make and recent poll times of ``vehicle_ids``; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        found = await self._call("load quotas", load_quotas(self._client, self._key("quotas"), ids))
        try:
            return {vid: parse_quota(value) for vid, value in found.items()}
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(f"redis {self._where}: a stored quota is malformed: {exc}") from None

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        """Replace these vehicles' makes and recent poll times in one MULTI/EXEC."""
        checked = check_quotas(records)
        await self._call("save quotas", save_quotas(self._client, self._key("quotas"), checked))
