"""AuthClient: construction, the Connect URL (checked against the official SDK) and the
token endpoint over loopback against the emulator, with secrets kept out of sight."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import smartcar
from account_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from smartcar_async import (
    Access,
    APIConnectionError,
    AuthenticationError,
    ClientClosedError,
    InvalidResponseError,
    SmartcarError,
    ValidationError,
)
from smartcar_async._account._auth import AuthClient, _access_from
from smartcar_async._transport import RawResponse
from smartcar_async.testing import Emulator

VIN = "5YJ3E1EA7KF317000"


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def _auth(emu: Emulator, **kwargs: Any) -> AuthClient:
    return AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, auth_origin=emu.url, **kwargs)


# ------------------------------------------------------------ construction


def test_credentials_fall_back_to_the_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_CLIENT_ID", "env-id")
    monkeypatch.setenv("SMARTCAR_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("SMARTCAR_REDIRECT_URI", "https://env.example/cb")
    auth = AuthClient()
    assert (auth.client_id, auth.redirect_uri, auth.mode) == (
        "env-id",
        "https://env.example/cb",
        "live",
    )
    # Arguments win over the environment.
    assert AuthClient("arg-id", "arg-secret").client_id == "arg-id"


def test_origins_fall_back_to_the_sdk_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_AUTH_ORIGIN", "http://127.0.0.1:9/oauth/token")
    monkeypatch.setenv("SMARTCAR_CONNECT_ORIGIN", "http://127.0.0.1:8")
    auth = AuthClient("id", "secret")
    assert auth.token_url == "http://127.0.0.1:9/oauth/token"
    assert auth.get_auth_url().startswith("http://127.0.0.1:8/oauth/authorize?")
    explicit = AuthClient("id", "secret", auth_origin="http://a.local", connect_origin="http://c")
    assert explicit.token_url == "http://a.local/oauth/token"
    assert explicit.connect_origin == "http://c"


@pytest.mark.parametrize(("client_id", "client_secret"), [(None, "s"), ("id", None), ("", "")])
def test_missing_credentials_are_a_value_error(
    client_id: str | None, client_secret: str | None
) -> None:
    with pytest.raises(ValueError, match="SMARTCAR_CLIENT_ID"):
        AuthClient(client_id, client_secret)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        AuthClient("id", "secret", mode="production")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="':'"):
        AuthClient("id:x", "secret")
    with pytest.raises(ValueError, match="timeout"):
        AuthClient("id", "secret", timeout=0)
    assert AuthClient("id", "secret", mode="SIMULATED").mode == "simulated"  # type: ignore[arg-type]


def test_repr_hides_the_secret() -> None:
    auth = AuthClient("id", CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(auth)
    assert CLIENT_SECRET not in str(auth)
    assert "client_secret" not in dir(auth)


# ------------------------------------------------------------- Connect URL


def test_minimal_auth_url() -> None:
    auth = AuthClient("id", "secret")
    url = auth.get_auth_url()
    assert url.startswith("https://connect.smartcar.com/oauth/authorize?")
    assert _query(url) == {
        "response_type": "code",
        "client_id": "id",
        "approval_prompt": "auto",
        "mode": "live",
    }


def test_full_auth_url() -> None:
    auth = AuthClient("id", "secret", REDIRECT_URI, mode="simulated")
    url = auth.get_auth_url(
        ["required:read_odometer", "read_vin"],
        state="0facda3319",
        force_prompt=True,
        make="TESLA",
        single_select_vin=VIN,
        flags={"country": "DE", "beta": True},
        user="user-42",
    )
    assert _query(url) == {
        "response_type": "code",
        "client_id": "id",
        "approval_prompt": "force",
        "mode": "simulated",
        "redirect_uri": REDIRECT_URI,
        "scope": "required:read_odometer read_vin",
        "state": "0facda3319",
        "make": "TESLA",
        "single_select_vin": VIN,
        "single_select": "true",
        "flags": "country:DE beta:true",
        "user": "user-42",
    }


@pytest.mark.parametrize(
    ("ours", "sdk", "expected"),
    [
        ({"single_select": True}, {"enabled": True}, {"single_select": "true"}),
        ({"single_select": False}, {"enabled": False}, {"single_select": "false"}),
        (
            {"single_select": {"vin": VIN}},
            {"vin": VIN},
            {"single_select": "true", "single_select_vin": VIN},
        ),
        ({"single_select": {"enabled": True}}, {"enabled": True}, {"single_select": "true"}),
        ({"single_select": {}}, {}, {}),
    ],
)
def test_single_select_forms_match_the_official_sdk(
    ours: dict[str, Any], sdk: dict[str, Any], expected: dict[str, str]
) -> None:
    origin = smartcar.config.CONNECT_ORIGIN
    url = AuthClient("id", "secret", connect_origin=origin).get_auth_url(["read_vin"], **ours)
    official = smartcar.AuthClient("id", "secret").get_auth_url(
        ["read_vin"], {"single_select": sdk}
    )
    assert url == official
    query = _query(url)
    for key in ("single_select", "single_select_vin"):
        assert query.get(key) == expected.get(key)


_printable = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=30
)


@settings(max_examples=60, deadline=None)
@given(
    scope=st.lists(st.sampled_from(["read_vin", "read_odometer", "required:read_location"])),
    state=st.none() | _printable.filter(str.strip),
    force_prompt=st.booleans(),
    make=st.none() | st.sampled_from(["TESLA", "BMW", "VOLKSWAGEN"]),
    user=st.none() | _printable.filter(str.strip),
    mode=st.sampled_from(["live", "simulated", "test"]),
    redirect=st.none() | st.just("https://example.com/cb?x=1&y=2"),
)
def test_auth_url_equals_the_official_sdks(
    scope: list[str],
    state: str | None,
    force_prompt: bool,
    make: str | None,
    user: str | None,
    mode: str,
    redirect: str | None,
) -> None:
    """Switching SDKs must not change the URL users are sent to."""
    origin = smartcar.config.CONNECT_ORIGIN
    ours = AuthClient("id", "secret", redirect, mode, connect_origin=origin)  # type: ignore[arg-type]
    options: dict[str, Any] = {"force_prompt": force_prompt, "flags": {"f": True, "c": "DE"}}
    if state is not None:
        options["state"] = state
    if make is not None:
        options["make_bypass"] = make
    if user is not None:
        options["user"] = user
    official = smartcar.AuthClient("id", "secret", redirect, mode=mode).get_auth_url(scope, options)
    url = ours.get_auth_url(
        scope,
        state=state,
        force_prompt=force_prompt,
        make=make,
        user=user,
        flags={"f": True, "c": "DE"},
    )
    assert url == official


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scope": "read_vin"}, TypeError),
        ({"scope": ["read vin"]}, ValueError),
        ({"scope": [1]}, TypeError),
        ({"single_select_vin": "SHORT"}, ValueError),
        ({"single_select": {"vin": "X" * 18}}, ValueError),
        ({"single_select": False, "single_select_vin": VIN}, ValueError),
        ({"single_select": "yes"}, TypeError),
        ({"force_prompt": "yes"}, TypeError),
        ({"make": ""}, ValueError),
        ({"flags": {"bad name": True}}, ValueError),
    ],
)
def test_auth_url_argument_checks(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        AuthClient("id", "secret").get_auth_url(**kwargs)


# ------------------------------------------------------------ token endpoint


def _assert_fresh(access: Access, started: datetime) -> None:
    assert access.token_type == "Bearer"
    assert access.expires_in == 7200
    assert access.expiration.tzinfo is not None
    assert access.expiration.utcoffset() == timedelta(0)
    done = datetime.now(UTC)
    assert started + timedelta(seconds=7200) <= access.expiration <= done + timedelta(seconds=7200)
    assert started + timedelta(days=60) <= access.refresh_expiration <= done + timedelta(days=60)


async def test_exchange_code_then_refresh(emu: Emulator) -> None:
    started = datetime.now(UTC)
    code = emu.issue_code(["read_user_profile"], client_id=CLIENT_ID, user_id="owner-1")
    async with _auth(emu) as auth:
        access = await auth.exchange_code(code, flags={"country": "DE"})
        _assert_fresh(access, started)
        refreshed = await auth.exchange_refresh_token(access.refresh_token)
        _assert_fresh(refreshed, started)
    assert refreshed.access_token != access.access_token
    assert refreshed.refresh_token != access.refresh_token

    code_call, refresh_call = emu.requests
    assert (code_call.method, code_call.path) == ("POST", "/oauth/token")
    assert code_call.query == {"flags": "country:DE"}
    assert code_call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert code_call.headers["User-Agent"].startswith("smartcar-async/")
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert code_call.headers["Authorization"] == f"Basic {basic}"
    assert code_call.body == {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
    }
    assert refresh_call.body == {
        "grant_type": "refresh_token",
        "refresh_token": access.refresh_token,
    }
    assert refresh_call.query == {}


async def test_refresh_token_dies_after_the_grace_window(emu: Emulator) -> None:
    emu.refresh_token_grace = 30
    async with _auth(emu) as auth:
        access = await auth.exchange_code(emu.issue_code(client_id=CLIENT_ID))
        await auth.exchange_refresh_token(access.refresh_token)
        # A retry inside the grace window still works (e.g. after a lost answer)...
        await auth.exchange_refresh_token(access.refresh_token)
        emu.advance_clock(31)
        # ...past it the old token is dead.
        with pytest.raises(AuthenticationError) as caught:
            await auth.exchange_refresh_token(access.refresh_token)
    assert caught.value.type == "invalid_grant"
    assert caught.value.status_code == 400
    assert access.refresh_token not in str(caught.value)


async def test_a_code_works_once(emu: Emulator) -> None:
    code = emu.issue_code(client_id=CLIENT_ID)
    async with _auth(emu) as auth:
        await auth.exchange_code(code)
        with pytest.raises(AuthenticationError, match="invalid_grant"):
            await auth.exchange_code(code)


async def test_expired_code(emu: Emulator) -> None:
    code = emu.issue_code(client_id=CLIENT_ID)
    emu.advance_clock(601)
    with pytest.raises(AuthenticationError):
        await _auth(emu).exchange_code(code)


async def test_wrong_client_secret_is_invalid_client(emu: Emulator) -> None:
    auth = AuthClient(CLIENT_ID, "not-the-secret", auth_origin=emu.url)
    with pytest.raises(AuthenticationError) as caught:
        await auth.exchange_code(emu.issue_code())
    assert (caught.value.type, caught.value.status_code) == ("invalid_client", 401)


async def test_injected_oauth_validation_error(emu: Emulator) -> None:
    emu.inject(400, "VALIDATION", None, path="/oauth/token")
    with pytest.raises(ValidationError):
        await _auth(emu).exchange_code("anything")


async def test_secrets_stay_out_of_errors_reprs_and_logs(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = emu.issue_code(client_id=CLIENT_ID)
    bogus_refresh = "rt-0123456789-abcdef"
    auth = _auth(emu)
    access = await auth.exchange_code(code)
    errors: list[SmartcarError] = []
    for call in (
        auth.exchange_code(code),  # already used: "Invalid code: <code>."
        auth.exchange_refresh_token(bogus_refresh),  # "Invalid refresh_token: <token>."
        AuthClient(CLIENT_ID, CLIENT_SECRET + "x", auth_origin=emu.url).exchange_code(code),
    ):
        with pytest.raises(SmartcarError) as caught:
            await call
        errors.append(caught.value)
    assert "<redacted>" in str(errors[1])
    secrets = [CLIENT_SECRET, code, bogus_refresh, access.access_token, access.refresh_token]
    shown = [caplog.text, repr(auth), repr(access), str(access)]
    for error in errors:
        shown += [str(error), repr(error), str(error.args), str(error.description)]
    for secret in secrets:
        for text in shown:
            assert secret not in text


async def test_truncated_token_answer(emu: Emulator) -> None:
    emu.inject(fault="malformed", path="/oauth/token")
    with pytest.raises(InvalidResponseError):
        await _auth(emu).exchange_code(emu.issue_code())


_GOOD = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 7200, "refresh_token": "rt"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], None),
        ({**_GOOD, "access_token": 12345}, "access_token"),
        ({k: v for k, v in _GOOD.items() if k != "refresh_token"}, "refresh_token"),
        ({**_GOOD, "token_type": ""}, "token_type"),
        ({**_GOOD, "expires_in": "7200"}, "expires_in"),
        ({**_GOOD, "expires_in": True}, "expires_in"),
        ({**_GOOD, "expires_in": -1}, "expires_in"),
    ],
)
def test_bad_token_answer_names_the_field_not_the_value(body: object, field: str | None) -> None:
    resp = RawResponse(200, CIMultiDictProxy(CIMultiDict()), body, "req-1", 0.0)
    with pytest.raises(InvalidResponseError) as caught:
        _access_from(resp)
    assert caught.value.field == field
    assert caught.value.request_id == "req-1"
    assert "12345" not in str(caught.value)


async def test_unreachable_token_endpoint() -> None:
    auth = AuthClient("id", CLIENT_SECRET, auth_origin="http://127.0.0.1:9", timeout=5)
    with pytest.raises(APIConnectionError) as caught:
        await auth.exchange_refresh_token("refresh-me")
    assert CLIENT_SECRET not in str(caught.value)


async def test_argument_checks_run_before_any_request(emu: Emulator) -> None:
    auth = _auth(emu)
    with pytest.raises(ValueError, match="code"):
        await auth.exchange_code("")
    with pytest.raises(ValueError, match="refresh_token"):
        await auth.exchange_refresh_token("  ")
    with pytest.raises(TypeError):
        await auth.exchange_code(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flag"):
        await auth.exchange_code("c", flags={"x": "a b"})
    assert emu.requests == []


# ----------------------------------------------------------------- lifecycle


async def test_async_with_owns_and_closes_one_session(emu: Emulator) -> None:
    auth = _auth(emu)
    async with auth as entered:
        assert entered is auth
        owned = auth._session._owned
        assert owned is not None
        assert not owned.closed
        await auth.exchange_code(emu.issue_code())
        assert auth._session._owned is owned  # reused, not one per call
    assert owned.closed
    assert auth.closed
    await auth.aclose()  # idempotent
    with pytest.raises(ClientClosedError):
        await auth.exchange_code("code")
    with pytest.raises(ClientClosedError):
        async with auth:
            pass
    # A pure method keeps working.
    assert auth.get_auth_url().startswith("https://connect.smartcar.com/")


async def test_entering_twice_is_an_error(emu: Emulator) -> None:
    async with _auth(emu) as auth:
        with pytest.raises(RuntimeError, match="already open"):
            await auth.__aenter__()


async def test_borrowed_session_is_used_and_left_open(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    async with _auth(emu, session=session) as auth:
        assert auth._session._owned is None
        await auth.exchange_code(emu.issue_code())
    assert not session.closed
    # Without `async with` and without a session, each call cleans up after itself
    # (an unclosed session would fail the test through the warnings-as-errors filter).
    await _auth(emu).exchange_code(emu.issue_code())


async def test_closing_during_a_request(emu: Emulator) -> None:
    emu.latency = 0.5
    async with _auth(emu) as auth:
        pending = asyncio.ensure_future(auth.exchange_code(emu.issue_code()))
        await asyncio.sleep(0.1)
        await auth.aclose()
        with pytest.raises(ClientClosedError):
            await pending
