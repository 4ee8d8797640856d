from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from poller_support import make_client
from support import assert_no_leftover_tasks

from smartcar_async import Client
from smartcar_async.testing import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=6, seed=3, latency=0.01, max_recorded=1000) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    async with make_client(emu.url) as c:
        yield c
    await assert_no_leftover_tasks()
