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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._quota import VehicleQuota

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
