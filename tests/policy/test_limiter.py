"""The request limiter: places handed over first come, first served, none lost to cancellation."""

from __future__ import annotations

import asyncio

import pytest

from smartcar_async._limiter import Limiter


async def _holder(limiter: Limiter, name: str, order: list[str], hold: asyncio.Event) -> None:
    await limiter.acquire()
    try:
        order.append(name)
        await hold.wait()
    finally:
        limiter.release()


async def test_at_most_size_hold_a_place_and_waiters_go_in_arrival_order() -> None:
    limiter, hold = Limiter(2), asyncio.Event()
    order: list[str] = []
    tasks = [asyncio.create_task(_holder(limiter, str(i), order, hold)) for i in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["0", "1"]
    assert limiter.free == 0
    hold.set()
    await asyncio.gather(*tasks)
    assert order == ["0", "1", "2", "3", "4"]
    assert limiter.free == 2


async def test_a_waiter_cancelled_while_waiting_is_skipped() -> None:
    limiter = Limiter(1)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    limiter.release()  # goes past the cancelled waiter to the next one
    await asyncio.wait_for(second, 1)
    assert limiter.free == 0
    limiter.release()
    assert limiter.free == 1


async def test_a_waiter_cancelled_after_it_was_handed_a_place_passes_it_on() -> None:
    limiter = Limiter(1)
    await limiter.acquire()
    first = asyncio.create_task(limiter.acquire())
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    limiter.release()  # hands the place to `first`, which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # the place went on, not lost
    limiter.release()
    assert limiter.free == 1


async def test_a_burst_behind_a_small_limit_leaves_every_place_free() -> None:
    limiter, peak, inside = Limiter(3), [0], [0]

    async def one() -> None:
        await limiter.acquire()
        try:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            await asyncio.sleep(0)
        finally:
            inside[0] -= 1
            limiter.release()

    await asyncio.gather(*(one() for _ in range(500)))
    assert peak[0] == 3
    assert limiter.free == 3
