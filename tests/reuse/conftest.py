"""Fixtures: the shared three-powertrain emulator, and a client on it for v2 and v3."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from reuse_support import make_reuse_client
from support import assert_no_leftover_tasks
from support.fleet import emu, ev, ice, phev

from smartcar_async import Client
from smartcar_async.testing import Emulator

__all__ = ["client", "emu", "ev", "ice", "phev", "v3_token"]


@pytest.fixture
def v3_token(emu: Emulator) -> str:
    return emu.issue_tokens().access_token


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[Client]:
    """A client for v2 and v3 on the emulator (retries off); checked for leftovers."""
    async with make_reuse_client(emu) as c:
        yield c
    await assert_no_leftover_tasks()
