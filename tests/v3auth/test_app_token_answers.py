"""What AppTokenSource makes of the token endpoint's answers: odd, absurd, hostile (issue 15)."""

from __future__ import annotations

import logging
import traceback
from urllib.parse import quote

import pytest
from aiohttp import web
from v3auth_support import CLIENT_ID, CLIENT_SECRET, json_answer, token_server

import smartcar_async as sc
from smartcar_async._app_tokens import MAX_LIFETIME

pytestmark = pytest.mark.timeout(30)


def _source(url: str) -> sc.AppTokenSource:
    return sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=url)


@pytest.mark.parametrize(
    "expires_in", ["1e400", "10000000000000000000000000000000", '"999999999999999999"', "86401"]
)
async def test_absurd_lifetimes_are_clamped_to_a_day(expires_in: str) -> None:
    answer = json_answer(
        f'{{"access_token":"app_tok","token_type":"Bearer","expires_in":{expires_in}}}'
    )
    async with token_server(answer) as server, _source(server.url) as source:
        assert await source.token() == "app_tok"
        assert source.expires_in is not None
        assert MAX_LIFETIME - 5 < source.expires_in <= MAX_LIFETIME


@pytest.mark.parametrize(
    ("expires_in", "lifetime"), [("3600", 3600), ("1800.5", 1800.5), ('"120"', 120)]
)
async def test_plausible_lifetimes_are_taken_liberally(expires_in: str, lifetime: float) -> None:
    answer = json_answer(
        f'{{"access_token":"app_tok","token_type":"bearer","expires_in":{expires_in}}}'
    )
    async with token_server(answer) as server, _source(server.url) as source:
        await source.token()
        assert source.expires_in is not None
        assert lifetime - 5 < source.expires_in <= lifetime


async def test_a_missing_lifetime_means_smartcars_hour() -> None:
    answer = json_answer('{"access_token":"app_tok"}')
    async with token_server(answer) as server, _source(server.url) as source:
        await source.token()
        assert source.expires_in is not None
        assert 3595 < source.expires_in <= 3600


async def test_a_zero_lifetime_token_is_handed_out_and_renewed_next_time() -> None:
    answer = json_answer('{"access_token":"app_tok","token_type":"Bearer","expires_in":0}')
    async with token_server(answer) as server, _source(server.url) as source:
        assert await source.token() == "app_tok"
        await source.token()
        assert server.requests == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"access_token":"app_tok","expires_in":NaN}', "expires_in"),
        ('{"access_token":"app_tok","expires_in":-1}', "expires_in"),
        ('{"access_token":"app_tok","expires_in":true}', "expires_in"),
        ('{"access_token":"app_tok","expires_in":"soon"}', "expires_in"),
        ('{"access_token":"app_tok","expires_in":[3600]}', "expires_in"),
        ('{"access_token":"","expires_in":3600}', "access_token"),
        ('{"access_token":"app tok","expires_in":3600}', "access_token"),
        ('{"access_token":"app\\ntok","expires_in":3600}', "access_token"),
        ('{"access_token":42,"expires_in":3600}', "access_token"),
        ('{"expires_in":3600}', "access_token"),
        ('{"access_token":"app_tok","token_type":"MAC"}', "token_type"),
        ("[1, 2]", None),
        ("null", None),
    ],
)
async def test_bad_answers_are_invalid_response_errors(body: str, field: str | None) -> None:
    async with token_server(json_answer(body)) as server, _source(server.url) as source:
        with pytest.raises(sc.InvalidResponseError) as caught:
            await source.token()
    assert caught.value.field == field
    assert "app_tok" not in str(caught.value)


async def test_a_form_encoded_answer_is_read() -> None:
    def form(_request: web.Request) -> web.Response:
        return web.Response(
            text="access_token=app_form_tok&token_type=bearer&expires_in=3600",
            content_type="application/x-www-form-urlencoded",
        )

    async with token_server(form) as server, _source(server.url) as source:
        assert await source.token() == "app_form_tok"
        assert source.expires_in is not None
        assert source.expires_in > 3590


async def test_a_form_encoded_error_is_typed() -> None:
    def refuse(_request: web.Request) -> web.Response:
        return web.Response(
            text="error=invalid_client&error_description=Bad+client",
            status=401,
            content_type="application/x-www-form-urlencoded",
        )

    async with token_server(refuse) as server, _source(server.url) as source:
        with pytest.raises(sc.AuthenticationError) as caught:
            await source.token()
    assert caught.value.type == "invalid_client"


async def test_html_from_a_proxy_is_not_mistaken_for_a_form() -> None:
    def html(_request: web.Request) -> web.Response:
        return web.Response(text="<html><body>OK</body></html>", content_type="text/html")

    async with token_server(html) as server, _source(server.url) as source:
        with pytest.raises(sc.InvalidResponseError):
            await source.token()


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_an_echoed_secret_is_scrubbed_from_errors_and_logs(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def echo(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "error": "invalid_client",
                "error_description": f"bad secret {CLIENT_SECRET} ({quote(CLIENT_SECRET)})",
            },
            status=status,
        )

    async with token_server(echo) as server, _source(server.url) as source:
        with pytest.raises(sc.SmartcarError) as caught:
            await source.token()
    exc = caught.value
    for text in (str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text):
        assert CLIENT_SECRET not in text
