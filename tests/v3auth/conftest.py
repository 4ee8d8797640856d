from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from v3auth_support import CLIENT_ID, CLIENT_SECRET

from smartcar_async.testing import Emulator

_ENV = ("SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET", "SMARTCAR_IAM_ORIGIN")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own Smartcar settings must not leak into these tests.
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=3, seed=15) as emulator:
        emulator.register_client(CLIENT_ID, CLIENT_SECRET)
        yield emulator
