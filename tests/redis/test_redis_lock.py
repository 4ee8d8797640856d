"""The token refresh lock: owner-only release, expiry, waiting, and the refresh protocol
surviving a lock that expires mid-refresh (the compare-and-swap keeps exactly one pair)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis_support import require_redis_py

require_redis_py()

from state_support import SECRET, pair  # noqa: E402

from smartcar_async import StateError, StoredTokens, token_lineage  # noqa: E402
from smartcar_async.redis import LockTimeoutError, RedisState  # noqa: E402

LINEAGE = token_lineage(f"{SECRET}-refresh-0")


async def test_only_the_owner_releases(store: RedisState) -> None:
    first = store.lock(LINEAGE, ttl=5)
    second = store.lock(LINEAGE, ttl=5)
    assert await first.try_acquire()
    assert not await second.try_acquire()
    assert await second.release() is False  # never held: nothing to release
    assert await store._client.exists(first._key)
    assert await first.release() is True
    assert await second.try_acquire()
    assert await second.release()
    assert not await store._client.exists(first._key)


async def test_an_expired_lock_is_taken_and_the_late_release_leaves_it(
    store: RedisState, caplog: pytest.LogCaptureFixture
) -> None:
    slow = store.lock(LINEAGE, ttl=0.1)
    assert await slow.try_acquire()
    await asyncio.sleep(0.2)
    fast = store.lock(LINEAGE, ttl=5)
    assert await fast.try_acquire()
    assert await slow.release() is False  # compare-and-delete: not ours any more
    assert "expired before its release" in caplog.text
    assert await slow.extend() is False
    assert await store._client.get(fast._key) == fast._owner.encode()
    assert await fast.release()


async def test_extend_keeps_it(store: RedisState) -> None:
    held = store.lock(LINEAGE, ttl=0.2)
    assert await held.try_acquire()
    assert await held.extend(5)
    await asyncio.sleep(0.3)
    assert not await store.lock(LINEAGE).try_acquire()
    assert await held.release()


async def test_waiters_get_it_when_it_is_released(store: RedisState) -> None:
    order: list[str] = []

    async def holder() -> None:
        async with store.lock(LINEAGE, ttl=5) as held:
            assert held.held
            order.append("first in")
            await asyncio.sleep(0.15)
            order.append("first out")
        assert not held.held

    async def waiter() -> None:
        await asyncio.sleep(0.02)
        async with store.lock(LINEAGE, ttl=5, wait=5):
            order.append("second in")

    await asyncio.gather(holder(), waiter())
    assert order == ["first in", "first out", "second in"]


async def test_a_wait_too_long_is_a_lock_timeout(store: RedisState) -> None:
    async with store.lock(LINEAGE, ttl=5):
        with pytest.raises(LockTimeoutError, match="still held") as caught:
            async with store.lock(LINEAGE, wait=0.1):
                pass
    assert isinstance(caught.value, StateError)
    with pytest.raises(RuntimeError, match="already held"):
        async with store.lock(LINEAGE) as held:
            await held.try_acquire()


async def test_the_lock_repr_hides_its_owner_token(store: RedisState) -> None:
    held = store.lock(LINEAGE)
    assert held._owner not in repr(held)
    assert LINEAGE in repr(held)


async def refresh(
    store: RedisState, ttl: float, exchange_time: float, minted: str, log: list[str]
) -> StoredTokens:
    """The documented protocol: lock, re-read, refresh, compare-and-swap (or use the stored)."""
    async with store.lock(LINEAGE, ttl=ttl, wait=5):
        current = await store.load_tokens(LINEAGE)
        assert current is not None
        if current.refresh_token != pair(0).refresh_token:
            log.append(f"{minted}: already refreshed")
            return current
        log.append(f"{minted}: spends {current.refresh_token[-9:]}")
        await asyncio.sleep(exchange_time)  # the token endpoint, slowly
        new = pair(minted)
        if await store.save_tokens(LINEAGE, new, replacing=current.refresh_token):
            log.append(f"{minted}: saved")
            return new
        log.append(f"{minted}: stale, uses the stored pair")
        stored = await store.load_tokens(LINEAGE)
        assert stored is not None
        return stored


async def test_a_lock_expiring_mid_refresh_loses_no_pair(store: RedisState) -> None:
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    log: list[str] = []

    async def late_second() -> StoredTokens:
        await asyncio.sleep(0.15)  # after the slow worker's lock expired
        return await refresh(store, ttl=5, exchange_time=0.0, minted="fast", log=log)

    slow, fast = await asyncio.gather(
        refresh(store, ttl=0.1, exchange_time=0.4, minted="slow", log=log), late_second()
    )
    # Both spent token 0 (the lock had expired); the first swap won, the stale writer
    # adopted it: one stored pair, which every worker uses.
    assert log == [
        "slow: spends refresh-0",
        "fast: spends refresh-0",
        "fast: saved",
        "slow: stale, uses the stored pair",
    ]
    assert slow == fast == pair("fast") == await store.load_tokens(LINEAGE)
    # The next refresher sees the rotated pair and does not spend it again.
    assert await refresh(store, ttl=5, exchange_time=0, minted="third", log=log) == pair("fast")
    assert log[-1] == "third: already refreshed"


async def test_no_lock_token_in_logs(store: RedisState, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    held = store.lock(LINEAGE, ttl=0.05)
    async with held:
        await asyncio.sleep(0.1)
    assert caplog.records
    assert all(held._owner not in r.getMessage() for r in caplog.records)
