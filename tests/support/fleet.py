"""Fixtures of the client and coalescer tests: a three-powertrain emulator and a client on it.

Each folder's conftest imports the ones it uses, so pytest registers them there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from smartcar_async import Client
from smartcar_async.testing import Emulator, SimulatedVehicle
from support.clients import NO_RETRY, make_client
from support.tasks import assert_no_leftover_tasks


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # Seed 0, three vehicles: the fleet primer makes them an EV (Tesla), an ICE
    # (Ford) and a PHEV (Toyota), which is all the powertrains the core needs.
    async with Emulator(vehicles=3, seed=0) as emulator:
        yield emulator


@pytest.fixture
def ev(emu: Emulator) -> SimulatedVehicle:
    return emu.fleet.with_powertrain("EV")[0]


@pytest.fixture
def ice(emu: Emulator) -> SimulatedVehicle:
    return emu.fleet.with_powertrain("ICE")[0]


@pytest.fixture
def phev(emu: Emulator) -> SimulatedVehicle:
    return emu.fleet.with_powertrain("PHEV")[0]


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    """A default-configured client (retries off) on the emulator; checked for leftovers."""
    async with make_client(emu.url, **NO_RETRY) as c:
        yield c
    await assert_no_leftover_tasks()
