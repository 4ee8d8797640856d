"""AppTokenSource against the emulator's IAM endpoint, over loopback (issue 15, item 4)."""

from __future__ import annotations

import asyncio
import logging
import traceback

import aiohttp
import pytest
from support import assert_no_leftover_tasks, wait_until
from v3auth_support import CLIENT_ID, CLIENT_SECRET

import smartcar_async as sc
from smartcar_async.testing import Emulator

pytestmark = pytest.mark.timeout(30)


def _source(emu: Emulator, **kwargs: object) -> sc.AppTokenSource:
    return sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=emu.iam_url, **kwargs)  # type: ignore[arg-type]


async def test_fifty_concurrent_callers_cause_one_token_request(emu: Emulator) -> None:
    emu.latency = 0.05  # the callers all arrive while the request is in flight
    async with _source(emu) as source:
        tokens = await asyncio.gather(*(source.token() for _ in range(50)))
        assert len(set(tokens)) == 1
        assert emu.app_token_requests == 1
        assert source.token_requests == 1
        # Cached afterwards: no further request.
        assert await source.token() == tokens[0]
        assert emu.app_token_requests == 1
    await assert_no_leftover_tasks()


async def test_the_request_is_a_json_client_credentials_grant(emu: Emulator) -> None:
    async with _source(emu) as source:
        await source.token()
    (sent,) = [r for r in emu.requests if r.path == "/oauth2/token"]
    assert sent.method == "POST"
    assert sent.headers["Content-Type"].startswith("application/json")
    assert sent.body == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "Authorization" not in sent.headers


async def test_the_token_works_on_v3_with_a_user_id(emu: Emulator) -> None:
    vehicle = emu.fleet.vehicles[0]
    async with _source(emu) as source, aiohttp.ClientSession() as http:
        token = await source.token()
        headers = {"Authorization": f"Bearer {token}", "sc-user-id": vehicle.user_id}
        async with http.get(f"{emu.url}/v3/vehicles/{vehicle.id}/signals", headers=headers) as r:
            assert r.status == 200


async def test_renewed_halfway_when_the_margin_exceeds_half_the_life(emu: Emulator) -> None:
    emu.app_token_ttl = 2
    async with _source(emu) as source:  # default margin 300 s > the whole life
        first = await source.token()
        assert await source.token() == first
        assert source.expires_in is not None
        assert 1.5 < source.expires_in <= 2
        await asyncio.sleep(0.6)
        assert await source.token() == first  # not renewed on every call
        await asyncio.sleep(0.55)
        second = await source.token()
    assert second != first
    assert emu.app_token_requests == 2


async def test_renewed_refresh_margin_ahead_of_expiry(emu: Emulator) -> None:
    emu.app_token_ttl = 2
    async with _source(emu, refresh_margin=0.3) as source:
        first = await source.token()
        await asyncio.sleep(1.2)
        assert await source.token() == first  # 1.2 s < 2 - 0.3
        assert emu.app_token_requests == 1
        await asyncio.sleep(0.6)  # 1.8 s: inside the margin, before expiry
        second = await source.token()
    assert second != first
    assert emu.app_token_requests == 2


async def test_refresh_after_a_401_gets_one_new_token(emu: Emulator) -> None:
    async with _source(emu) as source:
        stale = await source.token()
        emu.expire_app_token(stale)
        emu.latency = 0.05
        fresh = await asyncio.gather(*(source.refresh(stale) for _ in range(20)))
        assert len(set(fresh)) == 1
        assert fresh[0] != stale
        assert emu.app_token_requests == 2
        # A late caller with the old token gets the new one without a request.
        assert await source.refresh(stale) == fresh[0]
        assert await source.token() == fresh[0]
        assert emu.app_token_requests == 2
        # The current token refused in turn: a new one.
        assert await source.refresh(fresh[0]) not in (stale, fresh[0])
        assert emu.app_token_requests == 3


async def test_wrong_credentials_raise_authentication_error_without_the_secret(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-SECRET-v3auth-91d3"
    source = sc.AppTokenSource(CLIENT_ID, wrong, iam_origin=emu.iam_url)
    with pytest.raises(sc.AuthenticationError) as caught:
        await source.token()
    exc = caught.value
    assert exc.status_code == 401
    assert exc.type == "invalid_client"
    texts = [
        str(exc),
        repr(exc),
        "".join(traceback.format_exception(exc)),
        repr(source),
        caplog.text,
    ]
    for text in texts:
        assert wrong not in text
        assert CLIENT_SECRET not in text
    # Nothing cached from a failure: the next call asks again.
    with pytest.raises(sc.AuthenticationError):
        await source.token()
    assert emu.app_token_requests == 0
    await source.aclose()


async def test_repr_hides_the_secret_and_the_token(emu: Emulator) -> None:
    async with _source(emu) as source:
        assert "token=none" in repr(source)
        token = await source.token()
        text = repr(source)
    assert CLIENT_SECRET not in text
    assert token not in text
    assert CLIENT_ID in text
    assert "token=fresh" in text


async def test_credentials_and_origin_come_from_the_environment(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCAR_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SMARTCAR_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SMARTCAR_IAM_ORIGIN", emu.iam_url)
    async with sc.AppTokenSource() as source:
        assert source.token_url == f"{emu.iam_url}/oauth2/token"
        assert source.client_id == CLIENT_ID
        await source.token()
    assert emu.app_token_requests == 1


@pytest.mark.parametrize(
    "env", [{}, {"SMARTCAR_CLIENT_ID": CLIENT_ID}, {"SMARTCAR_CLIENT_SECRET": CLIENT_SECRET}]
)
def test_missing_credentials_name_the_variables(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Unreachable origin: had it tried any I/O, it could not have been built this quickly.
    with pytest.raises(ValueError, match="SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET"):
        sc.AppTokenSource(iam_origin="http://127.0.0.1:1")


def test_arguments_are_checked_before_any_io() -> None:
    with pytest.raises(ValueError, match="refresh_margin"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, refresh_margin=-1)
    with pytest.raises(ValueError, match="timeout"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, timeout=0)
    with pytest.raises(TypeError, match="session"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, session="http://x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="client_secret"):
        sc.AppTokenSource(CLIENT_ID, "line\nbreak")


def test_it_is_a_token_source_marked_as_an_application_token() -> None:
    source = sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET)
    assert isinstance(source, sc.TokenSource)
    assert source.application_token is True
    assert sc.AppTokenSource.application_token is True
    assert getattr(sc.RefreshingTokenSource, "application_token", False) is False
    assert source.expires_in is None


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(emu: Emulator) -> None:
    emu.latency = 0.3
    async with _source(emu) as source:
        leaving = asyncio.create_task(source.token())
        staying = asyncio.create_task(source.token())
        await asyncio.sleep(0.1)  # the request is in flight (0.3 s of latency)
        leaving.cancel()
        token = await staying
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert emu.app_token_requests == 1
        assert await source.token() == token


async def test_a_request_whose_callers_all_left_still_caches_its_token(emu: Emulator) -> None:
    emu.latency = 0.2
    async with _source(emu) as source:
        callers = [asyncio.create_task(source.token()) for _ in range(3)]
        await asyncio.sleep(0.05)
        for caller in callers:
            caller.cancel()
        await asyncio.gather(*callers, return_exceptions=True)
        await wait_until(lambda: source.token_requests == 1, "the request to finish", within=5)
        await source.token()
    assert emu.app_token_requests == 1
    await assert_no_leftover_tasks()


async def test_aclose_during_a_request_fails_its_callers_with_client_closed(
    emu: Emulator,
) -> None:
    emu.latency = 0.5
    source = _source(emu)
    await source.__aenter__()
    callers = [asyncio.create_task(source.token()) for _ in range(3)]
    await asyncio.sleep(0.1)
    await source.aclose()
    for caller in callers:
        with pytest.raises(sc.ClientClosedError):
            await caller
    assert source.closed
    with pytest.raises(sc.ClientClosedError):
        await source.token()
    with pytest.raises(sc.ClientClosedError):
        await source.refresh("stale")
    with pytest.raises(sc.ClientClosedError):
        await source.__aenter__()
    await assert_no_leftover_tasks()


async def test_a_borrowed_session_stays_open(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        async with sc.AppTokenSource(
            CLIENT_ID, CLIENT_SECRET, iam_origin=emu.iam_url, session=http
        ) as source:
            await source.token()
        assert not http.closed


async def test_without_async_with_each_request_uses_its_own_session(emu: Emulator) -> None:
    emu.app_token_ttl = 1
    source = _source(emu)
    first = await source.token()
    await asyncio.sleep(0.55)
    assert await source.token() != first
    await source.aclose()
    assert emu.app_token_requests == 2


async def test_a_failed_renewal_keeps_the_valid_token(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.app_token_ttl = 2
    async with _source(emu) as source:
        first = await source.token()
        await asyncio.sleep(1.05)  # past half its life: due for renewal, not expired
        emu.inject(500, path="/oauth2/token")
        with caplog.at_level(logging.WARNING, logger="smartcar_async"):
            assert await source.token() == first
        assert "Renewing the application token failed" in caplog.text
        assert CLIENT_SECRET not in caplog.text
        assert first not in caplog.text
        second = await source.token()  # the next call tries again, and succeeds
    assert second != first


async def test_a_failed_request_with_no_valid_token_raises(emu: Emulator) -> None:
    emu.inject(500, path="/oauth2/token")
    async with _source(emu) as source:
        with pytest.raises(sc.ServerError):
            await source.token()
        stale = "app_not-a-token-anymore"
        emu.inject(503, type="UPSTREAM", code="UNKNOWN", path="/oauth2/token")
        with pytest.raises(sc.SmartcarError):
            await source.refresh(stale)
        assert await source.refresh(stale)  # works once the server does


def test_one_loop_after_another_shares_the_cached_token() -> None:
    # Documented as one loop at a time; sequential loops (asyncio.run twice) work.
    with Emulator(vehicles=1, seed=15).in_thread() as emu:
        emu.register_client(CLIENT_ID, CLIENT_SECRET)
        source = _source(emu)
        first = asyncio.run(source.token())
        assert asyncio.run(source.token()) == first
        emu.expire_app_token(first)
        assert asyncio.run(source.refresh(first)) != first
        asyncio.run(source.aclose())
        assert emu.app_token_requests == 2
