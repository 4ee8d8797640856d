"""Closing and cancelling at awkward moments, before anything is on the wire.

Each test races a close (or a cancellation) against one phase of a call that
is not on the wire yet (waiting for a concurrency place, for a token source)
or against the tasks a reusing handle's ``batch`` starts, and checks that
every caller ends with the documented outcome and nothing is left behind.
Events and a stub server hold each phase open: no test depends on timing.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest
from aiohttp import web
from policy_support import HANG_GUARD, vehicle_requests, wait_until
from support import TOKEN, json_response, make_client, serve

import smartcar_async as sc
from smartcar_async.testing import Emulator


class _Gate:
    """A stub handler whose writes (POST) wait for ``release``; reads answer at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.read_release = asyncio.Event()
        self.read_release.set()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            await self.release.wait()
            return json_response({"status": "success", "message": "ok"})
        await self.read_release.wait()
        return json_response({"distance": 1.0})


class _HeldTokens:
    """A token source that hands out its token only once ``release`` is set."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.release = asyncio.Event()

    async def token(self) -> str:
        self.asked.set()
        await self.release.wait()
        return TOKEN

    async def refresh(self, stale: str) -> str:
        return await self.token()


@pytest.mark.parametrize("waiting", ["read", "write"])
async def test_aclose_fails_a_call_waiting_for_a_concurrency_place_without_sending_it(
    waiting: str,
) -> None:
    # The only place is held by a request on the wire; the other call waits
    # for it. Before the fix, the close let it wait, and once the place
    # freed it was SENT, after the close had begun.
    gate = _Gate()
    if waiting == "write":
        gate.read_release.clear()  # the read holds the place; the write waits
    async with serve(gate) as stub:
        client = make_client(stub.url, max_concurrent_requests=1, close_timeout=HANG_GUARD)
        car = client.vehicle("veh-1", access_token=TOKEN)
        first = asyncio.create_task(car.lock() if waiting == "read" else car.odometer())
        await wait_until(lambda: len(stub.seen) == 1, "the first request on the wire")
        second = asyncio.create_task(car.odometer() if waiting == "read" else car.lock())
        limiter = client._policy._limiter
        await wait_until(lambda: bool(limiter._waiters), "the second call to wait for a place")
        closing = asyncio.create_task(client.aclose())
        try:
            # Nothing on the wire for it to wait for: it fails as the close begins.
            await wait_until(second.done, "the waiting call to fail", within=5.0)
        finally:
            gate.release.set()
            gate.read_release.set()
            await asyncio.wait_for(closing, HANG_GUARD)
        outcomes: tuple[Any, ...] = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(outcomes[1], sc.ClientClosedError), outcomes
    # The request on the wire had its grace period and was answered.
    assert not isinstance(outcomes[0], BaseException), outcomes
    assert len(stub.seen) == 1, [s.path for s in stub.seen]
    assert limiter.free == 1


async def test_aclose_answers_a_write_still_waiting_for_its_token_source() -> None:
    # A write waiting on a token source is not on the wire, so closing the
    # session cannot fail it. Before the fix the close returned with the
    # write's caller still waiting, for as long as the source took.
    tokens = _HeldTokens()
    async with serve(_Gate()) as stub:
        client = make_client(stub.url, close_timeout=0.05)
        write = asyncio.create_task(client.vehicle("veh-1", access_token=tokens).lock())
        await asyncio.wait_for(tokens.asked.wait(), HANG_GUARD)
        try:
            await asyncio.wait_for(client.aclose(), HANG_GUARD)
            assert write.done(), "aclose() returned with a write's caller still waiting"
        finally:
            tokens.release.set()
        (outcome,) = await asyncio.gather(write, return_exceptions=True)
    assert isinstance(outcome, sc.ClientClosedError), outcome
    assert stub.seen == []


async def test_cancelling_a_reusing_batch_before_its_reads_start_leaves_no_unawaited_coroutine(
    emu: Emulator, ids: list[str]
) -> None:
    # A handle with max_age reads a batch through a gather of its reads; a
    # caller cancelled before those tasks ran left each read's coroutine
    # never awaited (a RuntimeWarning at garbage collection).
    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=TOKEN, max_age=60)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for turns in range(4):
                task = asyncio.create_task(car.batch(["/odometer", "/location"]))
                for _ in range(turns):
                    await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            gc.collect()
        unawaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
        assert unawaited == []
        assert client._coalescer.queue_count == 0
        assert client._coalescer.task_count == 0
        # The handle still reads, and reuses, as before.
        first = await car.batch(["/odometer", "/location"])
        again = await car.odometer()
    assert first.odometer() is not None
    assert again.meta.reused
    assert len(vehicle_requests(emu)) == 1


async def test_aclose_fails_a_read_waiting_for_its_token_source_at_once() -> None:
    tokens = _HeldTokens()
    async with serve(_Gate()) as stub:
        client = make_client(stub.url, close_timeout=HANG_GUARD)
        read = asyncio.create_task(client.vehicle("veh-1", access_token=tokens).odometer())
        await asyncio.wait_for(tokens.asked.wait(), HANG_GUARD)
        closing = asyncio.create_task(client.aclose())
        try:
            await wait_until(read.done, "the read to fail", within=2.0)
        finally:
            tokens.release.set()
            await asyncio.wait_for(closing, HANG_GUARD)
            outcome = (await asyncio.gather(read, return_exceptions=True))[0]
        assert isinstance(outcome, sc.ClientClosedError), outcome
        assert stub.seen == []
