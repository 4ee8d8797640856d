"""The secrets canary: a hostile server echoes every credential it receives, everywhere it can.

Distinctive values stand for the access token, refresh token, client secret,
management token and authorization code. A loopback ``aiohttp.web`` app
echoes whatever credentials a request carried (raw, percent-encoded,
JSON-escaped with ``\\/``, and as the ``Basic`` value) in error descriptions,
an HTML 502 page, batch items, headers and successful bodies. Every path is
driven and nothing a user can see may hold a secret: ``str``/``repr``/
traceback (chained causes included) of each error, its ``__dict__``, every
log record at DEBUG, every hook event, every model's repr, and the CLI's
stdout, stderr and output file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from aiohttp import web

import smartcar_async as sc
from smartcar_async import (
    Access,
    AuthClient,
    AuthenticationError,
    Client,
    PermissionDeniedError,
    RefreshingTokenSource,
    SmartcarError,
    UpstreamError,
)
from smartcar_async._secrets import REDACTED, Secrets, secrets_for

# Each secret ends in a hex core found nowhere else, so a partial leak shows too.
ACCESS = "AT-canary-a1b2c3d4e5f6"
FRESH_ACCESS = "AT2-canary-9a8b7c6d5e4f"  # issued by the echo server's token endpoint
REFRESH = "RT-canary-0f1e2d3c4b5a"
FRESH_REFRESH = "RT2-canary-11223344ff55"
BAD_REFRESH = "RTX-canary-66778899aabb"
SAME_REFRESH = "RTS-canary-ccddeeff0011"  # a server that does not rotate hands it back
CODE = "code-canary-3344556677dd"
CLIENT_ID = "cid-canary-app"  # not a secret, but id:secret in base64 is
# "/", "+" and "=" make its JSON, percent and base64 forms differ from it.
CLIENT_SECRET = "CS/canary+secret=77aa88bb99"
AMT = "AMT-canary-5566778899cc"
BASIC_CLIENT = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
BASIC_AMT = base64.b64encode(f"default:{AMT}".encode()).decode()

SECRETS = (
    ACCESS,
    FRESH_ACCESS,
    REFRESH,
    FRESH_REFRESH,
    BAD_REFRESH,
    SAME_REFRESH,
    CODE,
    CLIENT_SECRET,
    AMT,
    BASIC_CLIENT,
    BASIC_AMT,
)
HANG_GUARD = 20.0


def _needles() -> list[str]:
    found: set[str] = set()
    for secret in SECRETS:
        found |= {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
        found.add(json.dumps(secret)[1:-1].replace("/", "\\/"))
        core = secret.rsplit("-", 1)[-1]
        if len(core) >= 10:
            found.add(core)
    return sorted(found)


NEEDLES = _needles()


def assert_clean(texts: Iterable[str], where: str = "") -> None:
    for text in texts:
        for needle in NEEDLES:
            assert needle not in text, f"secret {needle!r} leaked {where}: {text[:400]!r}"


def exception_texts(exc: BaseException) -> list[str]:
    """Everything a user, a logger or an error tracker gets to see of an exception."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args)]
    texts += [repr(value) for value in vars(exc).values()]
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        texts += [str(cause), repr(cause), repr(cause.args)]
        cause = cause.__cause__ or cause.__context__
    return texts


def log_texts(records: Iterable[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    texts = []
    for record in records:
        texts += [formatter.format(record), repr(record.args), repr(record.msg)]
    return texts


# --------------------------------------------------------------- echo server


@attrs.define
class Echo:
    url: str
    # The token each vehicle presented last: the server quotes it back later.
    last_token: dict[str, str] = attrs.Factory(dict)
    requests: int = 0


def _credentials(request: web.Request, form: dict[str, str]) -> list[str]:
    """Every credential this request carried, as the server saw it."""
    values = []
    auth = request.headers.get("Authorization", "")
    if auth:
        values.append(auth)
        scheme, _, credential = auth.partition(" ")
        values.append(credential)
        if scheme == "Basic":
            values.append(base64.b64decode(credential).decode().partition(":")[2])
    values += [v for k, v in form.items() if k in ("code", "refresh_token", "client_secret")]
    return values


def _echo_text(values: Iterable[str]) -> str:
    """The credentials, raw and re-encoded, as a careless server would quote them."""
    parts = []
    for value in values:
        parts += [value, quote(value, safe=""), f"<b>{value}</b>"]
    return "echo: " + " | ".join(parts)


def _json(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # "\/" is legal JSON and turns up in the wild: escape every slash.
    body = json.dumps(payload).replace("/", "\\/").encode()
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )


def _api_error(kind: str, status: int, echo: str, token: str) -> web.Response:
    return _json(
        {
            "type": kind,
            "code": None,
            "description": f"Rejected: {echo}",
            "docURL": f"https://example.com/docs?token={token}",
            "statusCode": status,
            "requestId": token,
            "resolution": {"type": "RETRY_LATER", "url": f"https://example.com/{token}"},
            "detail": [{"field": "authorization", "message": echo}],
            "suggestedUserMessage": echo,
        },
        status=status,
        headers={"SC-Request-Id": token, "Retry-After": f"soon {token}"},
    )


def _vehicle(vehicle_id: str, path: str, method: str, echo: str, token: str) -> web.Response:
    headers = {"SC-Request-Id": f"req-{token}", "SC-Unit-System": "metric"}
    if vehicle_id == "auth401":
        return _api_error("AUTHENTICATION", 401, echo, token)
    if vehicle_id == "html502":
        page = (
            "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
            f"<p>The upstream refused: Authorization: Bearer {token}</p><pre>{echo}</pre>"
            "</body></html>"
        )
        return web.Response(status=502, text=page, content_type="text/html", headers=headers)
    if vehicle_id == "refresh":
        return _api_error("AUTHENTICATION", 401, echo, token)
    if path == "/batch":
        return _json(
            {
                "responses": [
                    {
                        "path": "/odometer",
                        "code": 403,
                        "body": {
                            "type": "PERMISSION",
                            "code": None,
                            "description": f"Token {token} lacks read_odometer. {echo}",
                            "statusCode": 403,
                            "requestId": token,
                        },
                        "headers": {"sc-request-id": token},
                    },
                    {
                        "path": "/location",
                        "code": 401,
                        "body": f"Unauthorized: {echo}",
                        "headers": {"sc-request-id": token},
                    },
                    {
                        "path": "/",
                        "code": 200,
                        "body": {"id": token, "make": echo, "model": token, "year": 2020},
                        "headers": {"sc-request-id": token, "sc-data-age": token},
                    },
                    {
                        "path": "/vin",
                        "code": 200,
                        "body": {"vin": {token: token}},
                        "headers": {},
                    },
                    {"path": token, "code": 200, "body": {}, "headers": {}},
                ]
            },
            headers=headers,
        )
    if method == "GET" and path == "":
        body = {"id": token, "make": echo, "model": token, "year": 2020}
        return _json(body, headers=headers)
    if method == "GET":
        return _api_error("VEHICLE_STATE", 409, echo, token)
    if path == "/security":
        return _api_error("VEHICLE_STATE", 409, echo, token)
    if path == "/charge":
        return _json({"status": "success", "message": echo}, headers=headers)
    if method == "POST" and path.startswith("/webhooks/"):
        return _json({"webhookId": token, "vehicleId": echo}, headers=headers)
    if method == "DELETE" and path.startswith("/webhooks/"):
        return _api_error("VALIDATION", 400, echo, token)
    return _api_error("SERVER", 500, echo, token)


def _token_endpoint(form: dict[str, str], echo: str) -> web.Response:
    grant = form.get("grant_type")
    refresh = form.get("refresh_token")
    if grant == "refresh_token" and refresh in (REFRESH, SAME_REFRESH):
        return _json(
            {
                "access_token": FRESH_ACCESS,
                "token_type": "Bearer",
                "expires_in": 7200,
                "refresh_token": FRESH_REFRESH if refresh == REFRESH else SAME_REFRESH,
                "debug": echo,
            }
        )
    kind, status = ("invalid_client", 401) if grant == "refresh_token" else ("invalid_grant", 400)
    return _json({"error": kind, "error_description": f"Invalid grant: {echo}"}, status=status)


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    state = Echo("")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.requests += 1
        await request.read()
        form: dict[str, str] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            form = {k: str(v) for k, v in (await request.post()).items()}
        values = _credentials(request, form)
        path = request.path
        if path == "/oauth/token":
            return _token_endpoint(form, _echo_text(values))
        token = values[1] if len(values) > 1 else ""
        if path.startswith("/v2.0/vehicles/") and path != "/v2.0/vehicles/":
            vehicle_id, _, rest = path[len("/v2.0/vehicles/") :].partition("/")
            previous = state.last_token.get(vehicle_id)
            state.last_token[vehicle_id] = token
            if vehicle_id == "refresh" and previous is not None and previous != token:
                # "token X was replaced by Y": the answer after a refresh quotes both.
                values.append(previous)
            rest = "/" + rest if rest else ""
            return _vehicle(vehicle_id, rest, request.method, _echo_text(values), token)
        echo = _echo_text(values)
        if path == "/v2.0/user":
            return _json({"id": token}, headers={"SC-Request-Id": token})
        if path == "/v2.0/vehicles":
            return _api_error("SERVER", 500, echo, token)
        if path == "/v2.0/management/connections" and request.method == "DELETE":
            return _json(
                {"connections": [{"userId": values[-1], "vehicleId": echo}]},
                headers={"SC-Request-Id": token},
            )
        if path == "/v2.0/management/connections":
            return _api_error("AUTHENTICATION", 401, echo, token)
        if path == "/v2.0/compatibility":
            return _api_error("PERMISSION", 403, echo, token)
        return _api_error("RESOURCE_NOT_FOUND", 404, echo, token)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        state.url = f"http://{host}:{port}"
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    async with echo_server() as server:
        yield server


@pytest.fixture
def caplog_debug(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="smartcar_async")
    return caplog


@attrs.define
class Seen:
    """What a test collected: texts to check, and the errors it expected."""

    texts: list[str] = attrs.Factory(list)
    errors: list[SmartcarError] = attrs.Factory(list)
    events: list[Any] = attrs.Factory(list)

    async def error(self, call: Awaitable[Any], kind: type[SmartcarError] = SmartcarError) -> Any:
        with pytest.raises(kind) as caught:
            await asyncio.wait_for(call, HANG_GUARD)
        self.errors.append(caught.value)
        self.texts += exception_texts(caught.value)
        return caught.value

    async def value(self, call: Awaitable[Any]) -> Any:
        result = await asyncio.wait_for(call, HANG_GUARD)
        self.texts += [repr(result), str(result)]
        return result

    def hook(self, event: Any) -> None:
        self.events.append(event)

    def check(self, caplog: pytest.LogCaptureFixture, *objects: Any) -> None:
        texts = self.texts + [repr(e) for e in self.events] + [repr(o) for o in objects]
        texts += [*log_texts(caplog.records), caplog.text]
        assert_clean(texts)


def _client(echo: Echo, seen: Seen, **kwargs: Any) -> Client:
    return Client(
        api_origin=echo.url,
        max_retries=0,
        timeout=HANG_GUARD,
        on_batch=[seen.hook],
        on_response=[seen.hook],
        **kwargs,
    )


# -------------------------------------------------------------------- paths


async def test_vehicle_reads_single_and_batch(
    echo: Echo, caplog_debug: pytest.LogCaptureFixture
) -> None:
    seen = Seen()
    async with _client(echo, seen) as client:
        err401 = await seen.error(
            client.vehicle("auth401", access_token=ACCESS).odometer(), AuthenticationError
        )
        err502 = await seen.error(
            client.vehicle("html502", access_token=ACCESS).odometer(), UpstreamError
        )
        batch_car = client.vehicle("batch", access_token=ACCESS)
        answers = await seen.value(batch_car.batch(["/odometer", "/location", "/", "/vin"]))
        for path, error in answers.errors.items():
            seen.texts += exception_texts(error)
            seen.texts.append(path)
        single = await seen.value(client.vehicle("single", access_token=ACCESS).attributes())
        seen.check(caplog_debug, client, batch_car, answers, single)
    # What was redacted is still marked, and the model still arrived.
    assert REDACTED in str(err401)
    assert err401.request_id == REDACTED
    assert REDACTED in str(err502)
    assert isinstance(answers.errors["/odometer"], PermissionDeniedError)
    assert answers["/"].id == REDACTED
    assert single.make.startswith("echo: ")
    assert single.year == 2020
    assert {"/odometer", "/location", "/vin"} <= set(answers.errors)


async def test_writes_and_webhook_subscriptions(
    echo: Echo, caplog_debug: pytest.LogCaptureFixture
) -> None:
    seen = Seen()
    async with _client(echo, seen) as client:
        car = client.vehicle("writer", access_token=ACCESS)
        await seen.error(car.lock())
        action = await seen.value(car.start_charge())
        subscribed = await seen.value(car.subscribe("hook-1"))
        await seen.error(car.unsubscribe(AMT, "hook-1"))
        await seen.error(car.request("PATCH", "/anything", body={"x": 1}))
        seen.check(caplog_debug, client, car, action, subscribed)
    assert REDACTED in action.message


async def test_token_source_refresh_after_401(
    echo: Echo, caplog_debug: pytest.LogCaptureFixture
) -> None:
    seen = Seen()
    refreshed: list[Access] = []
    async with AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=echo.url) as auth:
        source = RefreshingTokenSource(auth, _access(ACCESS, REFRESH), on_refresh=refreshed.append)
        async with _client(echo, seen) as client:
            car = client.vehicle("refresh", access_token=source)
            await seen.error(car.odometer(), AuthenticationError)
            await seen.error(car.lock(), AuthenticationError)
            seen.check(caplog_debug, client, car, source, auth, *refreshed)
    assert [a.access_token for a in refreshed] == [FRESH_ACCESS]


async def test_callable_token_source(echo: Echo, caplog_debug: pytest.LogCaptureFixture) -> None:
    seen = Seen()

    async def get_token() -> str:
        return ACCESS

    async with _client(echo, seen) as client:
        car = client.vehicle("auth401", access_token=get_token)
        await seen.error(car.odometer(), AuthenticationError)
        seen.check(caplog_debug, client, car)


async def test_auth_client(echo: Echo, caplog_debug: pytest.LogCaptureFixture) -> None:
    seen = Seen()
    auth = AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=echo.url)
    await seen.error(auth.exchange_code(CODE), AuthenticationError)
    await seen.error(auth.exchange_refresh_token(BAD_REFRESH), AuthenticationError)
    fresh = await seen.value(auth.exchange_refresh_token(REFRESH))
    # A server that hands back the refresh token it was sent still works.
    same = await auth.exchange_refresh_token(SAME_REFRESH)
    seen.check(caplog_debug, auth, fresh, same)
    assert (fresh.access_token, fresh.refresh_token) == (FRESH_ACCESS, FRESH_REFRESH)
    assert same.refresh_token == SAME_REFRESH
    assert REDACTED in str(seen.errors[0])


async def test_account_and_management_functions(
    echo: Echo, caplog_debug: pytest.LogCaptureFixture
) -> None:
    seen = Seen()
    url = echo.url
    user = await seen.value(sc.get_user(ACCESS, api_origin=url))
    await seen.error(sc.get_vehicles(ACCESS, api_origin=url))
    await seen.error(sc.get_connections(AMT, management_origin=url), AuthenticationError)
    await seen.error(_first(sc.iter_connections(AMT, management_origin=url)), AuthenticationError)
    deleted = await seen.value(sc.delete_connections(AMT, user_id="u1", management_origin=url))
    await seen.error(
        sc.get_compatibility(
            "1HGCM82633A004352",
            ["read_odometer"],
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_origin=url,
        ),
        PermissionDeniedError,
    )
    seen.check(caplog_debug, user, deleted)
    assert user.id == REDACTED
    assert deleted.connections[0].user_id == REDACTED


async def test_webhook_helpers_never_quote_the_management_token(
    caplog_debug: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    verify = {"eventName": "verify", "version": "2.0", "payload": {"challenge": AMT}}
    answer = sc.challenge_response(AMT, json.dumps(verify))
    assert answer == {"challenge": sc.hash_challenge(AMT, AMT)}
    assert not sc.verify_payload(AMT, "00" * 32, b"{}")
    for bad in (
        lambda: sc.challenge_response(AMT, {"eventName": "other", "payload": {}}),
        lambda: sc.verify_payload(AMT, 12, b"{}"),  # type: ignore[arg-type]
        lambda: sc.hash_challenge(AMT + "\n", "x"),
        lambda: sc.parse_webhook(b"{" + AMT.encode()),
    ):
        with pytest.raises((SmartcarError, ValueError, TypeError)) as caught:
            bad()
        seen.texts += exception_texts(caught.value)
    seen.check(caplog_debug)


async def test_transport_errors_quoting_a_token_lose_the_quote() -> None:
    """aiohttp's HTTP parser quotes the bytes it refused: a status line holding the token."""

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2x0 Bearer " + ACCESS.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client(api_origin=f"http://127.0.0.1:{port}", max_retries=0) as client:
            with pytest.raises(SmartcarError) as caught:
                await client.vehicle("raw", access_token=ACCESS).odometer()
    finally:
        server.close()
        await server.wait_closed()
    assert_clean(exception_texts(caught.value))


async def test_cli_output_and_logs(echo: Echo, tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    vehicles_file = tmp_path / "vehicles.txt"
    vehicles_file.write_text(f"single,{FRESH_ACCESS}\nbatch\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smartcar_async",
        "poll",
        "--token",
        ACCESS,
        "--vehicle",
        "auth401",
        "--vehicle",
        "html502",
        "--vehicles-file",
        str(vehicles_file),
        "--origin",
        echo.url,
        "--reads",
        "odometer,location,attributes,vin",
        "--rounds",
        "1",
        "--max-retries",
        "0",
        "--output",
        str(output),
        "--plain",
        "--verbose",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), HANG_GUARD * 2)
    assert process.returncode == 0, stderr.decode()
    results = output.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in results.splitlines()]
    assert {line["vehicle_id"] for line in lines} == {"auth401", "html502", "single", "batch"}
    assert REDACTED in results  # the echoes arrived, and were blanked
    assert_clean([stdout.decode(), stderr.decode(), results], "from the CLI")


# ------------------------------------------------- the original three reports


async def test_regression_401_description_echoing_the_authorization_header(
    echo: Echo,
) -> None:
    async with Client(api_origin=echo.url, max_retries=0) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.vehicle("auth401", access_token=ACCESS).odometer()
    assert_clean(exception_texts(caught.value))
    assert caught.value.description is not None
    assert f"Bearer {REDACTED}" in caught.value.description


async def test_regression_502_html_page(echo: Echo) -> None:
    async with Client(api_origin=echo.url, max_retries=0) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.vehicle("html502", access_token=ACCESS).location()
    assert_clean(exception_texts(caught.value))
    assert caught.value.status_code == 502
    assert f"Bearer {REDACTED}" in str(caught.value)


async def test_regression_batch_item_403_body(echo: Echo) -> None:
    async with Client(api_origin=echo.url, max_retries=0, batch_window=0.05) as client:
        car = client.vehicle("batch", access_token=ACCESS)
        odometer, attributes = await asyncio.gather(
            car.odometer(), car.attributes(), return_exceptions=True
        )
    assert isinstance(odometer, PermissionDeniedError)
    assert_clean(exception_texts(odometer))
    assert REDACTED in (odometer.description or "")
    assert not isinstance(attributes, BaseException)
    assert_clean([repr(attributes)])


# ------------------------------------------------------------ the mechanism


def test_every_form_of_a_secret_is_found() -> None:
    secrets = secrets_for(f"Basic {BASIC_CLIENT}", [REFRESH])
    raw = " ".join(
        [
            BASIC_CLIENT,
            CLIENT_SECRET,
            quote(CLIENT_SECRET, safe=""),
            re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(CLIENT_SECRET, safe="")),
            json.dumps(CLIENT_SECRET)[1:-1].replace("/", "\\/"),
            REFRESH,
        ]
    )
    assert_clean([secrets.scrub_text(raw), secrets.scrub_bytes(raw.encode()).decode()])
    assert secrets.scrub_text(raw).count(REDACTED) == 6


def test_clean_answers_are_left_alone() -> None:
    secrets = secrets_for(f"Bearer {ACCESS}")
    raw = b'{"distance": 1234.5}'
    assert secrets.scrub_bytes(raw) is raw
    # A value too short to be a credential is not looked for: it would mangle bodies.
    assert not Secrets(["t", "token", None])


def test_reprs_hold_no_secret() -> None:
    client = Client(api_origin="http://127.0.0.1:9")
    auth = AuthClient(CLIENT_ID, CLIENT_SECRET)
    access = _access(ACCESS, REFRESH)
    from smartcar_async._cli._config import _Config
    from smartcar_async._cli._vehicles_file import VehicleRow

    config = _Config(
        demo=False,
        vehicles=(VehicleRow("v1", access_token=ACCESS, refresh_token=REFRESH),),
        origin=None,
        fleet_size=1,
        seed=0,
        reads=("odometer",),
        also=(),
        rounds=1,
        interval=1.0,
        jitter=0.0,
        concurrency=1,
        timeout=None,
        max_retries=None,
        units="metric",
        shard=None,
    )

    async def fn() -> str:
        return ACCESS

    car = client.vehicle("v1", access_token=ACCESS)
    objects: list[Any] = [
        client,
        auth,
        access,
        car,
        car._key,
        client.vehicle("v2", access_token=fn),
        RefreshingTokenSource(auth, access),
        config,
        secrets_for(f"Bearer {ACCESS}"),
    ]
    assert_clean([repr(o) for o in objects] + [str(o) for o in objects])


def _access(token: str, refresh: str) -> Access:
    now = datetime.now(UTC)
    return Access(
        access_token=token,
        token_type="Bearer",
        expires_in=7200,
        expiration=now + timedelta(hours=2),
        refresh_token=refresh,
        refresh_expiration=now + timedelta(days=60),
    )


async def _first(walk: Any) -> Any:
    async for item in walk:
        return item
    return None
