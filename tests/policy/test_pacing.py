"""Client-side pacing: the request budget (application bucket) and the per-vehicle interval."""

from __future__ import annotations

import asyncio

import anyio
import pytest
from policy_support import Timeline, shape, vehicle_requests
from support import TOKEN, batch_paths, make_client

import smartcar_async as sc
from smartcar_async.testing import Emulator, RateLimits


async def test_a_batch_takes_one_budget_token_and_the_app_bucket_never_answers_429() -> None:
    # The application bucket counts HTTP requests (connections), so a batch takes one
    # token however many paths it carries (smartcar-api.md, Batch: billing is per path,
    # the bucket per request). The emulator mirrors the client's bucket (1 token). Its
    # refill is 10% faster: the client measures from the moment it sends, the server
    # from the moment it receives, so with identical rates a few milliseconds of skew
    # could leave the server a hair short of a token.
    limits = RateLimits(app_capacity=1, app_refill_per_minute=660)
    async with Emulator(vehicles=2, seed=0, rate_limits=limits) as emu:
        a, b = emu.fleet.ids
        timeline = Timeline()
        async with make_client(
            emu.url,
            max_retries=0,  # a 429 would surface as an error, not hide in a retry
            request_budget=sc.RequestBudget(capacity=1, refill_per_minute=600),
            on_response=[timeline],
        ) as client:
            car_a = client.vehicle(a, access_token=TOKEN)
            car_b = client.vehicle(b, access_token=TOKEN)
            # Two 2-path batches at once: 1 + 1 > 1, so the second waits for a
            # token (0.1 s at 600/min); each would have needed two before.
            results = await asyncio.gather(
                car_a.odometer(), car_a.location(), car_b.odometer(), car_b.location()
            )
            stats = client.stats
        sent = vehicle_requests(emu)
    assert len(results) == 4
    assert [shape(r) for r in sent] == [("POST", "/batch")] * 2
    assert all(sorted(batch_paths(r.body)) == ["/location", "/odometer"] for r in sent)
    assert stats.rate_limited == 0
    assert stats.billed_requests == 4  # billing still counts every path
    assert all(e.status == 200 for e in timeline.exchanges)
    first, second = sorted(e.sent for e in timeline.exchanges)
    assert second - first >= 0.05


async def test_budget_charges_one_token_per_single_request() -> None:
    # The emulator refills twice as fast as the client paces, so arrival jitter under a
    # loaded machine cannot turn the client's well-spaced third request into a 429.
    limits = RateLimits(app_capacity=2, app_refill_per_minute=1200)
    async with Emulator(vehicles=3, seed=0, rate_limits=limits) as emu:
        timeline = Timeline()
        async with make_client(
            emu.url,
            max_retries=0,
            request_budget=sc.RequestBudget(capacity=2, refill_per_minute=600),
            on_response=[timeline],
        ) as client:
            cars = [client.vehicle(vid, access_token=TOKEN) for vid in emu.fleet.ids]
            await asyncio.gather(*(car.odometer() for car in cars))
    starts = sorted(e.sent for e in timeline.exchanges)
    assert [e.status for e in timeline.exchanges] == [200, 200, 200]
    # Two go at once, the third waits for a refill.
    assert starts[1] - starts[0] < starts[2] - starts[0]
    assert starts[2] - starts[0] >= 0.05


async def test_a_batch_larger_than_the_budget_is_sent_rather_than_waiting_forever(
    emu: Emulator, ids: list[str]
) -> None:
    async with make_client(
        emu.url, request_budget=sc.RequestBudget(capacity=2, refill_per_minute=1)
    ) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        with anyio.fail_after(5):
            await asyncio.gather(car.odometer(), car.location(), car.vin())
    assert len(vehicle_requests(emu)) == 1


async def test_budget_is_paid_again_for_each_retry(emu: Emulator, ids: list[str]) -> None:
    # Capacity 1, refill 600/min: the retry after a 500 waits ~0.1 s for a token.
    emu.inject(status=500, times=1, path="/odometer")
    timeline = Timeline()
    async with make_client(
        emu.url,
        request_budget=sc.RequestBudget(capacity=1, refill_per_minute=600),
        on_response=[timeline],
    ) as client:
        await client.vehicle(ids[0], access_token=TOKEN).odometer()
    first, second = timeline.exchanges
    assert second.sent - first.sent >= 0.05


async def test_min_vehicle_interval_spaces_requests_to_one_vehicle_only(
    emu: Emulator, ids: list[str]
) -> None:
    timeline = Timeline()
    async with make_client(emu.url, min_vehicle_interval=0.4, on_response=[timeline]) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        other = client.vehicle(ids[1], access_token=TOKEN)
        await car.odometer()
        # car's next requests (a write and a read, issued at once) wait their
        # turn; the other vehicle is not held by car's interval.
        await asyncio.gather(car.lock(), car.location(), other.odometer())
    mine = timeline.of(ids[0])
    assert len(mine) == 3
    assert mine[0].path == "/odometer"
    starts = sorted(e.sent for e in mine)
    assert starts[1] - starts[0] >= 0.35
    assert starts[2] - starts[1] >= 0.35
    (theirs,) = timeline.of(ids[1])
    assert theirs.sent < starts[1]


@pytest.mark.parametrize("bad", [0, -1])
async def test_request_budget_rejects_a_bad_capacity(bad: int) -> None:
    with pytest.raises(ValueError):
        sc.RequestBudget(capacity=bad)
