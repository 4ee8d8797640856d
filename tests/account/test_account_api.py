"""Module-level account calls against the emulator over loopback: user, vehicles,
compatibility, Management API connections, and the paging iterators."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from account_support import AMT, CLIENT_ID, CLIENT_SECRET
from aiohttp import web
from aiohttp.test_utils import TestServer

from smartcar_async import (
    AuthenticationError,
    Client,
    Compatibility,
    Connection,
    InvalidResponseError,
    PermissionDeniedError,
    User,
    ValidationError,
    Vehicles,
)
from smartcar_async._account import _api as account
from smartcar_async._account._api import (
    delete_connections,
    get_compatibility,
    get_compatibility_matrix,
    get_connections,
    get_user,
    get_vehicles,
    iter_connections,
    iter_permissions,
    iter_vehicles,
)
from smartcar_async.testing import Emulator

CREDS: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[aiohttp.ClientSession]:
    """Every session the library opens for itself during the test."""
    created: list[aiohttp.ClientSession] = []
    real = aiohttp.ClientSession

    def tracking(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        made = real(*args, **kwargs)
        created.append(made)
        return made

    # _http looks the class up on the aiohttp module at call time.
    monkeypatch.setattr(aiohttp, "ClientSession", tracking)
    return created


# ---------------------------------------------------------------- user


async def test_get_user(emu: Emulator, sessions: list[aiohttp.ClientSession]) -> None:
    emu.register_token("tok-user", ["read_user_profile"], user_id="user-7")
    user = await get_user("tok-user", api_origin=emu.url)
    assert user == User("user-7", meta=user.meta)
    assert user.meta.request_id is not None
    (call,) = emu.requests
    assert (call.method, call.path) == ("GET", "/v2.0/user")
    assert call.headers["Authorization"] == "Bearer tok-user"
    assert call.headers["User-Agent"].startswith("smartcar-async/")
    # The one-off session was closed again.
    assert len(sessions) == 1
    assert sessions[0].closed


async def test_get_user_errors_do_not_echo_the_token(emu: Emulator) -> None:
    emu.register_token("tok-no-profile", ["read_vin"])
    with pytest.raises(PermissionDeniedError) as caught:
        await get_user("tok-no-profile", api_origin=emu.url)
    assert "tok-no-profile" not in repr(caught.value)
    emu.expire_token("tok-no-profile")
    with pytest.raises(AuthenticationError):
        await get_user("tok-no-profile", api_origin=emu.url)


async def test_api_origin_falls_back_to_the_environment(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCAR_API_ORIGIN", emu.url)
    assert (await get_user("any")).id
    assert len((await get_vehicles("any")).vehicles) == 7


# ------------------------------------------------------------- vehicles


async def test_get_vehicles_paging(emu: Emulator, session: aiohttp.ClientSession) -> None:
    page = await get_vehicles("any", limit=3, offset=2, api_origin=emu.url, session=session)
    assert isinstance(page, Vehicles)
    assert page.vehicles == tuple(emu.fleet.ids[2:5])
    assert (page.paging.count, page.paging.offset) == (7, 2)
    assert emu.requests[0].query == {"limit": "3", "offset": "2"}
    assert not session.closed


async def test_get_vehicles_sends_no_paging_unless_asked(emu: Emulator) -> None:
    await get_vehicles("any", api_origin=emu.url)
    assert emu.requests[0].query == {}


async def test_iter_vehicles_walks_every_page(
    emu: Emulator, sessions: list[aiohttp.ClientSession]
) -> None:
    seen = [vid async for vid in iter_vehicles("any", page_size=3, api_origin=emu.url)]
    assert seen == emu.fleet.ids
    assert [r.query["offset"] for r in emu.requests] == ["0", "3", "6"]
    # One session for the whole walk, closed at the end.
    assert len(sessions) == 1
    assert sessions[0].closed


async def test_iter_vehicles_sees_only_granted_vehicles(emu: Emulator) -> None:
    granted = emu.fleet.ids[1:4]
    emu.register_token("narrow", vehicle_ids=granted)
    assert [v async for v in iter_vehicles("narrow", api_origin=emu.url)] == granted


async def test_iter_vehicles_early_stop_releases_the_session(
    emu: Emulator, sessions: list[aiohttp.ClientSession]
) -> None:
    walk = iter_vehicles("any", page_size=2, api_origin=emu.url)
    async with contextlib.aclosing(walk) as vehicles:
        async for _ in vehicles:
            break
    assert sessions[-1].closed
    # Breaking without aclosing: the event loop's async-generator hook closes it.
    async for _ in iter_vehicles("any", page_size=2, api_origin=emu.url):
        break
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0.01)
    assert all(s.closed for s in sessions)


async def test_iter_vehicles_borrowed_session_stays_open(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    got = [v async for v in iter_vehicles("any", page_size=50, api_origin=emu.url, session=session)]
    assert len(got) == 7
    assert not session.closed


# -------------------------------------------------------- compatibility


async def test_get_compatibility(emu: Emulator) -> None:
    vehicle = emu.fleet[0]
    result = await get_compatibility(
        vehicle.vin,
        ["read_odometer", "read_location"],
        flags={"beta": True},
        api_origin=emu.url,
        **CREDS,
    )
    assert isinstance(result, Compatibility)
    assert result.compatible
    assert result.reason is None
    assert {c.permission for c in result.capabilities} == {"read_odometer", "read_location"}
    (call,) = emu.requests
    assert call.path == "/v2.0/compatibility"
    assert call.query == {
        "vin": vehicle.vin,
        "scope": "read_odometer read_location",
        "country": "US",
        "flags": "beta:true",
    }
    assert call.headers["Authorization"] == _basic(CLIENT_ID, CLIENT_SECRET)


async def test_get_compatibility_unknown_vin(emu: Emulator) -> None:
    result = await get_compatibility(
        "1HGCM82633A004352", ["read_vin"], "ca", api_origin=emu.url, **CREDS
    )
    assert (result.compatible, result.reason) == (False, "VEHICLE_NOT_COMPATIBLE")
    assert emu.requests[0].query["country"] == "CA"


async def test_client_credentials_fall_back_to_the_environment(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCAR_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SMARTCAR_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SMARTCAR_API_ORIGIN", emu.url)
    assert (await get_compatibility(emu.fleet[1].vin, ["read_vin"])).compatible
    assert (await get_compatibility_matrix("US")).makes
    assert emu.requests[0].headers["Authorization"] == _basic(CLIENT_ID, CLIENT_SECRET)


async def test_wrong_client_secret(emu: Emulator) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await get_compatibility(
            emu.fleet[0].vin,
            ["read_vin"],
            client_id=CLIENT_ID,
            client_secret="wrong-secret-xyz",
            api_origin=emu.url,
        )
    assert "wrong-secret-xyz" not in repr(caught.value)


async def test_get_compatibility_matrix(emu: Emulator) -> None:
    matrix = await get_compatibility_matrix(
        "us", make="TESLA", type="bev", scope=["read_battery"], api_origin=emu.url, **CREDS
    )
    assert set(matrix.makes) == {"TESLA"}
    for entry in matrix.makes["TESLA"]:
        assert entry.type == "BEV"
        assert "read_battery" in entry.permissions
        assert entry.start_year <= entry.end_year
    assert emu.requests[0].query == {
        "region": "US",
        "make": "TESLA",
        "type": "BEV",
        "scope": "read_battery",
    }
    everything = await get_compatibility_matrix("EUROPE", api_origin=emu.url, **CREDS)
    assert len(everything.makes) > 1


# ------------------------------------------------------- Management API


async def test_get_connections_and_cursor(emu: Emulator) -> None:
    emu.management_token = AMT
    first = await get_connections(AMT, limit=4, management_origin=emu.url)
    assert len(first.connections) == 4
    assert first.paging.cursor is not None
    second = await get_connections(
        AMT, limit=4, cursor=first.paging.cursor, management_origin=emu.url
    )
    assert len(second.connections) == 3
    assert second.paging.cursor is None
    every = first.connections + second.connections
    assert {c.vehicle_id for c in every} == set(emu.fleet.ids)
    # Newest first.
    stamps = [c.connected_at for c in every]
    assert all(s is not None for s in stamps)
    assert stamps == sorted(stamps, reverse=True)  # type: ignore[type-var]
    call = emu.requests[0]
    assert call.path == "/v2.0/management/connections"
    assert call.headers["Authorization"] == _basic("default", AMT)


async def test_connection_filters(emu: Emulator) -> None:
    vehicle = emu.fleet[2]
    by_vehicle = await get_connections("amt", vehicle_id=vehicle.id, management_origin=emu.url)
    assert [(c.user_id, c.vehicle_id) for c in by_vehicle.connections] == [
        (vehicle.user_id, vehicle.id)
    ]
    by_user = await get_connections("amt", user_id=vehicle.user_id, management_origin=emu.url)
    expected = {v.id for v in emu.fleet if v.user_id == vehicle.user_id}
    assert {c.vehicle_id for c in by_user.connections} == expected
    simulated = await get_connections("amt", mode="simulated", management_origin=emu.url)
    assert simulated.connections == ()
    assert emu.requests[-1].query == {"mode": "simulated"}


async def test_wrong_management_token(emu: Emulator) -> None:
    emu.management_token = AMT
    with pytest.raises(AuthenticationError) as caught:
        await get_connections("not-the-amt-123", management_origin=emu.url)
    assert "not-the-amt-123" not in repr(caught.value)


async def test_iter_connections(emu: Emulator, sessions: list[aiohttp.ClientSession]) -> None:
    every = [c async for c in iter_connections("amt", page_size=2, management_origin=emu.url)]
    assert all(isinstance(c, Connection) for c in every)
    assert sorted(c.vehicle_id for c in every) == sorted(emu.fleet.ids)
    assert len(emu.requests) == 4
    assert "cursor" not in emu.requests[0].query
    assert all(r.query["limit"] == "2" for r in emu.requests)
    assert len(sessions) == 1
    assert sessions[0].closed


async def test_management_origin_falls_back_to_the_environment(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCAR_MANAGEMENT_API_ORIGIN", emu.url)
    assert len([c async for c in iter_connections("amt")]) == 7


async def test_delete_connections(emu: Emulator) -> None:
    target = emu.fleet[0]
    removed = await delete_connections("amt", vehicle_id=target.id, management_origin=emu.url)
    assert [(c.user_id, c.vehicle_id) for c in removed.connections] == [(target.user_id, target.id)]
    assert emu.requests[-1].method == "DELETE"
    assert target.id not in (await get_vehicles("any", limit=50, api_origin=emu.url)).vehicles
    # Both filters at once, as the current docs allow: that vehicle for that user only.
    other = emu.fleet[1]
    both = await delete_connections(
        "amt", user_id=other.user_id, vehicle_id=other.id, management_origin=emu.url
    )
    assert [c.vehicle_id for c in both.connections] == [other.id]
    assert emu.requests[-1].query == {"user_id": other.user_id, "vehicle_id": other.id}


# --------------------------------------------------------- permissions


async def test_iter_permissions(emu: Emulator) -> None:
    emu.register_token(
        "perm", ["read_vin", "read_odometer", "read_battery", "read_fuel", "read_tires"]
    )
    async with Client(api_origin=emu.url) as client:
        vehicle = client.vehicle(emu.fleet.ids[3], access_token="perm")
        walked = [p async for p in iter_permissions(vehicle, page_size=2)]
        whole = await vehicle.permissions(limit=100)
    assert walked == list(whole.permissions)
    assert len(walked) == 5
    pages = [r.query for r in emu.requests if r.path.endswith("/permissions")]
    assert pages[:3] == [
        {"limit": "2", "offset": "0"},
        {"limit": "2", "offset": "2"},
        {"limit": "2", "offset": "4"},
    ]


# ----------------------------------------------------- argument checks

VIN = "5YJ3E1EA7KF317000"
NO_CREDS: dict[str, Any] = {}
BAD_FLAG = {**CREDS, "flags": {"a": ""}}
BadCall = tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any], type[Exception]]
BAD_CALLS: list[BadCall] = [
    ("user: empty token", get_user, ("",), {}, ValueError),
    ("user: token with newline", get_user, ("a\nb",), {}, ValueError),
    ("user: token not str", get_user, (None,), {}, TypeError),
    ("vehicles: limit 0", get_vehicles, ("t",), {"limit": 0}, ValueError),
    ("vehicles: limit 51", get_vehicles, ("t",), {"limit": 51}, ValueError),
    ("vehicles: offset -1", get_vehicles, ("t",), {"offset": -1}, ValueError),
    ("vehicles: limit str", get_vehicles, ("t",), {"limit": "5"}, TypeError),
    ("vehicles: limit bool", get_vehicles, ("t",), {"limit": True}, TypeError),
    ("vehicles: bad timeout", get_vehicles, ("t",), {"timeout": -1}, ValueError),
    ("compat: short VIN", get_compatibility, ("123", ["read_vin"]), CREDS, ValueError),
    ("compat: VIN symbol", get_compatibility, (VIN[:-1] + "-", ["read_vin"]), CREDS, ValueError),
    ("compat: str scope", get_compatibility, (VIN, "read_vin"), CREDS, TypeError),
    ("compat: empty scope", get_compatibility, (VIN, []), CREDS, ValueError),
    ("compat: country", get_compatibility, (VIN, ["read_vin"], "USA"), CREDS, ValueError),
    ("compat: no creds", get_compatibility, (VIN, ["read_vin"]), NO_CREDS, ValueError),
    ("compat: bad flag", get_compatibility, (VIN, ["read_vin"]), BAD_FLAG, ValueError),
    ("matrix: region", get_compatibility_matrix, ("MARS",), CREDS, ValueError),
    ("matrix: type", get_compatibility_matrix, ("US",), {**CREDS, "type": "EV"}, ValueError),
    ("matrix: no creds", get_compatibility_matrix, ("US",), NO_CREDS, ValueError),
    ("connections: empty amt", get_connections, (" ",), {}, ValueError),
    ("connections: limit 101", get_connections, ("a",), {"limit": 101}, ValueError),
    ("connections: empty cursor", get_connections, ("a",), {"cursor": ""}, ValueError),
    ("connections: mode", get_connections, ("a",), {"mode": "prod"}, ValueError),
    ("delete: no filter", delete_connections, ("a",), {}, ValueError),
    ("delete: empty user", delete_connections, ("a",), {"user_id": ""}, ValueError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "func", "args", "kwargs", "error"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS]
)
async def test_arguments_are_checked_before_any_request(
    emu: Emulator,
    name: str,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    where = "management_origin" if func.__name__.endswith("connections") else "api_origin"
    with pytest.raises(error):
        await func(*args, **kwargs, **{where: emu.url})
    assert emu.requests == []


async def test_bad_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="api_origin"):
        await get_vehicles("t", api_origin="localhost:80")


def test_iterators_check_arguments_when_called() -> None:
    # No event loop, no request: the checks run before the first step.
    with pytest.raises(ValueError, match="access_token"):
        iter_vehicles("")
    with pytest.raises(ValueError, match="page_size"):
        iter_vehicles("t", page_size=51)
    with pytest.raises(ValueError, match="page_size"):
        iter_connections("amt", page_size=0)
    with pytest.raises(ValueError, match="user_id"):
        iter_connections("amt", user_id="")
    with pytest.raises(TypeError, match="Vehicle"):
        iter_permissions("vehicle-id")  # type: ignore[arg-type]


async def test_iter_permissions_checks_page_size(emu: Emulator) -> None:
    async with Client(api_origin=emu.url) as client:
        with pytest.raises(ValueError, match="page_size"):
            iter_permissions(client.vehicle(emu.fleet.ids[0], access_token="t"), page_size=0)


# ------------------------------------------- a misbehaving server's paging


@pytest.fixture
async def liar() -> AsyncIterator[str]:
    """A server whose paging never ends on its own: same cursor, counts it cannot fill."""

    async def connections(request: web.Request) -> web.Response:
        return web.json_response(
            {"connections": [{"userId": "u", "vehicleId": "v"}], "paging": {"cursor": "again"}}
        )

    async def vehicles(request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", "0"))
        ids = ["a", "b"] if offset == 0 else []
        return web.json_response({"paging": {"count": 99, "offset": offset}, "vehicles": ids})

    app = web.Application()
    app.router.add_get("/v2.0/management/connections", connections)
    app.router.add_get("/v2.0/vehicles", vehicles)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/"))


async def test_a_repeated_cursor_stops_the_walk(liar: str) -> None:
    got: list[Connection] = []

    async def walk() -> None:
        async for connection in iter_connections("amt", management_origin=liar):
            got.append(connection)

    with pytest.raises(InvalidResponseError, match="cursor"):
        await walk()
    assert len(got) == 2


async def test_an_empty_page_ends_the_walk(liar: str) -> None:
    assert [v async for v in iter_vehicles("t", api_origin=liar)] == ["a", "b"]


async def test_validation_error_from_the_server(emu: Emulator) -> None:
    with pytest.raises(ValidationError):
        await get_connections("amt", cursor="not-a-cursor", management_origin=emu.url)


def test_public_names() -> None:
    for name in ("get_user", "get_vehicles", "iter_vehicles", "delete_connections"):
        assert name in account.__all__
