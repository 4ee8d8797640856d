"""Coalescing over real HTTP: windows, batch size, queue keys, dedupe, routing, writes.

Request counts come from what the emulator (or a stub app) recorded; no
assertion depends on elapsed time.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import pytest
from aiohttp import web
from support import (
    HANG_GUARD,
    NO_RETRY,
    OTHER_TOKEN,
    TOKEN,
    assert_no_leftover_tasks,
    batch_paths,
    json_response,
    make_client,
    serve,
    settle,
    wait_until,
)

import smartcar_async as sc
from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle

V2 = "/v2.0/vehicles/"


# ------------------------------------------------------------ 1. the window


async def test_reads_in_the_window_go_as_one_batch(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    odo, loc, tires = await asyncio.gather(car.odometer(), car.location(), car.tire_pressure())
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.Location)
    assert isinstance(tires, sc.TirePressure)

    (sent,) = emu.requests
    assert (sent.method, sent.path) == ("POST", V2 + ev.id + "/batch")
    assert sent.headers["Content-Type"].startswith("application/json")
    assert sorted(batch_paths(sent.body)) == ["/location", "/odometer", "/tires/pressure"]
    assert odo.meta.request_id == loc.meta.request_id == tires.meta.request_id


async def test_single_pending_path_goes_as_a_plain_get(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    # Design choice: a flush holding one distinct path is sent as a plain GET of
    # that path (cheaper to serve, and readable in logs), not as a 1-item batch.
    car = client.vehicle(ev.id, access_token=TOKEN)
    await asyncio.gather(car.odometer(), car.odometer(), car.odometer())
    (sent,) = emu.requests
    assert (sent.method, sent.path, sent.body) == ("GET", V2 + ev.id + "/odometer", None)


async def test_window_zero_still_coalesces_a_gather(emu: Emulator, ev: SimulatedVehicle) -> None:
    async with make_client(emu.url, batch_window=0, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        await asyncio.gather(car.odometer(), car.location())
        assert [r.method for r in emu.requests] == ["POST"]

        # The flush happens at the next loop turn: a read issued a few turns
        # after another one finds the first already gone.
        emu.clear_requests()
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first GET")
        second = asyncio.create_task(car.location())
        await asyncio.gather(first, second)
        assert [(r.method, r.path.rsplit("/", 1)[1]) for r in emu.requests] == [
            ("GET", "odometer"),
            ("GET", "location"),
        ]


async def test_window_collects_reads_issued_a_few_turns_apart(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    # The contrast to the test above: with a window, reads issued a few loop
    # turns apart (before the window closes) share one batch.
    async with make_client(emu.url, batch_window=0.2, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await settle(5)
        second = asyncio.create_task(car.location())
        await settle(5)
        third = asyncio.create_task(car.odometer())
        odo, _, odo_again = await asyncio.gather(first, second, third)
        (sent,) = emu.requests
        assert sent.method == "POST"
        assert sorted(batch_paths(sent.body)) == ["/location", "/odometer"]
        assert odo is odo_again


async def test_max_batch_size_flushes_early(emu: Emulator, ev: SimulatedVehicle) -> None:
    # A window far longer than the hang guard: only the early flush at
    # max_batch_size (and the flush when that batch returns) can finish this.
    async with make_client(emu.url, batch_window=3600, max_batch_size=2, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        results = await asyncio.wait_for(
            asyncio.gather(car.odometer(), car.location(), car.tire_pressure()), HANG_GUARD
        )
        assert [type(r) for r in results] == [sc.Odometer, sc.Location, sc.TirePressure]
    first, second = emu.requests
    assert first.method == "POST"
    assert sorted(batch_paths(first.body)) == ["/location", "/odometer"]
    assert (second.method, second.path) == ("GET", V2 + ev.id + "/tires/pressure")


async def test_duplicates_do_not_count_towards_max_batch_size(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    async with make_client(emu.url, max_batch_size=3, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        reads = [car.odometer(), car.odometer(), car.location(), car.location(), car.odometer()]
        await asyncio.gather(*reads)
    (sent,) = emu.requests
    assert sorted(batch_paths(sent.body)) == ["/location", "/odometer"]


# ---------------------------------------------------------- 2. queue keys


async def test_two_vehicles_make_two_batches(
    emu: Emulator, client: Client, ev: SimulatedVehicle, ice: SimulatedVehicle
) -> None:
    a = client.vehicle(ev.id, access_token=TOKEN)
    b = client.vehicle(ice.id, access_token=TOKEN)
    await asyncio.gather(a.odometer(), b.odometer(), a.location(), b.location())
    sent = sorted(emu.requests, key=lambda r: r.path)
    assert sorted(r.path for r in sent) == sorted([V2 + ev.id + "/batch", V2 + ice.id + "/batch"])
    for request in sent:
        assert request.method == "POST"
        assert sorted(batch_paths(request.body)) == ["/location", "/odometer"]


@pytest.mark.parametrize(
    ("other", "header", "expected"),
    [
        (
            {"access_token": OTHER_TOKEN},
            "Authorization",
            {f"Bearer {TOKEN}", f"Bearer {OTHER_TOKEN}"},
        ),
        ({"unit_system": "imperial"}, "SC-Unit-System", {"metric", "imperial"}),
        ({"flags": {"country": "DE"}}, None, None),
    ],
    ids=["token", "unit_system", "flags"],
)
async def test_same_vehicle_different_key_is_not_shared(
    emu: Emulator,
    client: Client,
    ev: SimulatedVehicle,
    other: dict[str, Any],
    header: str | None,
    expected: set[str] | None,
) -> None:
    base = client.vehicle(ev.id, access_token=TOKEN)
    kwargs: dict[str, Any] = {"access_token": TOKEN, **other}
    variant = client.vehicle(ev.id, **kwargs)
    a1, b1, a2, b2 = await asyncio.gather(
        base.odometer(), variant.odometer(), base.location(), variant.location()
    )
    assert a1 is not b1
    assert a2 is not b2
    assert len(emu.requests) == 2
    for request in emu.requests:
        assert request.method == "POST"
        assert sorted(batch_paths(request.body)) == ["/location", "/odometer"]
    if header is not None:
        assert {r.headers[header] for r in emu.requests} == expected
    else:
        assert sorted(str(r.query.get("flags")) for r in emu.requests) == ["None", "country:DE"]


async def test_equal_keys_from_different_handles_share_a_batch(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    a = client.vehicle(ev.id, access_token=TOKEN, flags={"country": "DE"})
    b = client.vehicle(ev.id, access_token=TOKEN, flags={"country": "DE"})
    odo_a, odo_b, _ = await asyncio.gather(a.odometer(), b.odometer(), b.location())
    assert odo_a is odo_b
    assert len(emu.requests) == 1


# --------------------------------------------------------------- 3. dedupe


async def test_ten_concurrent_reads_share_one_path_and_one_instance(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    results = await asyncio.gather(*(car.odometer() for _ in range(10)))
    assert all(r is results[0] for r in results)
    (sent,) = emu.requests
    assert (sent.method, sent.path) == ("GET", V2 + ev.id + "/odometer")

    # Inside a batch, the path is listed once too.
    emu.clear_requests()
    mixed: list[Any] = await asyncio.gather(*(car.odometer() for _ in range(10)), car.location())
    assert all(r is mixed[0] for r in mixed[:10])
    (sent,) = emu.requests
    assert sorted(batch_paths(sent.body)) == ["/location", "/odometer"]

    # Nothing is cached after delivery: the next read asks again.
    emu.clear_requests()
    again = await car.odometer()
    assert again is not mixed[0]
    assert len(emu.requests) == 1


async def test_a_read_joins_the_same_path_in_flight(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first request to arrive")
        second = asyncio.create_task(car.odometer())
        a, b = await asyncio.gather(first, second)
        assert a is b
        assert len(emu.requests) == 1
        stats = client.stats
        assert stats.logical_reads == 2
        assert stats.dedupe_hits == 1
        assert stats.http_requests == 1


async def test_join_inflight_false_sends_a_second_request(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, join_inflight=False, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first request to arrive")
        second = asyncio.create_task(car.odometer())
        a, b = await asyncio.gather(first, second)
        assert a is not b
        assert [(r.method, r.path) for r in emu.requests] == [("GET", V2 + ev.id + "/odometer")] * 2


async def test_reads_arriving_during_a_flight_gather_into_the_next_batch(
    emu: Emulator, ev: SimulatedVehicle
) -> None:
    emu.latency = 0.2
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        first = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(emu.requests) == 1, "the first request to arrive")
        later = [asyncio.create_task(c) for c in (car.location(), car.vin(), car.odometer())]
        await asyncio.gather(first, *later)
    first_req, second_req = emu.requests
    assert first_req.method == "GET"
    assert second_req.method == "POST"
    assert sorted(batch_paths(second_req.body)) == ["/location", "/vin"]


# ------------------------------------------------------------- 4. routing


def _odometer_and_location(request: web.Request) -> list[dict[str, Any]]:
    return [
        {"path": "location", "code": 200, "body": {"latitude": 10.0, "longitude": 20.0}},
        {"path": "odometer", "code": 200, "body": {"distance": 123.4}},
    ]


async def test_routing_by_path_not_by_position() -> None:
    # Reversed order and no leading slashes; plus an item nobody asked for.
    async def handler(request: web.Request) -> web.StreamResponse:
        items = _odometer_and_location(request)
        items.append({"path": "/vin", "code": 200, "body": {"vin": "X"}})
        return json_response({"responses": items}, headers={"SC-Request-Id": "rid-7"})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location())
        assert odo.distance == 123.4
        assert (loc.latitude, loc.longitude) == (10.0, 20.0)
        assert odo.meta.request_id == "rid-7"
        (seen,) = stub.seen
        assert sorted(batch_paths(seen.body)) == ["/location", "/odometer"]


async def test_a_malformed_item_fails_its_callers_with_the_envelopes_request_id() -> None:
    # The item carries no SC-Request-Id of its own: the error names the batch's.
    async def handler(request: web.Request) -> web.StreamResponse:
        items = [
            {"path": "/odometer", "code": 200, "body": {"distance": "far"}},
            {"path": "/location", "code": 200, "body": {"latitude": 1.0, "longitude": 2.0}},
        ]
        return json_response({"responses": items}, headers={"SC-Request-Id": "rid-bad-item"})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        odo, odo2, loc = await asyncio.gather(
            car.odometer(), car.odometer(), car.location(), return_exceptions=True
        )
        assert isinstance(loc, sc.Location)
        for err in (odo, odo2):
            assert isinstance(err, sc.InvalidResponseError)
            assert err.field == "distance"
            assert err.request_id == "rid-bad-item"
        assert odo is not odo2  # every caller gets its own exception object


async def test_a_missing_item_fails_only_its_own_callers() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"responses": [{"path": "/odometer", "code": 200, "body": {"distance": 5.0}}]}
        return json_response(body, headers={"SC-Request-Id": "rid-missing"})

    async with serve(handler) as stub, make_client(stub.url, **NO_RETRY) as client:
        car = client.vehicle("v1", access_token=TOKEN)
        odo, loc, loc2 = await asyncio.gather(
            car.odometer(), car.location(), car.location(), return_exceptions=True
        )
        assert isinstance(odo, sc.Odometer)
        assert odo.distance == 5.0
        for err in (loc, loc2):
            assert isinstance(err, sc.InvalidResponseError)
            assert "/location" in str(err)
            assert err.request_id == "rid-missing"
        assert loc is not loc2  # every caller gets its own exception object


async def test_an_item_error_fails_only_its_path(
    emu: Emulator, client: Client, ice: SimulatedVehicle
) -> None:
    car = client.vehicle(ice.id, access_token=TOKEN)
    battery, odo, battery2 = await asyncio.gather(
        car.battery(), car.odometer(), car.battery(), return_exceptions=True
    )
    assert isinstance(odo, sc.Odometer)
    for err in (battery, battery2):
        assert isinstance(err, sc.CompatibilityError)
        assert (err.status_code, err.type, err.code) == (
            501,
            "COMPATIBILITY",
            "VEHICLE_NOT_CAPABLE",
        )
    assert battery is not battery2
    assert len(emu.requests) == 1


async def test_an_item_rate_limit_carries_its_own_retry_after(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    emu.inject(
        in_batch=True,
        status=429,
        type="RATE_LIMIT",
        code="VEHICLE",
        retry_after=7,
        path="/odometer",
    )
    car = client.vehicle(ev.id, access_token=TOKEN)
    odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
    assert isinstance(loc, sc.Location)
    assert isinstance(odo, sc.RateLimitError)
    assert odo.retry_after == 7
    assert (odo.status_code, odo.code) == (429, "VEHICLE")
    assert len(emu.requests) == 1
    assert emu.requests[0].method == "POST"


async def _whole_batch_outcomes(car: sc.Vehicle) -> list[Any]:
    return list(
        await asyncio.gather(
            car.odometer(), car.location(), car.odometer(), car.vin(), return_exceptions=True
        )
    )


@pytest.mark.parametrize(
    ("inject", "expected"),
    [
        ({"status": 400, "type": "VALIDATION", "code": None}, sc.ValidationError),
        ({"status": 500, "type": "SERVER", "code": "INTERNAL"}, sc.ServerError),
        ({"fault": "drop"}, sc.APIConnectionError),
    ],
    ids=["400", "500", "drop"],
)
async def test_a_whole_batch_failure_fails_every_caller(
    emu: Emulator,
    ev: SimulatedVehicle,
    inject: dict[str, Any],
    expected: type[sc.SmartcarError],
) -> None:
    emu.inject(path="/batch", **inject)
    async with make_client(emu.url, **NO_RETRY) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        outcomes = await _whole_batch_outcomes(car)
        assert [type(o) for o in outcomes] == [expected] * 4, outcomes
        assert len({id(o) for o in outcomes}) == 4
        assert len(emu.requests) == 1
        # The client is fine afterwards.
        assert isinstance(await car.odometer(), sc.Odometer)
    await assert_no_leftover_tasks()


async def test_a_revoked_token_fails_the_whole_batch(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.revoke_token(TOKEN)
    async with make_client(emu.url, **NO_RETRY) as client:
        outcomes = await _whole_batch_outcomes(client.vehicle(ev.id, access_token=TOKEN))
    assert [type(o) for o in outcomes] == [sc.AuthenticationError] * 4
    assert all(o.status_code == 401 for o in outcomes)
    (sent,) = emu.requests
    assert sent.method == "POST"


# ---------------------------------------------------------------- 6. writes


async def test_writes_are_never_batched_or_deduplicated(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    one, two, odo = await asyncio.gather(car.lock(), car.lock(), car.odometer())
    assert one is not two
    assert isinstance(odo, sc.Odometer)
    writes = [r for r in emu.requests if r.method == "POST"]
    reads = [r for r in emu.requests if r.method == "GET"]
    assert [(r.path, r.body) for r in writes] == [
        (V2 + ev.id + "/security", {"action": "LOCK"})
    ] * 2
    assert [r.path for r in reads] == [V2 + ev.id + "/odometer"]


async def test_every_write_is_its_own_request(
    emu: Emulator, client: Client, phev: SimulatedVehicle
) -> None:
    car = client.vehicle(phev.id, access_token=TOKEN)
    outcomes = await asyncio.gather(
        car.unlock(),
        car.set_charge_limit(0.8),
        car.set_charge_limit(0.8),
        car.send_destination(1.0, 2.0),
        car.subscribe("hook"),
        car.subscribe("hook"),
        car.odometer(),
        car.location(),
        return_exceptions=True,
    )
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    methods = sorted((r.method, r.path.split(phev.id, 1)[1]) for r in emu.requests)
    assert methods == [
        ("POST", "/batch"),
        ("POST", "/charge/limit"),
        ("POST", "/charge/limit"),
        ("POST", "/navigation/destination"),
        ("POST", "/security"),
        ("POST", "/webhooks/hook"),
        ("POST", "/webhooks/hook"),
    ]
    assert client.stats.writes == 6


# ------------------------------------------------- 7. no task per vehicle


async def test_handles_are_cheap(emu: Emulator) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        before = asyncio.all_tasks()
        gc.collect()
        tracemalloc.start()
        try:
            handles = [
                client.vehicle(f"vehicle-{i}", access_token=f"token-{i}", unit_system="imperial")
                for i in range(100_000)
            ]
            current, _peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(handles) == 100_000
        assert current < 60 * 1024 * 1024, f"{current / 1e6:.1f} MB for 100k handles"
        assert asyncio.all_tasks() == before
        assert client._coalescer.queue_count == 0
        assert emu.requests == []
        del handles


async def test_no_task_or_queue_remains_after_reads(
    emu: Emulator, ev: SimulatedVehicle, ice: SimulatedVehicle
) -> None:
    async with make_client(emu.url, **NO_RETRY) as client:
        cars = [client.vehicle(v.id, access_token=TOKEN) for v in (ev, ice)]
        await asyncio.gather(*(c.odometer() for c in cars), *(c.location() for c in cars))
        await cars[0].odometer()
        await asyncio.gather(cars[1].battery(), return_exceptions=True)
        await assert_no_leftover_tasks()
        assert client._coalescer.queue_count == 0
        assert client._coalescer.task_count == 0


async def test_the_same_path_through_different_methods_is_one_sub_request(
    emu: Emulator, client: Client, ev: SimulatedVehicle
) -> None:
    car = client.vehicle(ev.id, access_token=TOKEN)
    typed, raw, explicit, typed_again = await asyncio.gather(
        car.odometer(),
        car.request("GET", "odometer"),
        car.batch(["/odometer/", "odometer", "/location"]),
        car.odometer(),
    )
    assert typed is typed_again
    assert isinstance(raw, sc.Response)
    assert raw.body == {"distance": typed.distance}
    assert set(explicit) == {"/odometer", "/location"}
    assert explicit["odometer"] is typed
    (sent,) = emu.requests
    assert sorted(batch_paths(sent.body)) == ["/location", "/odometer"]


async def test_more_flights_per_vehicle_when_allowed(emu: Emulator, ev: SimulatedVehicle) -> None:
    emu.latency = 0.1
    async with make_client(
        emu.url, max_batch_size=2, max_batches_per_vehicle=2, **NO_RETRY
    ) as client:
        car = client.vehicle(ev.id, access_token=TOKEN)
        reads = [car.odometer(), car.location(), car.vin(), car.tire_pressure(), car.attributes()]
        results = await asyncio.gather(*reads)
        assert len(results) == 5
    # Two batches of two go out at once; the fifth path waits for a free flight.
    assert [r.method for r in emu.requests] == ["POST", "POST", "GET"]
    sent = sorted(sorted(batch_paths(r.body)) for r in emu.requests[:2])
    assert sent == [["/location", "/odometer"], ["/tires/pressure", "/vin"]]
    assert emu.requests[2].path in (V2 + ev.id, V2 + ev.id + "/")
