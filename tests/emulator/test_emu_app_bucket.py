"""The application bucket counts HTTP requests; a batch's paths count per vehicle and in billing.

Each test names the reference section its expectation comes from (smartcar-api.md).
"""

from __future__ import annotations

from emu_support import Api, assert_error

from smartcar_async.testing import Emulator, RateLimits


async def test_a_batch_takes_one_token_from_the_application_bucket(api: Api, emu: Emulator) -> None:
    # smartcar-api.md §4: batching saves on the application bucket, "one HTTP
    # request instead of N toward RATE_LIMIT:SMARTCAR_API"; §5: the bucket is
    # "120 connections". Paths still count one each against the vehicle and in billing.
    emu.freeze_clock()
    emu.rate_limits = RateLimits(app_capacity=2, app_refill_per_minute=2)
    vid = emu.fleet.ids[0]
    paths = ["/odometer", "/location", "/vin", "/", "/tires/pressure"]
    before = emu.billed_requests
    first = await api.batch(vid, paths)
    assert first.status == 200
    assert [item["code"] for item in first.body["responses"]] == [200] * len(paths)
    assert emu.billed_requests - before == len(paths)
    # A batch larger than the whole bucket passes as well: it is one request.
    assert (await api.batch(vid, paths * 2)).status == 200
    limited = await api.batch(vid, ["/vin"])
    assert_error(limited, 429, "RATE_LIMIT", "SMARTCAR_API")
    assert limited.headers["Retry-After"] == "30"
    emu.advance_clock(30)
    assert (await api.batch(vid, paths)).status == 200
    assert_error(await api.vget(vid, "/vin"), 429, "RATE_LIMIT", "SMARTCAR_API")


async def test_batch_paths_still_count_one_each_against_the_vehicle(
    api: Api, emu: Emulator
) -> None:
    # The per-vehicle throttle is a separate limit (whether it counts a batch once
    # or per path is unconfirmed; the emulator keeps per path).
    emu.freeze_clock()
    emu.rate_limits = RateLimits(vehicle_requests=2, app_capacity=5, app_refill_per_minute=2)
    reply = await api.batch(emu.fleet.ids[0], ["/odometer", "/location", "/vin"])
    assert reply.status == 200
    assert [item["code"] for item in reply.body["responses"]] == [200, 200, 429]
