from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from support import assert_no_leftover_tasks
from v3_support import make_v3_client

from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # Seed 0, three vehicles: an EV (Tesla), an ICE (Ford) and a PHEV (Toyota).
    async with Emulator(vehicles=3, seed=0) as emulator:
        yield emulator


@pytest.fixture
def ev(emu: Emulator) -> SimulatedVehicle:
    return emu.fleet.with_powertrain("EV")[0]


@pytest.fixture
def ice(emu: Emulator) -> SimulatedVehicle:
    return emu.fleet.with_powertrain("ICE")[0]


@pytest.fixture
def token(emu: Emulator) -> str:
    return emu.issue_tokens().access_token


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    """A client on the emulator for v2 and v3 (retries off); checked for leftovers."""
    async with make_v3_client(emu) as c:
        yield c
    await assert_no_leftover_tasks()
