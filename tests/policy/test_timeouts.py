"""Per-attempt timeouts and per-call deadlines.

The emulator holds a response (``fault="slow"``) or adds latency; the client
is expected to give up long before the server would have answered, so each
"prompt" assertion is an upper bound at least 0.5 s below the alternative.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from policy_support import shape, vehicle_requests
from support import TOKEN, make_client

import smartcar_async as sc
from smartcar_async.testing import Emulator

SLOW = 3.0  # how long the emulator holds a slow response


async def test_attempt_timeout_is_retried_for_reads(emu: Emulator, ids: list[str]) -> None:
    emu.inject(fault="slow", seconds=SLOW, times=1, path="/odometer")
    async with make_client(emu.url, timeout=0.2) as client:
        started = time.monotonic()
        odo = await client.vehicle(ids[0], access_token=TOKEN).odometer()
        assert time.monotonic() - started < 1.5
        assert client.stats.retries == 1
    assert isinstance(odo, sc.Odometer)
    assert len(vehicle_requests(emu)) == 2


async def test_attempt_timeout_on_every_try_raises_api_timeout_error(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(fault="slow", seconds=SLOW, times=3, path="/batch")
    async with make_client(emu.url, timeout=0.2, max_retries=2) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        started = time.monotonic()
        results = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
        assert time.monotonic() - started < 2.0
    assert all(type(r) is sc.APITimeoutError for r in results)
    assert all(isinstance(r, sc.SmartcarError) for r in results)
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/batch")] * 3


async def test_attempt_timeout_per_call_overrides_the_client(emu: Emulator, ids: list[str]) -> None:
    emu.inject(fault="slow", seconds=SLOW, times=1, path="/odometer")
    async with make_client(emu.url, timeout=10.0, max_retries=0) as client:
        car = client.vehicle(ids[0], access_token=TOKEN).with_options(timeout=0.2)
        started = time.monotonic()
        with pytest.raises(sc.APITimeoutError):
            await car.odometer()
        assert time.monotonic() - started < 1.5
    assert len(vehicle_requests(emu)) == 1


async def test_write_timeout_is_not_retried(emu: Emulator, ids: list[str]) -> None:
    emu.inject(fault="slow", seconds=SLOW, times=1, path="/security")
    async with make_client(emu.url, timeout=0.2, max_retries=3) as client:
        with pytest.raises(sc.APITimeoutError):
            await client.vehicle(ids[0], access_token=TOKEN).unlock()
    assert len(vehicle_requests(emu)) == 1


async def test_deadline_gives_up_promptly_while_other_callers_of_the_path_are_served(
    emu: Emulator, ids: list[str]
) -> None:
    emu.latency = 0.8
    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        hurried = car.with_options(deadline=0.3)
        started = time.monotonic()
        patient = asyncio.create_task(car.odometer())
        patient_too = asyncio.create_task(car.odometer())
        with pytest.raises(sc.APITimeoutError) as info:
            await hurried.odometer()
        assert time.monotonic() - started < 0.7
        assert isinstance(info.value, sc.SmartcarError)
        assert not patient.done()
        odo, odo_too = await asyncio.gather(patient, patient_too)
    assert isinstance(odo, sc.Odometer)
    assert odo is odo_too


async def test_deadline_covers_retries_and_backoff(emu: Emulator, ids: list[str]) -> None:
    emu.inject(status=500, times=None, path="/odometer")
    async with make_client(
        emu.url, max_retries=10, retry_backoff=0.3, max_backoff=1.0, deadline=0.5
    ) as client:
        started = time.monotonic()
        with pytest.raises(sc.APITimeoutError):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
        assert time.monotonic() - started < 1.2
    emu.clear_injections()
    # 0.3 s and 0.6 s backoffs (less jitter) fit 2 or 3 attempts in 0.5 s, not 11.
    assert 2 <= len(vehicle_requests(emu)) <= 3


async def test_deadline_applies_to_writes(emu: Emulator, ids: list[str]) -> None:
    emu.inject(fault="slow", seconds=SLOW, times=1, path="/security")
    async with make_client(emu.url, timeout=None) as client:
        car = client.vehicle(ids[0], access_token=TOKEN).with_options(deadline=0.3)
        started = time.monotonic()
        with pytest.raises(sc.APITimeoutError):
            await car.lock()
        assert time.monotonic() - started < 1.5
    assert len(vehicle_requests(emu)) == 1


async def test_deadline_bounds_the_wait_behind_a_rate_limit_gate(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=1, times=1)
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        while not vehicle_requests(emu):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(sc.APITimeoutError):
            await car.with_options(deadline=0.2).location()
        assert time.monotonic() - started < 0.7
        assert isinstance(await first, sc.Odometer)
    assert [shape(r) for r in vehicle_requests(emu)] == [("GET", "/odometer")] * 2


async def test_deadline_none_on_a_handle_overrides_the_client_deadline(
    emu: Emulator, ids: list[str]
) -> None:
    emu.latency = 0.5
    async with make_client(emu.url, deadline=0.1) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        with pytest.raises(sc.APITimeoutError):
            await car.vin()
        assert isinstance(await car.with_options(deadline=None).odometer(), sc.Odometer)
