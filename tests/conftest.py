from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp is our transport, so asyncio is the only backend that can run us.
    return "asyncio"
