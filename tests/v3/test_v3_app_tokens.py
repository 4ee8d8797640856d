"""Application tokens on v3 handles: one AppTokenSource serves a whole fleet (issue 15, item 4)."""

from __future__ import annotations

import asyncio

import pytest
from support import assert_no_leftover_tasks
from v3_support import HANG_GUARD, make_v3_client

import smartcar_async as sc
from smartcar_async.testing import Emulator

CLIENT_ID = "client_v3fleet"
CLIENT_SECRET = "s3cret-V3FLEET-2b7c9d4e1f"


async def test_fifty_vehicles_share_one_application_token_and_send_sc_user_id() -> None:
    async with Emulator(vehicles=50, seed=4) as emu:
        emu.register_client(CLIENT_ID, CLIENT_SECRET)
        async with (
            sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=emu.iam_url) as source,
            make_v3_client(emu) as client,
        ):
            cars = [
                client.vehicle(v.id, access_token=source, user_id=v.user_id, api_version="3")
                for v in emu.fleet
            ]
            async with asyncio.timeout(HANG_GUARD):
                readings = await asyncio.gather(*(car.odometer() for car in cars))
        await assert_no_leftover_tasks()
        assert len(readings) == 50
        assert all(isinstance(r, sc.Odometer) for r in readings)
        assert emu.app_token_requests == 1
        owners = {v.id: v.user_id for v in emu.fleet}
        v3 = [r for r in emu.requests if r.path.startswith("/v3/vehicles/")]
        assert len(v3) == 50
        for request in v3:
            vehicle_id = request.path.split("/")[3]
            assert request.headers.get("sc-user-id") == owners[vehicle_id]


async def test_an_application_token_needs_a_user_id() -> None:
    async with Emulator(vehicles=1) as emu, make_v3_client(emu) as client:
        source = sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=emu.iam_url)
        with pytest.raises(ValueError, match="user_id"):
            client.vehicle(emu.fleet.ids[0], access_token=source, api_version="3")
        assert emu.requests == []
