"""aclose() while the resilience layer is waiting: gates, pacing and backoff.

A request that waits for a rate-limit gate, a budget token or a retry
backoff is not on the wire; it can never be sent once the client is closed,
so aclose() should fail it at once rather than sit out the wait (up to
``close_timeout``). Upper bounds here are at least 0.5 s below the wait.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from policy_support import vehicle_requests, wait_until
from support import TOKEN, make_client

import smartcar_async as sc
from smartcar_async.testing import Emulator


async def _close_and_time(client: sc.Client) -> float:
    started = time.monotonic()
    await client.aclose()
    return time.monotonic() - started


@pytest.mark.parametrize("call", ["read", "write"])
async def test_aclose_does_not_wait_out_a_rate_limit_gate(
    emu: Emulator, ids: list[str], call: str
) -> None:
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=1, times=1)
    client = make_client(emu.url, max_retry_after=5, close_timeout=5)
    async with client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(vehicle_requests(emu)) == 1, "the 429")
        await asyncio.sleep(0.05)
        waiting = first if call == "read" else asyncio.create_task(car.lock())
        await asyncio.sleep(0.05)
        took = await _close_and_time(client)
        outcomes: tuple[Any, ...] = await asyncio.gather(first, waiting, return_exceptions=True)
    assert all(isinstance(o, sc.ClientClosedError) for o in outcomes), outcomes
    assert len(vehicle_requests(emu)) == 1
    assert took < 0.35


async def test_aclose_does_not_wait_for_a_budget_token(emu: Emulator, ids: list[str]) -> None:
    # Smartcar's documented refill (2 per minute): the next token is 30 s away.
    client = make_client(
        emu.url, close_timeout=1.0, request_budget=sc.RequestBudget(capacity=1, refill_per_minute=2)
    )
    async with client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        await car.vin()
        waiting = asyncio.create_task(car.odometer())
        await asyncio.sleep(0.1)
        took = await _close_and_time(client)
        with pytest.raises(sc.ClientClosedError):
            await waiting
    assert len(vehicle_requests(emu)) == 1
    assert took < 0.5


async def test_aclose_does_not_wait_out_a_retry_backoff(emu: Emulator, ids: list[str]) -> None:
    emu.inject(status=500, times=1, path="/odometer")
    # The first retry waits 0.9 to 1.2 s (backoff less up to 25% jitter).
    client = make_client(emu.url, retry_backoff=1.2, max_backoff=1.2, close_timeout=5)
    async with client:
        waiting = asyncio.create_task(client.vehicle(ids[0], access_token=TOKEN).odometer())
        await wait_until(lambda: len(vehicle_requests(emu)) == 1, "the 500")
        await asyncio.sleep(0.05)
        took = await _close_and_time(client)
        with pytest.raises(sc.ClientClosedError):
            await waiting
    assert len(vehicle_requests(emu)) == 1
    assert took < 0.3
