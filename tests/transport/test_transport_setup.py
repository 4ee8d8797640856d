"""How the transport sets up a session, and the URLs it is handed.

A session the client owns is told not to resend (aiohttp's private switch,
pinned here), so it needs no middleware; a borrowed one keeps the
middleware. URLs are parsed once per origin, with the same bytes on the wire.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import pytest
from yarl import URL

from smartcar_async._transport import Transport, _no_silent_resend, _stop_silent_resend
from smartcar_async._urls import UrlMaker


async def test_an_owned_session_is_told_not_to_resend_and_gets_no_middleware() -> None:
    async with aiohttp.ClientSession() as session:
        assert session._retry_connection is True, "aiohttp's switch moved: see _stop_silent_resend"
        transport = Transport(session, owned=True)
        assert session._retry_connection is False
        assert transport._middlewares is None


async def test_a_borrowed_session_keeps_its_switch_and_gets_the_middleware() -> None:
    async with aiohttp.ClientSession() as session:
        transport = Transport(session)
        assert session._retry_connection is True
        assert transport._middlewares == (_no_silent_resend,)


async def test_an_owned_session_with_middlewares_keeps_them_first_and_ours_after() -> None:
    async def theirs(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        return await handler(request)

    async with aiohttp.ClientSession(middlewares=(theirs,)) as session:
        transport = Transport(session, owned=True)
        assert transport._middlewares == (theirs, _no_silent_resend)


def test_without_aiohttps_switch_the_middleware_is_used() -> None:
    no_switch = cast(Any, SimpleNamespace(_middlewares=()))
    assert _stop_silent_resend(no_switch) is False


ORIGINS = ["http://127.0.0.1:8080", "https://api.smartcar.com", "https://proxy.example/smartcar"]
TAILS = [
    "/v2.0/vehicles/0a1b2c3d-1234/odometer",
    "/v2.0/vehicles/abc/tires/pressure",
    "/v2.0/user",
    "/v3/vehicles/abc/signals/charge-chargetimers",
    "/v2.0/vehicles/abc/tesla/compass",
]


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("tail", TAILS)
def test_a_plain_tail_is_a_parsed_url_equal_to_parsing_the_string(origin: str, tail: str) -> None:
    made = UrlMaker(origin).make(tail)
    assert isinstance(made, URL)
    assert made == URL(origin + tail)
    assert str(made) == str(URL(origin + tail))


@pytest.mark.parametrize("tail", ["/v2.0/vehicles/a b/odometer", "/v2.0/x%2Fy", "/v2.0/é"])
def test_a_tail_that_needs_encoding_is_left_to_aiohttp_as_a_string(tail: str) -> None:
    made = UrlMaker("http://127.0.0.1:8080").make(tail)
    assert made == "http://127.0.0.1:8080" + tail


@pytest.mark.parametrize(
    ("vehicle_id", "expected"),
    [
        ("0a1b-2c", "/v2.0/vehicles/0a1b-2c/odometer"),
        ("a/b", "/v2.0/vehicles/a%2Fb/odometer"),
        ("a b?", "/v2.0/vehicles/a%20b%3F/odometer"),
    ],
)
def test_a_vehicle_id_is_quoted_whole(vehicle_id: str, expected: str) -> None:
    made = UrlMaker("http://h:1").vehicle("v2.0", vehicle_id, "/odometer")
    assert str(made) == "http://h:1" + expected


def test_no_origin_gives_strings() -> None:
    assert UrlMaker("").make("/v2.0/user") == "/v2.0/user"
