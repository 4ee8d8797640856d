from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from account_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI

from smartcar_async.testing import Emulator

_ENV = (
    "SMARTCAR_API_ORIGIN",
    "SMARTCAR_AUTH_ORIGIN",
    "SMARTCAR_CONNECT_ORIGIN",
    "SMARTCAR_MANAGEMENT_API_ORIGIN",
    "SMARTCAR_CLIENT_ID",
    "SMARTCAR_CLIENT_SECRET",
    "SMARTCAR_REDIRECT_URI",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own Smartcar settings must not leak into these tests.
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=7, seed=5) as emulator:
        emulator.register_client(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI)
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
