"""Secrets that reached a user-visible channel by a path the canary did not drive.

Each test names the channel and the trigger; the canaries end in a hex core
found nowhere else, so a partial leak shows too.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from aiohttp import web
from support.stub import serve

from smartcar_async import AuthClient, Client, PermissionDeniedError, UpstreamError
from smartcar_async._secrets import REDACTED
from smartcar_async.redis import RedisState

REDIS_PASSWORD_CORE = "f00dcafe4242"
# "+", "/" and "=": characters servers escape or percent-encode in their own ways.
TOKEN = "AT+canary/b00b1e5c0ffee="
TOKEN_CORE = "b00b1e5c0ffee"
CLIENT_SECRET = "CS/canary+secret=77aa88bb99"
CLIENT_SECRET_CORE = "77aa88bb99"


def _dotnet_json(value: str) -> str:
    """``value`` as System.Text.Json writes it by default: "+" (and HTML characters) as \\uXXXX."""
    return "".join(f"\\u{ord(ch):04X}" if ch in "+<>&'\"" else ch for ch in value)


def _escaped_token_json(payload: object) -> web.Response:
    text = json.dumps(payload).replace("@TOKEN@", _dotnet_json(TOKEN))
    return web.Response(text=text, content_type="application/json")


async def _echo_escaped_token(request: web.Request) -> web.Response:
    if request.path.endswith("/batch"):
        return _escaped_token_json(
            {
                "responses": [
                    {
                        "path": "/odometer",
                        "code": 403,
                        "body": {
                            "type": "PERMISSION",
                            "code": None,
                            "description": "Token @TOKEN@ lacks read_odometer",
                            "statusCode": 403,
                        },
                        "headers": {},
                    },
                    {"path": "/vin", "code": 200, "body": {"vin": "@TOKEN@"}, "headers": {}},
                ]
            }
        )
    return _escaped_token_json({"vin": "@TOKEN@"})


async def test_a_token_echoed_with_json_unicode_escapes_is_redacted() -> None:
    """Channel: a batch item's error text, and a 2xx model's repr (single read and batch item).

    The raw bytes hold ``AT\\u002Bcanary...``, which no byte search for the
    token finds; the parsed string is the token itself.
    """
    async with (
        serve(_echo_escaped_token) as stub,
        Client(api_origin=stub.url, max_retries=0, batch_window=0.05) as client,
    ):
        car = client.vehicle("v1", access_token=TOKEN)
        odometer, vin = await asyncio.gather(car.odometer(), car.vin(), return_exceptions=True)
        single = await car.vin()
    assert isinstance(odometer, PermissionDeniedError)
    assert not isinstance(vin, BaseException)
    texts = [str(odometer), repr(odometer), repr(vars(odometer)), repr(vin), repr(single)]
    for text in texts:
        assert TOKEN_CORE not in text, text
    assert REDACTED in (odometer.description or "")
    assert vin.vin == single.vin == REDACTED


async def test_a_client_secret_percent_encoded_with_its_slash_kept_is_redacted() -> None:
    """Channel: an UpstreamError's text (a proxy's HTML page quoting a URL it built).

    ``quote()`` keeps "/" by default, as yarl does in a path: neither the
    fully encoded form nor the raw one matches.
    """

    async def page(request: web.Request) -> web.Response:
        text = f"<html><p>refused: /oauth/cb?client_secret={quote(CLIENT_SECRET)}</p></html>"
        return web.Response(status=502, text=text, content_type="text/html")

    async with (
        serve(page) as stub,
        AuthClient(
            "cid-canary-app", CLIENT_SECRET, redirect_uri="http://x/cb", auth_origin=stub.url
        ) as auth,
    ):
        with pytest.raises(UpstreamError) as caught:
            await auth.exchange_refresh_token("RT-canary-0f1e2d3c4b5a")
    error = caught.value
    for text in (str(error), repr(error), repr(vars(error)), repr(error.args)):
        assert CLIENT_SECRET_CORE not in text, text
    assert REDACTED in str(error)


@pytest.mark.parametrize(
    "url",
    [
        # Digits before the "/": the URL parser takes them for a port, and
        # redis-py builds a client for localhost without complaint.
        f"redis://:123/pw-{REDIS_PASSWORD_CORE}@127.0.0.1:6379/0",
        f"redis://:pw/{REDIS_PASSWORD_CORE}@127.0.0.1:6379/0",
        f"redis://user:pw?{REDIS_PASSWORD_CORE}@127.0.0.1:6379/0",
        f"redis://:{REDIS_PASSWORD_CORE}#pw@127.0.0.1:6379/0",
    ],
)
def test_a_redis_password_with_an_unencoded_slash_is_never_quoted(url: str) -> None:
    """Channel: RedisState's repr and every StateError, or the ValueError refusing the URL."""
    password = url.split("@")[0].split(":", 2)[-1]
    pieces = {REDIS_PASSWORD_CORE, *(p for p in password.replace("?", "/").split("/") if p)}
    pieces |= {p for piece in set(pieces) for p in piece.split("#") if p}
    with pytest.raises(ValueError, match="not a Redis URL") as caught:
        RedisState(url)
    text = f"{caught.value} {caught.value!r} {caught.value.args!r}"
    for piece in pieces:
        assert piece not in text, f"{piece!r} of the password in {text!r}"
    chained = caught.value.__cause__ or caught.value.__context__
    assert chained is None or caught.value.__suppress_context__
