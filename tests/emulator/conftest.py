from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from emu_support import Api

from smartcar_async.testing import Emulator

# The plugin's fixtures, available even when the package is not installed (so
# its pytest11 entry point is not registered); when it is, these take precedence.
from smartcar_async.testing.pytest_plugin import (  # noqa: F401
    smartcar_emulator,
    smartcar_emulator_factory,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "smartcar_emulator(**kwargs): emulator fixture arguments")


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=12, seed=1) as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        yield client


@pytest.fixture
def api(emu: Emulator, session: aiohttp.ClientSession) -> Api:
    return Api(emu, session)
