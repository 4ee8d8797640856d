"""Token sources: async callables, and RefreshingTokenSource's single-flight refresh.

Refreshes are counted as ``POST /oauth/token`` in the emulator's log; the
refresh tokens are real ones issued by the emulator's OAuth flow.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from typing import Any

import aiohttp
import pytest
from policy_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    OAUTH,
    bearer,
    expiring,
    issue_access,
    oauth_requests,
    shape,
    vehicle_requests,
    wait_until,
)
from support import TOKEN, make_client

import smartcar_async as sc
from smartcar_async._models_account import Access
from smartcar_async.testing import Emulator

# --------------------------------------------------------------- async callables


async def test_async_callable_is_asked_for_a_token_per_request(
    emu: Emulator, ids: list[str]
) -> None:
    calls = 0

    async def get_token() -> str:
        nonlocal calls
        calls += 1
        return TOKEN

    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=get_token)
        await asyncio.gather(car.odometer(), car.location())
        await car.lock()
    assert calls == 2  # one batch, one write
    assert {bearer(r) for r in vehicle_requests(emu)} == {TOKEN}


async def test_async_callable_is_asked_again_after_a_401(emu: Emulator, ids: list[str]) -> None:
    emu.expire_token("tok-stale")
    calls = 0

    async def get_token() -> str:
        nonlocal calls
        calls += 1
        return "tok-stale" if calls == 1 else "tok-fresh"

    async with make_client(emu.url) as client:
        odo = await client.vehicle(ids[0], access_token=get_token).odometer()
    assert isinstance(odo, sc.Odometer)
    assert [bearer(r) for r in vehicle_requests(emu)] == ["tok-stale", "tok-fresh"]


async def test_async_callable_is_asked_once_per_attempt_after_a_401(
    emu: Emulator, ids: list[str]
) -> None:
    emu.expire_token("tok-stale")
    handed_out: list[str] = []

    async def get_token() -> str:
        token = "tok-stale" if not handed_out else f"tok-fresh-{len(handed_out)}"
        handed_out.append(token)
        return token

    async with make_client(emu.url) as client:
        await client.vehicle(ids[0], access_token=get_token).odometer()
    assert [bearer(r) for r in vehicle_requests(emu)] == handed_out


async def test_a_second_401_after_the_refresh_is_raised_not_looped(
    emu: Emulator, ids: list[str]
) -> None:
    emu.revoke_token("tok-dead")

    async def get_token() -> str:
        return "tok-dead"

    async with make_client(emu.url, max_retries=5) as client:
        with pytest.raises(sc.AuthenticationError):
            await client.vehicle(ids[0], access_token=get_token).odometer()
    assert len(vehicle_requests(emu)) == 2


async def test_a_string_token_is_not_retried_after_a_401(emu: Emulator, ids: list[str]) -> None:
    emu.expire_token(TOKEN)
    async with make_client(emu.url, max_retries=5) as client:
        with pytest.raises(sc.AuthenticationError):
            await client.vehicle(ids[0], access_token=TOKEN).odometer()
    assert len(vehicle_requests(emu)) == 1


async def test_handles_built_from_the_same_callable_share_a_batch(
    emu: Emulator, ids: list[str]
) -> None:
    async def get_token() -> str:
        return TOKEN

    async with make_client(emu.url) as client:
        first = client.vehicle(ids[0], access_token=get_token)
        second = client.vehicle(ids[0], access_token=get_token)
        await asyncio.gather(first.odometer(), second.location())
    assert [shape(r) for r in vehicle_requests(emu)] == [("POST", "/batch")]


# ------------------------------------------------------- RefreshingTokenSource


@pytest.fixture
async def access(emu: Emulator, session: aiohttp.ClientSession) -> Access:
    """A real token pair, issued before the test starts counting requests."""
    issued = await issue_access(emu, session)
    emu.clear_requests()
    return issued


async def test_refreshes_ahead_of_expiry_before_the_first_request(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    source = sc.RefreshingTokenSource(exchanger, expiring(access, 60), refresh_margin=300)
    async with make_client(emu.url) as client:
        odo = await client.vehicle(ids[0], access_token=source).odometer()
    assert isinstance(odo, sc.Odometer)
    sent = emu.requests
    assert next((r.method, r.path) for r in sent) == ("POST", OAUTH)
    assert len(sent) == 2
    assert sent[0].body["refresh_token"] == access.refresh_token
    assert bearer(sent[1]) == source.access.access_token != access.access_token
    assert source.refreshes == 1


async def test_no_refresh_while_the_token_is_fresh(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    source = sc.RefreshingTokenSource(exchanger, access, refresh_margin=300)
    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=source)
        await car.odometer()
        await car.location()
    assert oauth_requests(emu) == []
    assert source.refreshes == 0


async def test_refreshes_after_a_401_and_retries_once(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    emu.expire_token(access.access_token)
    source = sc.RefreshingTokenSource(exchanger, access)
    async with make_client(emu.url) as client:
        odo = await client.vehicle(ids[0], access_token=source).odometer()
    assert isinstance(odo, sc.Odometer)
    sent = emu.requests
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in sent] == [
        ("GET", "odometer"),
        ("POST", "token"),
        ("GET", "odometer"),
    ]
    assert bearer(sent[0]) == access.access_token
    assert bearer(sent[2]) == source.access.access_token != access.access_token
    assert source.refreshes == 1


async def test_a_write_refused_with_401_is_sent_again_after_the_refresh(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    # The API refused it unread: the one case a write is sent twice.
    emu.expire_token(access.access_token)
    source = sc.RefreshingTokenSource(exchanger, access)
    async with make_client(emu.url) as client:
        action = await client.vehicle(ids[0], access_token=source).lock()
    assert isinstance(action, sc.Action)
    writes = [r for r in vehicle_requests(emu) if r.method == "POST"]
    assert [bearer(r) for r in writes] == [access.access_token, source.access.access_token]
    assert len(oauth_requests(emu)) == 1


@pytest.mark.parametrize("how", ["expired", "401"])
async def test_twenty_callers_on_five_vehicles_cause_one_refresh(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access, how: str
) -> None:
    received: list[Access] = []
    if how == "expired":
        start = expiring(access, -10)
    else:
        start = access
        emu.expire_token(access.access_token)
    source = sc.RefreshingTokenSource(exchanger, start, on_refresh=received.append)
    async with make_client(emu.url) as client:
        cars = [client.vehicle(vid, access_token=source) for vid in ids[:5]]
        reads = [
            getattr(car, name)()
            for car in cars
            for name in ("odometer", "location", "vin", "odometer")
        ]
        results = await asyncio.gather(*reads)
    assert len(results) == 20
    assert all(not isinstance(r, BaseException) for r in results)
    assert len(oauth_requests(emu)) == 1
    assert source.refreshes == 1
    assert received == [source.access]
    fresh = source.access.access_token
    after = [r for r in vehicle_requests(emu) if bearer(r) == fresh]
    assert len(after) == 5  # one batch per vehicle with the new token


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_refresh_receives_the_new_access(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access, kind: str
) -> None:
    received: list[Access] = []

    def sync_hook(new: Access) -> None:
        received.append(new)

    async def async_hook(new: Access) -> None:
        await asyncio.sleep(0)
        received.append(new)

    hook = sync_hook if kind == "sync" else async_hook
    source = sc.RefreshingTokenSource(exchanger, expiring(access, -1), on_refresh=hook)
    async with make_client(emu.url) as client:
        await client.vehicle(ids[0], access_token=source).odometer()
    (new,) = received
    assert new is source.access
    assert new.refresh_token != access.refresh_token
    assert new.access_token == bearer(vehicle_requests(emu)[0])


async def test_a_failing_on_refresh_does_not_fail_the_request(
    emu: Emulator,
    ids: list[str],
    exchanger: Any,
    access: Access,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(new: Access) -> None:
        raise RuntimeError("disk full")

    source = sc.RefreshingTokenSource(exchanger, expiring(access, -1), on_refresh=broken)
    with caplog.at_level(logging.ERROR, logger="smartcar_async"):
        async with make_client(emu.url) as client:
            odo = await client.vehicle(ids[0], access_token=source).odometer()
    assert isinstance(odo, sc.Odometer)
    assert any("on_refresh" in r.getMessage() for r in caplog.records)
    assert bearer(vehicle_requests(emu)[0]) == source.access.access_token


async def test_a_caller_cancelled_during_the_refresh_does_not_cancel_it_for_others(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    emu.inject(fault="slow", seconds=0.5, times=1, path=OAUTH)
    received: list[Access] = []
    source = sc.RefreshingTokenSource(exchanger, expiring(access, -1), on_refresh=received.append)
    async with make_client(emu.url) as client:
        leaving = asyncio.create_task(client.vehicle(ids[0], access_token=source).odometer())
        staying = asyncio.create_task(client.vehicle(ids[1], access_token=source).location())
        await wait_until(lambda: len(oauth_requests(emu)) == 1, "the refresh request")
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        loc = await staying
    assert isinstance(loc, sc.Location)
    assert len(oauth_requests(emu)) == 1
    assert received == [source.access]
    assert [r.path.split("/")[3] for r in vehicle_requests(emu)] == [ids[1]]


async def test_a_refresh_whose_only_caller_left_still_completes_and_is_kept(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    emu.inject(fault="slow", seconds=0.3, times=1, path=OAUTH)
    received: list[Access] = []
    source = sc.RefreshingTokenSource(exchanger, expiring(access, -1), on_refresh=received.append)
    async with make_client(emu.url) as client:
        car = client.vehicle(ids[0], access_token=source)
        leaving = asyncio.create_task(car.odometer())
        await wait_until(lambda: len(oauth_requests(emu)) == 1, "the refresh request")
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        await wait_until(lambda: source.refreshes == 1, "the refresh to finish")
        assert received == [source.access]
        # The refreshed tokens serve the next call without another refresh.
        assert isinstance(await car.odometer(), sc.Odometer)
    assert len(oauth_requests(emu)) == 1
    assert [bearer(r) for r in vehicle_requests(emu)] == [source.access.access_token]


async def test_a_failed_refresh_whose_callers_all_left_is_not_reported_unretrieved(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        emu.latency = 0.3
        emu.inject(status=401, type="AUTHENTICATION", code=None, times=1, path=OAUTH)
        source = sc.RefreshingTokenSource(exchanger, expiring(access, -1))
        async with make_client(emu.url) as client:
            leaving = asyncio.create_task(client.vehicle(ids[0], access_token=source).odometer())
            await wait_until(lambda: len(oauth_requests(emu)) == 1, "the refresh request")
            leaving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await leaving
            await asyncio.sleep(0.5)  # the refresh fails meanwhile
        del leaving
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []


async def test_a_failed_refresh_fails_every_waiting_caller_once(
    emu: Emulator, ids: list[str], exchanger: Any, access: Access
) -> None:
    emu.inject(status=401, type="AUTHENTICATION", code=None, times=1, path=OAUTH)
    source = sc.RefreshingTokenSource(exchanger, expiring(access, -1))
    async with make_client(emu.url) as client:
        cars = [client.vehicle(vid, access_token=source) for vid in ids[:5]]
        results = await asyncio.gather(*(car.odometer() for car in cars), return_exceptions=True)
        assert all(isinstance(r, sc.AuthenticationError) for r in results), results
        assert len(oauth_requests(emu)) == 1
        assert vehicle_requests(emu) == []
        # The next call tries again (the refresh token is still good).
        assert isinstance(await cars[0].odometer(), sc.Odometer)
    assert len(oauth_requests(emu)) == 2
    assert source.refreshes == 1


@pytest.mark.parametrize("kind", ["raises", "empty"])
async def test_a_failing_token_source_surfaces_as_a_smartcar_error(
    emu: Emulator, ids: list[str], kind: str
) -> None:
    async def broken() -> str:
        if kind == "raises":
            raise KeyError("the vault is down")
        return ""

    async with sc.Client(api_origin=emu.url, max_retries=0) as client:
        car = client.vehicle(ids[0], access_token=broken)
        with pytest.raises(sc.AuthenticationError) as read_error:
            await car.odometer()
        with pytest.raises(sc.AuthenticationError):
            await car.lock()
    if kind == "raises":
        assert isinstance(read_error.value.__cause__, KeyError)
    assert emu.requests == []


async def test_short_lived_tokens_are_refreshed_at_half_their_life_not_on_every_call(
    session: aiohttp.ClientSession,
) -> None:
    # Tokens living 60 s, under the 300 s margin: each call refreshed before.
    async with Emulator(vehicles=1, seed=0, token_ttl=60) as emu:
        emu.register_client(CLIENT_ID, CLIENT_SECRET)
        async with sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url) as auth:
            source = sc.RefreshingTokenSource(
                auth, await issue_access(emu, session), refresh_margin=300
            )
            # The given pair's life is unknown: the full margin, one refresh tells it.
            first = await source.token()
            assert [await source.token() for _ in range(3)] == [first] * 3
    assert source.refreshes == 1


class _Immediate:
    """An exchanger that answers without waiting (a cache, a test double): on an
    eager task factory its refresh task ends inside ``create_task``."""

    def __init__(self, access: Access) -> None:
        self.access = access
        self.calls = 0

    async def exchange_refresh_token(self, refresh_token: str) -> Access:
        self.calls += 1
        return expiring(self.access, -1)  # already due: every call must refresh again


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager task factories are 3.12+")
async def test_a_refresh_that_ends_eagerly_is_not_kept_in_flight(access: Access) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        exchanger = _Immediate(access)
        source = sc.RefreshingTokenSource(exchanger, expiring(access, -1))
        for _ in range(3):
            await source.token()
    finally:
        loop.set_task_factory(previous)
    # Kept as "in flight" after the first, the done task answered the later calls.
    assert exchanger.calls == 3
