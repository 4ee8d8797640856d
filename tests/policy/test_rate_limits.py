"""429s: Retry-After honoured, vehicle and application gates, fail-fast, per-item 429s.

Waits that really happen use Retry-After of 1 s; "did not wait" is shown
with an upper bound at least 0.5 s below the wait it would otherwise have
taken, and everything else by counting requests.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import pytest
from aiohttp import web
from policy_support import Timeline, http_date, shape, v2_error, vehicle_requests
from support import TOKEN, batch_paths, json_response, make_client, request_index, serve

import smartcar_async as sc
from smartcar_async.testing import Emulator, RateLimits

VEHICLE_429: dict[str, Any] = {"status": 429, "type": "RATE_LIMIT", "code": "VEHICLE"}
APP_429: dict[str, Any] = {"status": 429, "type": "RATE_LIMIT", "code": "SMARTCAR_API"}


# -------------------------------------------------------- within max_retry_after


async def test_short_retry_after_is_waited_out_and_the_read_retried(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**VEHICLE_429, retry_after=1, times=1, path="/odometer")
    async with make_client(emu.url, max_retry_after=5) as client:
        started = time.monotonic()
        odo = await client.vehicle(ids[0], access_token=TOKEN).odometer()
        waited = time.monotonic() - started
        stats = client.stats
    assert isinstance(odo, sc.Odometer)
    assert [shape(r) for r in vehicle_requests(emu)] == [("GET", "/odometer")] * 2
    assert waited >= 0.9  # Retry-After: 1, not the 0.01 s backoff
    assert stats.rate_limited == 1
    assert stats.retries == 1


async def test_gated_vehicle_sends_nothing_until_retry_after_and_new_callers_queue_behind(
    emu: Emulator, ids: list[str]
) -> None:
    gated, other = ids[0], ids[1]
    emu.inject(**VEHICLE_429, retry_after=1, times=1, path="/odometer", vehicle_id=gated)
    limited = asyncio.Event()
    timeline = Timeline(on_each=lambda ex: ex.status == 429 and limited.set())  # type: ignore[func-returns-value]
    # One request at a time for the whole client: a vehicle waiting out its
    # gate must not hold the only place.
    async with make_client(
        emu.url, max_retry_after=5, max_concurrent_requests=1, on_response=[timeline]
    ) as client:
        car = client.vehicle(gated, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await limited.wait()
        # New callers while the gate is closed: a read of another path, a
        # duplicate of the gated path, a direct read and a write.
        later = [
            asyncio.create_task(car.location()),
            asyncio.create_task(car.odometer()),
            asyncio.create_task(car.service_history()),
            asyncio.create_task(car.lock()),
        ]
        # Another vehicle goes out at once.
        assert isinstance(await client.vehicle(other, access_token=TOKEN).vin(), sc.Vin)
        await asyncio.sleep(0.3)
        assert len(vehicle_requests(emu, gated)) == 1, "a request went out through a closed gate"
        assert not first.done()
        assert not any(t.done() for t in later)

        results = await asyncio.gather(first, *later)
    assert all(not isinstance(r, BaseException) for r in results)
    sent = [shape(r) for r in vehicle_requests(emu, gated)]
    # The 429, then (once the gate opened) the retry and the callers that
    # queued behind it; the duplicate odometer read joined the retry instead
    # of adding a request, and the location read waited for the retry's flight.
    assert sent[0] == ("GET", "/odometer")
    assert sorted(sent[1:]) == [
        ("GET", "/location"),
        ("GET", "/odometer"),
        ("GET", "/service/history"),
        ("POST", "/security"),
    ]
    assert sent.index(("GET", "/location")) > sent.index(("GET", "/odometer"), 1)
    opened = timeline.of(gated)[0].answered + 0.9
    assert all(e.sent >= opened for e in timeline.of(gated)[1:])


async def test_retry_after_as_an_http_date_is_honoured() -> None:
    # The next whole second: an HTTP-date has no fraction.
    not_before = float(int(time.time()) + 1)

    async def handler(request: web.Request) -> web.StreamResponse:
        n = request_index(request)
        if n == 0:
            return json_response(
                v2_error("RATE_LIMIT", "VEHICLE", 429),
                status=429,
                headers={"Retry-After": formatdate(not_before, usegmt=True)},
            )
        return json_response({"distance": 7.0})

    async with serve(handler) as stub, make_client(stub.url, max_retry_after=5) as client:
        odo = await client.vehicle("v-date", access_token=TOKEN).odometer()
    assert odo.distance == 7.0
    assert len(stub.seen) == 2
    assert stub.seen[1].at >= not_before - 0.05


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
@pytest.mark.parametrize("value", ["30", "date"])
async def test_long_envelope_retry_after_in_any_casing_or_form_is_raised_at_once(
    header: str, value: str
) -> None:
    text = http_date(30) if value == "date" else value

    async def handler(request: web.Request) -> web.StreamResponse:
        body = v2_error("RATE_LIMIT", "VEHICLE", 429)
        return json_response(body, status=429, headers={header: text})

    async with serve(handler) as stub, make_client(stub.url, max_retry_after=5) as client:
        started = time.monotonic()
        with pytest.raises(sc.RateLimitError) as info:
            await client.vehicle("v-case", access_token=TOKEN).odometer()
        assert time.monotonic() - started < 2.0
    assert info.value.retry_after is not None
    assert 27.0 <= info.value.retry_after <= 30.0
    assert len(stub.seen) == 1


@pytest.mark.parametrize("header", ["Retry-After", "retry-after", "RETRY-AFTER"])
async def test_per_item_retry_after_in_any_casing_is_read(header: str) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        items = [
            {"path": "/odometer", "code": 200, "body": {"distance": 1.0}},
            {
                "path": "/location",
                "code": 429,
                "body": v2_error("RATE_LIMIT", "VEHICLE", 429),
                "headers": {header: "30"},
            },
        ]
        return json_response({"responses": items})

    async with serve(handler) as stub, make_client(stub.url, max_retry_after=5) as client:
        car = client.vehicle("v-item", access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
        assert isinstance(odo, sc.Odometer)
        assert isinstance(loc, sc.RateLimitError)
        assert loc.retry_after == 30.0
        # The vehicle stays gated: the next read fails locally.
        with pytest.raises(sc.RateLimitError):
            await car.odometer()
    assert len(stub.seen) == 1


async def test_unparseable_retry_after_falls_back_to_backoff() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        n = request_index(request)
        if n == 0:
            body = v2_error("RATE_LIMIT", "VEHICLE", 429)
            return json_response(body, status=429, headers={"Retry-After": "soon"})
        return json_response({"distance": 3.0})

    async with serve(handler) as stub, make_client(stub.url, max_retry_after=5) as client:
        started = time.monotonic()
        odo = await client.vehicle("v-soon", access_token=TOKEN).odometer()
        assert time.monotonic() - started < 0.5
    assert odo.distance == 3.0
    assert len(stub.seen) == 2


# ----------------------------------------------------- above max_retry_after


async def test_long_retry_after_raises_at_once_and_the_vehicle_fails_fast_locally(
    emu: Emulator, ids: list[str]
) -> None:
    gated, other = ids[0], ids[1]
    emu.inject(**VEHICLE_429, retry_after=30, times=1, path="/odometer")
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(gated, access_token=TOKEN)
        started = time.monotonic()
        with pytest.raises(sc.RateLimitError) as first:
            await car.odometer()
        assert time.monotonic() - started < 2.0
        assert first.value.retry_after == 30.0
        assert len(vehicle_requests(emu)) == 1

        # Every kind of call to that vehicle now fails fast, with no request.
        for call in (car.odometer, car.location, car.service_history, car.lock):
            with pytest.raises(sc.RateLimitError) as again:
                await call()
            assert again.value.retry_after is not None
            assert 25.0 < again.value.retry_after <= 30.0
        batch = await car.batch(["/odometer", "/vin"])
        assert set(batch.errors) == {"/odometer", "/vin"}
        assert all(isinstance(e, sc.RateLimitError) for e in batch.errors.values())
        # A handle with other options or another token is still that vehicle.
        with pytest.raises(sc.RateLimitError):
            await car.with_options(max_retries=0).odometer()
        with pytest.raises(sc.RateLimitError):
            await client.vehicle(gated, access_token="another-token").odometer()
        assert len(vehicle_requests(emu)) == 1

        # Another vehicle is unaffected.
        assert isinstance(await client.vehicle(other, access_token=TOKEN).odometer(), sc.Odometer)
        assert client.stats.rate_limited == 1
    assert [r.path.split("/")[3] for r in vehicle_requests(emu)] == [gated, other]


async def test_a_write_429_gates_the_vehicle_for_reads_too(emu: Emulator, ids: list[str]) -> None:
    emu.inject(**VEHICLE_429, retry_after=30, times=1, path="/security")
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        with pytest.raises(sc.RateLimitError):
            await car.lock()
        with pytest.raises(sc.RateLimitError):
            await car.odometer()
    assert len(vehicle_requests(emu)) == 1


async def test_gate_opens_again_when_the_retry_after_has_passed(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**VEHICLE_429, retry_after=1, times=1, path="/odometer")
    async with make_client(emu.url, max_retry_after=0.5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        with pytest.raises(sc.RateLimitError) as info:
            await car.odometer()
        assert info.value.retry_after == 1.0
        with pytest.raises(sc.RateLimitError):
            await car.odometer()
        assert len(vehicle_requests(emu)) == 1
        await asyncio.sleep(1.05)
        assert isinstance(await car.odometer(), sc.Odometer)
    assert len(vehicle_requests(emu)) == 2


async def test_batch_envelope_429_fails_every_caller_with_retry_after(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**VEHICLE_429, retry_after=30, times=1, path="/batch")
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        results = await asyncio.gather(
            car.odometer(), car.location(), car.vin(), return_exceptions=True
        )
    assert all(isinstance(r, sc.RateLimitError) and r.retry_after == 30.0 for r in results)
    assert len(vehicle_requests(emu)) == 1


async def test_429_retries_are_bounded_by_max_retries(emu: Emulator, ids: list[str]) -> None:
    emu.inject(**VEHICLE_429, times=3, path="/odometer")  # no Retry-After: backoff
    async with make_client(emu.url, max_retries=2) as client:
        with pytest.raises(sc.RateLimitError) as info:
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
    # The wait the client chose is reported, since the API gave none.
    assert info.value.retry_after is not None
    assert info.value.retry_after <= 0.05
    assert len(vehicle_requests(emu)) == 3


# ------------------------------------------------------- the application gate


async def test_app_rate_limit_above_max_retry_after_fails_every_vehicle_fast(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**APP_429, retry_after=30, times=1, path="/odometer")
    async with make_client(emu.url, max_retry_after=5) as client:
        with pytest.raises(sc.RateLimitError) as first:
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
        assert first.value.code == "SMARTCAR_API"
        for vid in ids[1:4]:
            car = client.vehicle(vid, access_token=TOKEN)
            for call in (car.location, car.lock):
                with pytest.raises(sc.RateLimitError) as again:
                    await call()
                assert again.value.code == "SMARTCAR_API"
                assert again.value.retry_after is not None
                assert again.value.retry_after > 25
    assert len(vehicle_requests(emu)) == 1


async def test_app_rate_limit_within_max_retry_after_holds_every_vehicle(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**APP_429, retry_after=1, times=1, path="/odometer", vehicle_id=ids[0])
    limited = asyncio.Event()
    timeline = Timeline(on_each=lambda ex: ex.status == 429 and limited.set())  # type: ignore[func-returns-value]
    async with make_client(emu.url, max_retry_after=5, on_response=[timeline]) as client:
        first = asyncio.create_task(client.vehicle(ids[0], access_token=TOKEN).odometer())
        await limited.wait()
        others = [
            asyncio.create_task(client.vehicle(vid, access_token=TOKEN).location())
            for vid in ids[1:4]
        ]
        await asyncio.sleep(0.4)
        assert len(vehicle_requests(emu)) == 1, "a request went out through the app gate"
        results = await asyncio.gather(first, *others)
    assert isinstance(results[0], sc.Odometer)
    assert all(isinstance(r, sc.Location) for r in results[1:])
    opened = timeline.exchanges[0].answered + 0.9
    assert all(e.sent >= opened for e in timeline.exchanges[1:])
    assert len(vehicle_requests(emu)) == 5


async def test_app_rate_limit_without_retry_after_backs_off_and_gates_the_client(
    emu: Emulator, ids: list[str]
) -> None:
    # Smartcar documents no Retry-After for the application limit: the client
    # picks a backoff (0.45 to 0.6 s here), reports it, and holds every vehicle.
    emu.inject(**APP_429, times=1, path="/odometer")
    limited = asyncio.Event()
    timeline = Timeline(on_each=lambda ex: ex.status == 429 and limited.set())  # type: ignore[func-returns-value]
    async with make_client(
        emu.url, max_retries=0, retry_backoff=0.6, max_backoff=0.6, on_response=[timeline]
    ) as client:
        first = asyncio.create_task(client.vehicle(ids[0], access_token=TOKEN).odometer())
        await limited.wait()
        started = time.monotonic()
        other = await client.vehicle(ids[1], access_token=TOKEN).location()
        held = time.monotonic() - started
        with pytest.raises(sc.RateLimitError) as info:
            await first
    assert isinstance(other, sc.Location)
    assert info.value.retry_after is not None
    assert 0.44 <= info.value.retry_after <= 0.6
    assert held >= 0.3


async def test_app_rate_limit_without_retry_after_is_retried_after_the_backoff(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**APP_429, times=2, path="/batch")
    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location())
        assert client.stats.rate_limited == 2
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.Location)
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/batch")] * 3


# ------------------------------------------------------- per-item 429 in a batch


async def test_per_item_429_delivers_the_other_paths_at_once_and_retries_the_limited_one() -> None:
    # The emulator's own vehicle window: two requests per second per vehicle,
    # so the third path of a batch gets a per-item 429 with Retry-After: 1.
    limits = RateLimits(vehicle_requests=2, vehicle_window=1.0)
    async with Emulator(vehicles=2, seed=0, rate_limits=limits) as emu:
        vid = emu.fleet.ids[0]
        async with make_client(emu.url, max_retry_after=5) as client:
            car = client.vehicle(vid, access_token=TOKEN)
            done: dict[str, float] = {}
            started = time.monotonic()

            async def read(name: str) -> Any:
                result = await getattr(car, name)()
                done[name] = time.monotonic() - started
                return result

            results = await asyncio.gather(read("odometer"), read("location"), read("vin"))
            stats = client.stats
        sent = vehicle_requests(emu)
    assert isinstance(results[0], sc.Odometer)
    assert isinstance(results[1], sc.Location)
    assert isinstance(results[2], sc.Vin)
    assert shape(sent[0]) == ("POST", "/batch")
    assert sorted(batch_paths(sent[0].body)) == ["/location", "/odometer", "/vin"]
    # Exactly one path came back 429; only it was sent again, on its own.
    assert len(sent) == 2
    assert sent[1].method == "GET"
    retried = shape(sent[1])[1]
    on_time = [t for name, t in done.items() if f"/{name}" != retried]
    assert len(on_time) == 2
    assert max(on_time) < 0.5
    assert max(done.values()) >= 0.9
    assert stats.rate_limited == 1


async def test_per_item_429_retry_waits_at_the_gate_and_new_callers_queue_behind_it(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**VEHICLE_429, retry_after=1, times=1, path="/location", in_batch=True)
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        started = time.monotonic()
        odo_task = asyncio.create_task(car.odometer())
        loc_task = asyncio.create_task(car.location())
        odo = await odo_task
        assert time.monotonic() - started < 0.5  # delivered without waiting
        assert not loc_task.done()
        late_loc = asyncio.create_task(car.location())
        late_odo = asyncio.create_task(car.odometer())
        await asyncio.sleep(0.3)
        assert len(vehicle_requests(emu)) == 1, "a request went out through a closed gate"
        loc, loc2, odo2 = await asyncio.gather(loc_task, late_loc, late_odo)
        assert time.monotonic() - started >= 0.9
    assert isinstance(odo, sc.Odometer)
    assert isinstance(odo2, sc.Odometer)
    assert isinstance(loc, sc.Location)
    assert isinstance(loc2, sc.Location)
    # The batch, the retried path (the late location caller shared it), then
    # the odometer read that queued behind it.
    assert [shape(r) for r in vehicle_requests(emu)] == [
        ("POST", "/batch"),
        ("GET", "/location"),
        ("GET", "/odometer"),
    ]


async def test_per_item_429_above_max_retry_after_fails_that_path_only(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(**VEHICLE_429, retry_after=30, times=1, path="/location", in_batch=True)
    async with make_client(emu.url, max_retry_after=5) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        started = time.monotonic()
        odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
        assert time.monotonic() - started < 2.0
        assert isinstance(odo, sc.Odometer)
        assert isinstance(loc, sc.RateLimitError)
        assert loc.retry_after == 30.0
        with pytest.raises(sc.RateLimitError):
            await car.vin()
    assert len(vehicle_requests(emu)) == 1


async def test_per_item_429_with_no_retries_left_is_raised(emu: Emulator, ids: list[str]) -> None:
    emu.inject(**VEHICLE_429, retry_after=1, times=1, path="/location", in_batch=True)
    async with make_client(emu.url, max_retry_after=5, max_retries=0) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.RateLimitError)
    assert loc.retry_after == 1.0
    assert len(vehicle_requests(emu)) == 1


async def test_per_item_429_retries_are_bounded_by_max_retries(
    emu: Emulator, ids: list[str]
) -> None:
    # No Retry-After on the item: the client backs off (0.01 s) between tries.
    emu.inject(**VEHICLE_429, times=3, path="/location", in_batch=True)
    emu.inject(**VEHICLE_429, times=3, path="/location")
    async with make_client(emu.url, max_retries=2) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.RateLimitError)
    # The policy is applied once per read: two retries of /location in all,
    # whether the 429 came inside a batch or on a plain GET.
    assert len(vehicle_requests(emu)) == 3
