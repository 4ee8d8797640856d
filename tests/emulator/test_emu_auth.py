"""Authentication, scopes, every error type, OAuth, Management and Compatibility APIs."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
from emu_support import Api, assert_error

from smartcar_async.testing import Emulator


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Token abc", "Basic dXNlcjpwdw==", "Bearer a b"]
)
async def test_missing_or_malformed_authorization(
    api: Api, emu: Emulator, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for path in ("/v2.0/vehicles", "/v2.0/user", api.vpath(emu.fleet.ids[0], "/odometer")):
        reply = await api.get(path, token=None, headers=headers)
        body = assert_error(reply, 401, "AUTHENTICATION")
        assert body["resolution"] == {"type": None}


async def test_default_tokens_see_everything(api: Api, emu: Emulator) -> None:
    reply = await api.vget(emu.fleet.ids[5], "/permissions", params={"limit": "100"}, token="any")
    assert reply.body["paging"] == {"count": len(reply.body["permissions"]), "offset": 0}
    assert {"read_odometer", "control_charge", "read_user_profile"} <= set(
        reply.body["permissions"]
    )


async def test_registered_token_scopes_and_vehicles(api: Api, emu: Emulator) -> None:
    mine, other = emu.fleet.ids[0], emu.fleet.ids[1]
    emu.register_token("scoped", scopes=["read_vin", "read_odometer"], vehicle_ids=[mine])
    assert (await api.get("/v2.0/vehicles", token="scoped")).body == {
        "paging": {"count": 1, "offset": 0},
        "vehicles": [mine],
    }
    permissions = await api.vget(mine, "/permissions", token="scoped")
    assert permissions.body == {
        "paging": {"count": 2, "offset": 0},
        "permissions": ["read_odometer", "read_vin"],
    }
    assert (await api.vget(mine, "/odometer", token="scoped")).status == 200
    assert_error(await api.vget(mine, "/location", token="scoped"), 403, "PERMISSION")
    assert_error(
        await api.post(api.vpath(mine, "/security"), {"action": "LOCK"}, token="scoped"),
        403,
        "PERMISSION",
    )
    assert_error(await api.vget(other, "/odometer", token="scoped"), 403, "PERMISSION")
    assert_error(await api.get("/v2.0/user", token="scoped"), 403, "PERMISSION")
    assert_error(await api.vget("not-a-vehicle", "/odometer"), 403, "PERMISSION")


async def test_expire_and_revoke(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[0]
    emu.register_token("short", expires_in=30)
    assert (await api.vget(vid, "/vin", token="short")).status == 200
    emu.advance_clock(31)
    assert_error(await api.vget(vid, "/vin", token="short"), 401, "AUTHENTICATION")
    for token, action in (("e", emu.expire_token), ("r", emu.revoke_token)):
        assert (await api.vget(vid, "/vin", token=token)).status == 200
        action(token)
        assert_error(await api.vget(vid, "/vin", token=token), 401, "AUTHENTICATION")
        assert_error(await api.get("/v2.0/vehicles", token=token), 401, "AUTHENTICATION")


async def test_strict_tokens(session: aiohttp.ClientSession) -> None:
    async with Emulator(vehicles=2, accept_any_token=False) as emu:
        api = Api(emu, session)
        assert_error(await api.get("/v2.0/vehicles", token="unknown"), 401, "AUTHENTICATION")
        emu.register_token("known")
        assert (await api.get("/v2.0/vehicles", token="known")).status == 200


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (400, "CONNECTED_SERVICES_ACCOUNT", "ACCOUNT_ISSUE"),
        (400, "VALIDATION", "PARAMETER"),
        (401, "AUTHENTICATION", None),
        (403, "PERMISSION", None),
        (404, "RESOURCE_NOT_FOUND", "PATH"),
        (409, "VEHICLE_STATE", "CHARGING_IN_PROGRESS"),
        (429, "RATE_LIMIT", "SMARTCAR_API"),
        (430, "BILLING", "VEHICLE_REQUEST_LIMIT"),
        (500, "SERVER", "MULTIPLE_RECORDS_FOUND"),
        (501, "COMPATIBILITY", "SMARTCAR_NOT_CAPABLE"),
        (502, "UPSTREAM", "KNOWN_ISSUE"),
    ],
)
async def test_every_error_type_can_be_injected(
    api: Api, emu: Emulator, status: int, type_: str, code: str | None
) -> None:
    # The status follows from the type, as Smartcar's table has it.
    emu.inject(type=type_, code=code, path="/odometer")
    reply = await api.vget(emu.fleet.ids[0], "/odometer")
    body = assert_error(reply, status, type_, code)
    assert body["description"]


async def test_natural_errors(api: Api, emu: Emulator) -> None:
    """The error types the emulator produces on its own, without injection."""
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    validation = assert_error(
        await api.post(api.vpath(ev.id, "/charge/limit"), {"limit": 2}), 400, "VALIDATION"
    )
    assert validation["detail"]
    assert_error(await api.vget(ev.id, "/odometer", token=None), 401, "AUTHENTICATION")
    emu.register_token("vin-only", scopes=["read_vin"])
    permission = assert_error(
        await api.vget(ev.id, "/odometer", token="vin-only"), 403, "PERMISSION"
    )
    assert permission["resolution"] == {"type": "REAUTHENTICATE"}
    assert permission["docURL"].endswith("permission-errors#null")
    assert_error(await api.get("/v2.0/odometer"), 404, "RESOURCE_NOT_FOUND", "PATH")
    emu.faults.asleep.add(ev.id)
    asleep = assert_error(await api.vget(ev.id, "/odometer"), 409, "VEHICLE_STATE", "ASLEEP")
    assert asleep["docURL"].endswith("vehicle-state-errors#asleep")
    assert_error(await api.vget(ice.id, "/battery"), 501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE")


# -- OAuth ---------------------------------------------------------------------


async def token_call(
    api: Api, form: dict[str, str], auth: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    headers = basic("client", "secret") if auth is None else auth
    reply = await api.call("POST", "/oauth/token", token=None, data=form, headers=headers)
    assert reply.headers["Content-Type"] == "application/json"
    return reply.status, reply.body


async def test_authorization_code_grant(api: Api, emu: Emulator) -> None:
    vid = emu.fleet.ids[2]
    code = emu.issue_code(scopes=["read_odometer"], vehicle_ids=[vid])
    status, tokens = await token_call(
        api,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://app.example/cb",
        },
    )
    assert status == 200
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 7200)
    access = tokens["access_token"]
    assert (await api.vget(vid, "/odometer", token=access)).status == 200
    assert_error(await api.vget(vid, "/location", token=access), 403, "PERMISSION")
    assert (await api.get("/v2.0/vehicles", token=access)).body["vehicles"] == [vid]
    assert (await api.get("/v2.0/vehicles", token=tokens["refresh_token"])).status == 200

    status, error = await token_call(api, {"grant_type": "authorization_code", "code": code})
    assert (status, error) == (
        400,
        {"error": "invalid_grant", "error_description": f"Invalid code: {code}."},
    )
    status, error = await token_call(api, {"grant_type": "authorization_code", "code": "nope"})
    assert status == 400
    assert error["error"] == "invalid_grant"
    status, error = await token_call(api, {"grant_type": "authorization_code"})
    assert status == 400
    assert error["error"] == "invalid_request"

    emu.advance_clock(7200)
    assert_error(await api.vget(vid, "/odometer", token=access), 401, "AUTHENTICATION")


async def test_client_authentication(api: Api, emu: Emulator) -> None:
    code = emu.issue_code()
    form = {"grant_type": "authorization_code", "code": code}
    status, error = await token_call(api, form, auth={})
    assert (status, error["error"]) == (401, "invalid_client")
    emu.register_client("client", "secret", "https://app.example/cb")
    status, error = await token_call(api, form, auth=basic("client", "wrong"))
    assert (status, error["error"]) == (401, "invalid_client")
    status, error = await token_call(api, form, auth=basic("stranger", "secret"))
    assert (status, error["error"]) == (401, "invalid_client")
    status, error = await token_call(api, {**form, "redirect_uri": "https://evil.example/"})
    assert (status, error["error"]) == (400, "invalid_grant")
    status, _ = await token_call(
        api,
        {
            "grant_type": "authorization_code",
            "code": emu.issue_code(),
            "redirect_uri": "https://app.example/cb",
        },
    )
    assert status == 200
    status, error = await token_call(api, {"grant_type": "password"})
    assert (status, error["error"]) == (400, "unsupported_grant_type")
    bound = emu.issue_code(client_id="someone-else")
    status, error = await token_call(api, {"grant_type": "authorization_code", "code": bound})
    assert (status, error["error"]) == (400, "invalid_grant")


async def test_refresh_grant_and_grace_window(api: Api, emu: Emulator) -> None:
    emu.refresh_token_grace = 60
    status, first = await token_call(
        api, {"grant_type": "authorization_code", "code": emu.issue_code(scopes=["read_vin"])}
    )
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    status, second = await token_call(api, refresh)
    assert status == 200
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    emu.advance_clock(59)
    # A concurrent refresher inside the grace window still succeeds.
    status, third = await token_call(api, refresh)
    assert status == 200
    permissions = await api.vget(emu.fleet.ids[0], "/permissions", token=third["access_token"])
    assert permissions.body["permissions"] == ["read_vin"]
    emu.advance_clock(2)
    status, error = await token_call(api, refresh)
    assert (status, error) == (
        400,
        {
            "error": "invalid_grant",
            "error_description": f"Invalid refresh_token: {first['refresh_token']}.",
        },
    )
    status, _ = await token_call(
        api, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
    )
    assert status == 200
    emu.advance_clock(61 * 86_400)
    status, error = await token_call(
        api, {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}
    )
    assert (status, error["error"]) == (400, "invalid_grant")


# -- Management and Compatibility ------------------------------------------------------


async def test_management_connections(api: Api, emu: Emulator) -> None:
    emu.management_token = "amt"
    auth = basic("default", "amt")
    path = "/v2.0/management/connections"
    first = await api.get(path, token=None, headers=auth)
    assert first.status == 200
    assert len(first.body["connections"]) == 10
    assert set(first.body["connections"][0]) == {"userId", "vehicleId", "connectedAt", "mode"}
    stamps = [c["connectedAt"] for c in first.body["connections"]]
    assert stamps == sorted(stamps, reverse=True)
    rest = await api.get(
        path + "/",
        token=None,
        headers=auth,
        params={"cursor": first.body["paging"]["cursor"], "limit": "100"},
    )
    assert rest.body["paging"] == {"cursor": None}
    seen = [c["vehicleId"] for c in first.body["connections"] + rest.body["connections"]]
    assert sorted(seen) == sorted(emu.fleet.ids)

    user = emu.fleet.vehicles[0].user_id
    mine = await api.get(path, token=None, headers=auth, params={"user_id": user})
    assert {c["vehicleId"] for c in mine.body["connections"]} == {
        v.id for v in emu.fleet if v.user_id == user
    }
    one = await api.get(path, token=None, headers=auth, params={"vehicle_id": emu.fleet.ids[3]})
    assert [c["vehicleId"] for c in one.body["connections"]] == [emu.fleet.ids[3]]
    simulated = await api.get(path, token=None, headers=auth, params={"mode": "simulated"})
    assert simulated.body["connections"] == []

    for params in ({"limit": "101"}, {"limit": "0"}, {"cursor": "!!!"}, {"mode": "fake"}):
        assert_error(
            await api.get(path, token=None, headers=auth, params=params), 400, "VALIDATION"
        )
    for headers in (
        basic("default", "wrong"),
        basic("admin", "amt"),
        {"Authorization": "Bearer amt"},
        {},
    ):
        assert_error(await api.get(path, token=None, headers=headers), 401, "AUTHENTICATION")

    assert_error(await api.call("DELETE", path, token=None, headers=auth), 400, "VALIDATION")
    deleted = await api.call("DELETE", path, token=None, headers=auth, params={"user_id": user})
    expected = [{"userId": user, "vehicleId": v.id} for v in emu.fleet if v.user_id == user]
    assert deleted.body == {"connections": expected}
    assert_error(await api.vget(expected[0]["vehicleId"], "/odometer"), 401, "AUTHENTICATION")
    after = await api.get(path, token=None, headers=auth, params={"limit": "100"})
    assert len(after.body["connections"]) == len(emu.fleet) - len(expected)


async def test_compatibility(api: Api, emu: Emulator) -> None:
    ev, ice = emu.fleet.vehicles[0], emu.fleet.vehicles[1]
    auth = basic("client", "secret")
    reply = await api.get(
        "/v2.0/compatibility",
        token=None,
        headers=auth,
        params={"vin": ice.vin, "scope": "read_fuel read_battery read_vin", "country": "US"},
    )
    assert reply.body["compatible"] is True
    assert reply.body["reason"] is None
    capabilities = {c["endpoint"]: c for c in reply.body["capabilities"]}
    assert capabilities["/fuel"] == {
        "capable": True,
        "endpoint": "/fuel",
        "permission": "read_fuel",
        "reason": None,
    }
    assert capabilities["/battery"]["capable"] is False
    assert capabilities["/battery"]["reason"] == "VEHICLE_NOT_CAPABLE"
    unknown = await api.get(
        "/v2.0/compatibility",
        token=None,
        headers=auth,
        params={"vin": "00000000000000000", "scope": "read_vin"},
    )
    assert unknown.body == {
        "compatible": False,
        "reason": "VEHICLE_NOT_COMPATIBLE",
        "capabilities": [],
    }
    assert_error(
        await api.get(
            "/v2.0/compatibility", token=None, headers=auth, params={"scope": "read_vin"}
        ),
        400,
        "VALIDATION",
    )
    assert_error(
        await api.get(
            "/v2.0/compatibility", token=None, params={"vin": ev.vin, "scope": "read_vin"}
        ),
        401,
        "AUTHENTICATION",
    )

    matrix = await api.get(
        "/v2.0/compatibility/matrix",
        token=None,
        headers=auth,
        params={"region": "US", "make": "tesla", "type": "BEV"},
    )
    assert list(matrix.body) == ["TESLA"]
    model = matrix.body["TESLA"][0]
    assert set(model) == {"model", "startYear", "endYear", "type", "endpoints", "permissions"}
    assert model["type"] == "BEV"
    assert "read_battery" in model["permissions"]
    every = await api.get(
        "/v2.0/compatibility/matrix",
        token=None,
        headers=auth,
        params={"region": "EUROPE", "type": "ICE"},
    )
    assert all(m["type"] == "ICE" for models in every.body.values() for m in models)
    assert_error(
        await api.get(
            "/v2.0/compatibility/matrix", token=None, headers=auth, params={"region": "MARS"}
        ),
        400,
        "VALIDATION",
    )
