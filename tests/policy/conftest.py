from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from policy_support import CLIENT_ID, CLIENT_SECRET
from support import assert_no_leftover_tasks

from smartcar_async import AuthClient
from smartcar_async.testing import Emulator


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Every resilience test ends with no task of ours still pending."""
    yield
    await assert_no_leftover_tasks()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # Six vehicles, seed 0: odometer, location, vin, attributes, tires,
    # lock status and lock/unlock work on every one of them.
    async with Emulator(vehicles=6, seed=0) as emulator:
        emulator.register_client(CLIENT_ID, CLIENT_SECRET)
        yield emulator


@pytest.fixture
def ids(emu: Emulator) -> list[str]:
    return emu.fleet.ids


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
        yield s


@pytest.fixture
async def exchanger(emu: Emulator) -> AsyncIterator[AuthClient]:
    """The package's AuthClient on the emulator's OAuth endpoint."""
    async with AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url) as auth:
        yield auth
