"""Retries of reads on transient failures; writes are never retried.

Transient: 5xx SERVER/UPSTREAM, 408, per-attempt timeouts, lost connections.
Request counts come from the emulator's log (or a stub app's).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from policy_support import Timeline, shape, vehicle_requests
from support import TOKEN, batch_paths, json_response, make_client, request_index, serve

import smartcar_async as sc
from smartcar_async.testing import Emulator

# (inject kwargs, expected error type when the retries run out)
TRANSIENT: dict[str, tuple[dict[str, Any], type[sc.SmartcarError]]] = {
    "500-server": ({"status": 500, "type": "SERVER", "code": "INTERNAL"}, sc.ServerError),
    "502-upstream": ({"status": 502, "type": "UPSTREAM", "code": "INVALID_DATA"}, sc.UpstreamError),
    "503-upstream": ({"status": 503, "type": "UPSTREAM", "code": "UNKNOWN"}, sc.UpstreamError),
    "504-upstream": ({"status": 504, "type": "UPSTREAM", "code": "TIMEOUT"}, sc.UpstreamError),
    "dropped": ({"fault": "drop"}, sc.APIConnectionError),
    "timeout": ({"fault": "slow", "seconds": 2.0}, sc.APITimeoutError),
}
# A per-attempt timeout short enough for the "slow" fault to trip it.
ATTEMPT_TIMEOUT = 0.2

# aiohttp (3.10+) silently re-sends an idempotent request (GET, PUT, DELETE)
# once when the connection drops. The client switches that off on the session
# it owns; a borrowed session keeps it.


def _client(emu: Emulator, **kwargs: Any) -> sc.Client:
    return make_client(emu.url, timeout=ATTEMPT_TIMEOUT, **kwargs)


# ------------------------------------------------------------- single GETs


@pytest.mark.parametrize("failures", [1, 2])
@pytest.mark.parametrize("kind", list(TRANSIENT))
async def test_single_get_is_retried_until_it_succeeds(
    emu: Emulator, ids: list[str], kind: str, failures: int
) -> None:
    inject, _ = TRANSIENT[kind]
    emu.inject(**inject, times=failures, path="/odometer")
    async with _client(emu) as client:
        odo = await client.vehicle(ids[0], access_token=TOKEN).odometer()
        stats = client.stats

    assert isinstance(odo, sc.Odometer)
    sent = vehicle_requests(emu)
    assert [shape(r) for r in sent] == [("GET", "/odometer")] * (failures + 1)
    assert stats.retries == failures
    assert stats.failed_requests == failures
    assert stats.http_requests == failures + 1


@pytest.mark.parametrize("kind", list(TRANSIENT))
async def test_single_get_raises_the_typed_error_after_max_retries(
    emu: Emulator, ids: list[str], kind: str
) -> None:
    inject, error = TRANSIENT[kind]
    emu.inject(**inject, times=3, path="/odometer")
    async with _client(emu, max_retries=2) as client:
        with pytest.raises(error):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
        assert client.stats.retries == 2
    assert [shape(r) for r in vehicle_requests(emu)] == [("GET", "/odometer")] * 3


# ----------------------------------------------------------------- batches


@pytest.mark.parametrize("kind", list(TRANSIENT))
async def test_batch_is_retried_whole_and_every_caller_gets_its_result(
    emu: Emulator, ids: list[str], kind: str
) -> None:
    inject, _ = TRANSIENT[kind]
    emu.inject(**inject, times=1, path="/batch")
    async with _client(emu) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location())
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.Location)
    sent = vehicle_requests(emu)
    assert [shape(r) for r in sent] == [("POST", "/batch")] * 2
    assert (
        sorted(batch_paths(sent[0].body))
        == sorted(batch_paths(sent[1].body))
        == ["/location", "/odometer"]
    )


@pytest.mark.parametrize("kind", ["500-server", "dropped", "timeout"])
async def test_batch_gives_up_after_three_requests_and_fails_every_caller(
    emu: Emulator, ids: list[str], kind: str
) -> None:
    inject, error = TRANSIENT[kind]
    emu.inject(**inject, times=3, path="/batch")
    async with _client(emu, max_retries=2) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        results = await asyncio.gather(
            car.odometer(), car.location(), car.odometer(), return_exceptions=True
        )
    assert all(type(r) is error for r in results), results
    # Each caller owns its error object.
    assert len({id(r) for r in results}) == 3
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/batch")] * 3


async def test_retry_policy_is_applied_once_per_batch_not_per_caller(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(status=500, times=1, path="/batch")
    async with _client(emu) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        calls = [car.odometer() if i % 2 else car.location() for i in range(10)]
        results = await asyncio.gather(*calls)
        stats = client.stats
    assert len(results) == 10
    assert all(isinstance(r, sc.Odometer | sc.Location) for r in results)
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/batch")] * 2
    assert stats.retries == 1
    assert stats.http_requests == 2


@pytest.mark.parametrize(
    "inject",
    [
        {"status": 500, "type": "SERVER", "code": "INTERNAL"},
        {"status": 502, "type": "UPSTREAM", "code": "UNKNOWN"},
    ],
    ids=["500", "502"],
)
async def test_transient_per_item_error_is_retried_like_a_single_get(
    emu: Emulator, ids: list[str], inject: dict[str, Any]
) -> None:
    emu.inject(**inject, times=1, path="/location", in_batch=True)
    async with _client(emu) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        odo, loc = await asyncio.gather(car.odometer(), car.location(), return_exceptions=True)
    assert isinstance(odo, sc.Odometer)
    assert isinstance(loc, sc.Location), repr(loc)
    assert len(vehicle_requests(emu)) == 2


async def test_408_is_retried_for_reads() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        n = request_index(request)
        if n == 0:
            return web.Response(status=408, text="Request Timeout")
        return json_response({"distance": 42.0})

    async with serve(handler) as stub, make_client(stub.url) as client:
        odo = await client.vehicle("v-408", access_token=TOKEN).odometer()
    assert odo.distance == 42.0
    assert [(s.method, s.path) for s in stub.seen] == [("GET", "/v2.0/vehicles/v-408/odometer")] * 2


async def test_408_gives_up_after_max_retries_with_the_status_kept() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=408, text="Request Timeout")

    async with serve(handler) as stub, make_client(stub.url, max_retries=1) as client:
        with pytest.raises(sc.SmartcarError) as info:
            await client.vehicle("v-408", access_token=TOKEN).odometer()
    assert info.value.status_code == 408
    assert len(stub.seen) == 2


async def test_unreachable_host_is_retried_as_a_connection_error() -> None:
    # A port that was just free: connection refused on every attempt.
    async def answer(request: web.Request) -> web.StreamResponse:
        return json_response({})

    async with serve(answer) as stub:
        origin = stub.url
    timeline = Timeline()
    async with make_client(origin, max_retries=2, on_response=[timeline]) as client:
        with pytest.raises(sc.APIConnectionError):
            await client.vehicle("v-gone", access_token=TOKEN).odometer()
        assert client.stats.http_requests == 3
    assert [e.error for e in timeline.exchanges] == ["APIConnectionError"] * 3


# ------------------------------------------------------ not transient: no retry


@pytest.mark.parametrize(
    ("inject", "error"),
    [
        ({"type": "VEHICLE_STATE", "code": "ASLEEP"}, sc.VehicleStateError),
        ({"type": "VALIDATION", "code": None}, sc.ValidationError),
        ({"type": "PERMISSION", "code": None}, sc.PermissionDeniedError),
        ({"type": "RESOURCE_NOT_FOUND", "code": "PATH"}, sc.ResourceNotFoundError),
        ({"type": "BILLING", "code": "VEHICLE_LIMIT"}, sc.BillingError),
        # 5xx, but not SERVER/UPSTREAM: the vehicle will not become capable.
        ({"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}, sc.CompatibilityError),
        ({"fault": "malformed"}, sc.InvalidResponseError),
    ],
    ids=lambda v: v.get("type", v.get("fault")) if isinstance(v, dict) else v.__name__,
)
async def test_non_transient_failures_are_not_retried(
    emu: Emulator, ids: list[str], inject: dict[str, Any], error: type[sc.SmartcarError]
) -> None:
    emu.inject(**inject, times=1, path="/odometer")
    async with _client(emu) as client:
        with pytest.raises(error):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
        assert client.stats.retries == 0
    assert len(vehicle_requests(emu)) == 1


# ------------------------------------------------------------ configuration


async def test_max_retries_zero_on_the_client_disables_retries(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(status=502, type="UPSTREAM", times=1, path="/odometer")
    async with _client(emu, max_retries=0) as client:
        with pytest.raises(sc.UpstreamError):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
    assert len(vehicle_requests(emu)) == 1


async def test_with_options_max_retries_zero_overrides_the_client(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(status=500, times=1, path="/odometer")
    async with _client(emu, max_retries=2) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        with pytest.raises(sc.ServerError):
            await car.with_options(max_retries=0).odometer()
        assert len(vehicle_requests(emu)) == 1
        # The original handle keeps the client's policy.
        emu.inject(status=500, times=1, path="/odometer")
        assert isinstance(await car.odometer(), sc.Odometer)
    assert len(vehicle_requests(emu)) == 3


async def test_with_options_can_raise_max_retries_above_the_client(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(status=503, type="UPSTREAM", times=4, path="/odometer")
    async with _client(emu, max_retries=0) as client:
        car = client.vehicle(ids[0], access_token=TOKEN).with_options(max_retries=4)
        assert car.options.max_retries == 4
        assert isinstance(await car.odometer(), sc.Odometer)
    assert len(vehicle_requests(emu)) == 5


async def test_max_retries_zero_sends_a_dropped_get_once(emu: Emulator, ids: list[str]) -> None:
    emu.inject(fault="drop", times=1, path="/odometer")
    async with _client(emu, max_retries=0) as client:
        with pytest.raises(sc.APIConnectionError):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
    assert len(vehicle_requests(emu)) == 1


async def test_handles_with_different_retry_policies_never_share_a_batch(
    emu: Emulator, ids: list[str]
) -> None:
    async with _client(emu) as client:
        car = client.vehicle(ids[0], access_token=TOKEN)
        await asyncio.gather(car.odometer(), car.with_options(max_retries=0).location())
    assert sorted(shape(r) for r in vehicle_requests(emu)) == [
        ("GET", "/location"),
        ("GET", "/odometer"),
    ]


async def test_direct_reads_are_retried_too(emu: Emulator, ids: list[str]) -> None:
    # service_history bypasses the coalescer (it carries a query): same policy.
    emu.inject(status=500, times=2, path="/service/history")
    async with _client(emu) as client:
        history = await client.vehicle(ids[0], access_token=TOKEN).service_history()
    assert isinstance(history, sc.ServiceHistory)
    assert [shape(r) for r in vehicle_requests(emu)] == [("GET", "/service/history")] * 3


# ------------------------------------------------------------------- writes

WRITE_FAULTS: dict[str, tuple[dict[str, Any], type[sc.SmartcarError]]] = {
    "500-server": ({"status": 500, "type": "SERVER", "code": "INTERNAL"}, sc.ServerError),
    "502-upstream": ({"status": 502, "type": "UPSTREAM", "code": "UNKNOWN"}, sc.UpstreamError),
    "dropped": ({"fault": "drop"}, sc.APIConnectionError),
    "timeout": ({"fault": "slow", "seconds": 2.0}, sc.APITimeoutError),
    "malformed": ({"fault": "malformed"}, sc.InvalidResponseError),
    # Even a 429 well within max_retry_after: a write is sent at most once.
    "429-short": (
        {"status": 429, "type": "RATE_LIMIT", "code": "VEHICLE", "retry_after": 1},
        sc.RateLimitError,
    ),
}


@pytest.mark.parametrize("kind", list(WRITE_FAULTS))
async def test_lock_is_never_retried(emu: Emulator, ids: list[str], kind: str) -> None:
    inject, error = WRITE_FAULTS[kind]
    emu.inject(**inject, times=1, path="/security")
    async with _client(emu, max_retries=5) as client:
        with pytest.raises(error):
            await client.vehicle(ids[0], access_token=TOKEN).lock()
        assert client.stats.retries == 0
        assert client.stats.http_requests == 1
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/security")]


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda car: car.unlock(), "/security"),
        (lambda car: car.set_charge_limit(0.8), "/charge/limit"),
        (lambda car: car.request("POST", "security", body={"action": "LOCK"}), "/security"),
        (lambda car: car.disconnect(), "/application"),
    ],
    ids=["unlock", "set_charge_limit", "request-post", "disconnect"],
)
async def test_other_writes_are_never_retried(
    emu: Emulator, ids: list[str], call: Any, path: str
) -> None:
    emu.inject(status=500, times=1, path=path)
    async with _client(emu, max_retries=5) as client:
        with pytest.raises(sc.ServerError):
            await call(client.vehicle(ids[0], access_token=TOKEN))
    assert len(vehicle_requests(emu)) == 1


IDEMPOTENT_WRITES = pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda car: car.disconnect(), "DELETE"),
        (lambda car: car.request("DELETE", "application"), "DELETE"),
        (lambda car: car.request("PUT", "charge/limit", body={"limit": 0.8}), "PUT"),
    ],
    ids=["disconnect", "request-delete", "request-put"],
)


@IDEMPOTENT_WRITES
async def test_idempotent_method_writes_are_not_resent_after_a_drop(
    emu: Emulator, ids: list[str], call: Any, method: str
) -> None:
    emu.inject(fault="drop", times=1)
    async with _client(emu, max_retries=5) as client:
        with pytest.raises(sc.APIConnectionError):
            await call(client.vehicle(ids[0], access_token=TOKEN))
    assert [r.method for r in vehicle_requests(emu)] == [method], "a write went out twice"


@IDEMPOTENT_WRITES
async def test_idempotent_method_writes_are_not_resent_on_a_borrowed_session(
    emu: Emulator, ids: list[str], call: Any, method: str
) -> None:
    emu.inject(fault="drop", times=1)
    async with (
        aiohttp.ClientSession() as session,
        _client(emu, max_retries=5, session=session) as client,
    ):
        with pytest.raises(sc.APIConnectionError):
            await call(client.vehicle(ids[0], access_token=TOKEN))
    assert [r.method for r in vehicle_requests(emu)] == [method], "a write went out twice"


async def test_a_dropped_get_on_a_borrowed_session_counts_against_max_retries(
    emu: Emulator, ids: list[str]
) -> None:
    emu.inject(fault="drop", times=1, path="/odometer")
    async with (
        aiohttp.ClientSession() as session,
        _client(emu, max_retries=0, session=session) as client,
    ):
        with pytest.raises(sc.APIConnectionError):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
    assert len(vehicle_requests(emu)) == 1


async def test_write_408_is_not_retried() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=408, text="Request Timeout")

    async with serve(handler) as stub, make_client(stub.url, max_retries=3) as client:
        with pytest.raises(sc.SmartcarError) as info:
            await client.vehicle("v-408", access_token=TOKEN).lock()
    assert info.value.status_code == 408
    assert len(stub.seen) == 1
