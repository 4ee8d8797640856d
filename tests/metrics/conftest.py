from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry
from support import assert_no_leftover_tasks

from smartcar_async.testing import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # Seed 0, three vehicles: an EV, an ICE and a PHEV (see tests/client/conftest.py).
    async with Emulator(vehicles=3, seed=0) as emulator:
        yield emulator
    await assert_no_leftover_tasks()


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test: nothing leaks into prometheus_client's global one."""
    return CollectorRegistry()
