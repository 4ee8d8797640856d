"""Fault soak: many concurrent calls against random faults, 401s, 429s and cancellations.

Every caller must resolve: with its result, with a SmartcarError subclass, or
with the CancelledError it was sent. Nothing else may escape, no warning may
be raised, no task may outlive ``aclose()``, and no write may be sent twice.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
from policy_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    bearer,
    issue_access,
    shape,
    vehicle_requests,
    wait_until,
)
from support import TOKEN, leftover_tasks, make_client, settle

import smartcar_async as sc
from smartcar_async.testing import Emulator, Faults

READS = ("odometer", "location", "vin", "tire_pressure", "lock_status", "attributes")
VEHICLE_429: dict[str, Any] = {"status": 429, "type": "RATE_LIMIT", "code": "VEHICLE"}


@attrs.define
class Call:
    index: int
    kind: str  # "read", "batch", "direct", "write"
    write_token: str | None
    task: asyncio.Task[Any] | None = None
    cancel_requested: bool = False  # cancel() was called while the task still ran


def _script_faults(emu: Emulator, scale: int, refreshing_vehicle: str) -> None:
    """Scripted 401s and 429s on top of the random HTTP faults (``scale`` times as many)."""
    for path in ("/odometer", "/batch", "/location", "/vin"):
        emu.inject(status=401, type="AUTHENTICATION", code=None, times=3 * scale, path=path)
        # Reads of this vehicle use the RefreshingTokenSource: these force refreshes.
        emu.inject(
            status=401,
            type="AUTHENTICATION",
            code=None,
            times=scale,
            path=path,
            vehicle_id=refreshing_vehicle,
        )
    emu.inject(**VEHICLE_429, retry_after=1, times=3 * scale, path="/vin")
    emu.inject(**VEHICLE_429, retry_after=120, times=scale, path="/tires/pressure")
    emu.inject(status=429, type="RATE_LIMIT", code="SMARTCAR_API", times=2 * scale, path="/batch")
    emu.inject(**VEHICLE_429, retry_after=1, times=4 * scale, path="/location", in_batch=True)
    emu.inject(**VEHICLE_429, times=3 * scale, path="/odometer", in_batch=True)
    emu.inject(status=502, type="UPSTREAM", code="UNKNOWN", times=4 * scale, path="/attributes")


async def _soak(
    calls: int, vehicles: int, seed: int, spread: float, caplog: pytest.LogCaptureFixture
) -> None:
    """``calls`` calls starting at random over ``spread`` seconds; ~10% are cancelled."""
    rng = random.Random(seed)
    faults = Faults(
        seed=seed,
        server_error_rate=0.1,
        drop_rate=0.05,
        malformed_rate=0.05,
        slow_rate=0.03,
        slow_seconds=1.0,
    )
    emulator = Emulator(
        vehicles=vehicles, seed=seed, faults=faults, latency=(0.0, 0.02), max_recorded=200_000
    )
    async with emulator as emu, aiohttp.ClientSession() as session:
        emu.register_client(CLIENT_ID, CLIENT_SECRET)
        access = await issue_access(emu, session)
        auth = sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url, session=session)
        source = sc.RefreshingTokenSource(auth, access)

        async def from_callable() -> str:
            await asyncio.sleep(0)
            return TOKEN

        emu.clear_requests()
        # Vehicle i uses (string, async callable, RefreshingTokenSource)[i % 3].
        _script_faults(emu, scale=max(1, calls // 400), refreshing_vehicle=emu.fleet.ids[2])

        client = make_client(
            emu.url,
            timeout=0.4,
            max_retries=2,
            max_retry_after=5,
            max_concurrent_requests=32,
        )
        ids = emu.fleet.ids
        plan: list[Call] = []
        loop = asyncio.get_running_loop()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with caplog.at_level(logging.ERROR, logger="smartcar_async"):
                async with client:

                    def handle(vid: str) -> sc.Vehicle:
                        which = ids.index(vid) % 3
                        token: Any = (TOKEN, from_callable, source)[which]
                        car = client.vehicle(vid, access_token=token)
                        roll = rng.random()
                        if roll < 0.15:
                            return car.with_options(deadline=0.8)
                        if roll < 0.25:
                            return car.with_options(max_retries=0)
                        return car

                    def make_call(index: int) -> tuple[Call, Callable[[], Awaitable[Any]]]:
                        vid = rng.choice(ids)
                        roll = rng.random()
                        if roll < 0.2:
                            # A write with a token of its own, to count its requests.
                            token = f"write-{index}"
                            car = client.vehicle(vid, access_token=token)
                            method = car.lock if rng.random() < 0.5 else car.unlock
                            return Call(index, "write", token), method
                        car = handle(vid)
                        if roll < 0.3:
                            return Call(index, "direct", None), car.service_history
                        if roll < 0.4:
                            paths = rng.sample(["/odometer", "/location", "/vin", "/"], 2)
                            return Call(index, "batch", None), lambda: car.batch(paths)
                        return Call(index, "read", None), getattr(car, rng.choice(READS))

                    async def run(delay: float, fn: Callable[[], Awaitable[Any]]) -> Any:
                        await asyncio.sleep(delay)
                        return await fn()

                    def cancel(call: Call) -> None:
                        assert call.task is not None
                        call.cancel_requested = call.task.cancel()

                    for index in range(calls):
                        call, fn = make_call(index)
                        call.task = asyncio.create_task(run(rng.uniform(0, spread), fn))
                        if rng.random() < 0.1:
                            loop.call_later(rng.uniform(0.0, spread + 0.3), cancel, call)
                        plan.append(call)

                    with anyio.fail_after(45 + spread):
                        outcomes = await asyncio.gather(
                            *(c.task for c in plan if c.task is not None),
                            return_exceptions=True,
                        )
                    stats = client.stats
                # After aclose: nothing of ours left running. A token refresh
                # started by a caller that was cancelled belongs to the token
                # source, not the client: let it end first.
                await wait_until(
                    lambda: (
                        not any(
                            t.get_coro().__qualname__ == "RefreshingTokenSource._do_refresh"  # type: ignore[union-attr]
                            for t in leftover_tasks()
                        )
                    ),
                    "token refreshes to end",
                )
                await settle()
                assert leftover_tasks() == [], leftover_tasks()
                gc.collect()
                await settle()
        assert [str(w.message) for w in caught] == []
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

        # Every caller resolved, with a result, a SmartcarError subclass, or
        # the cancellation it was sent.
        kinds: Counter[str] = Counter()
        for call, outcome in zip(plan, outcomes, strict=True):
            assert call.task is not None
            assert call.task.done()
            if call.cancel_requested:
                assert isinstance(outcome, asyncio.CancelledError), (call, outcome)
                kinds["cancelled"] += 1
                continue
            assert not isinstance(outcome, asyncio.CancelledError), (call, outcome)
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, sc.SmartcarError), (call, repr(outcome))
                assert type(outcome) is not sc.SmartcarError, (call, repr(outcome))
                assert not isinstance(outcome, sc.ClientClosedError), (call, repr(outcome))
                kinds[type(outcome).__name__] += 1
            else:
                kinds["ok"] += 1

        # No write went out twice; a successful write went out exactly once.
        writes = Counter(
            bearer(r) for r in vehicle_requests(emu) if shape(r) == ("POST", "/security")
        )
        for call, outcome in zip(plan, outcomes, strict=True):
            if call.kind != "write":
                continue
            assert call.write_token is not None
            sent = writes[call.write_token]
            assert sent <= 1, f"write {call.index} was sent {sent} times"
            if not isinstance(outcome, BaseException):
                assert sent == 1

        # The soak did exercise the failure paths.
        assert kinds["ok"] > calls // 4, kinds
        assert kinds["cancelled"] > 0, kinds
        assert sum(n for k, n in kinds.items() if k not in ("ok", "cancelled")) > 0, kinds
        assert stats.retries > 0
        assert stats.rate_limited > 0
        assert stats.failed_requests > 0
        assert source.refreshes >= 1
        await auth.aclose()


async def test_fault_soak(caplog: pytest.LogCaptureFixture) -> None:
    await _soak(calls=400, vehicles=20, seed=11, spread=0.3, caplog=caplog)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_fault_soak_long(seed: int, caplog: pytest.LogCaptureFixture) -> None:
    await _soak(calls=3000, vehicles=50, seed=seed, spread=8.0, caplog=caplog)
