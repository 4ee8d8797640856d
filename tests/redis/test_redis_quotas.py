"""RedisState's billed-request counts (HINCRBY, 40-day expiry) and quotas, on a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from smartcar_async import VehicleQuota


async def test_billed_requests_are_counted_atomically_and_expire(store: Any) -> None:
    totals = await asyncio.gather(*(store.add_billed("v1", "2025-03", 1) for _ in range(50)))
    assert sorted(totals) == list(range(1, 51))
    assert await store.billed("v1", "2025-03") == 50
    assert await store.billed("v1", "2025-04") == 0
    ttl = await store._client.ttl(store._key("billed", "2025-03"))
    assert 39 * 86_400 < ttl <= 40 * 86_400


async def test_quotas_round_trip(store: Any) -> None:
    await store.save_quotas(
        {"v1": VehicleQuota(make="Kia", polls=(2.0, 1.0)), "v2": VehicleQuota()}
    )
    assert await store.load_quotas(["v1", "v2", "v3"]) == {
        "v1": VehicleQuota(make="KIA", polls=(1.0, 2.0)),
        "v2": VehicleQuota(),
    }
