"""Helpers of the reuse tests: a client on the emulator, and a clock the test moves."""

from __future__ import annotations

import time
from typing import Any

from support import NO_RETRY, make_client

from smartcar_async import Client
from smartcar_async.testing import Emulator


def make_reuse_client(emu: Emulator, **overrides: Any) -> Client:
    return make_client(emu.url, vehicle_api_origin=emu.vehicle_api_url, **{**NO_RETRY, **overrides})


class Clock:
    """Monotonic time plus an offset the test advances: ages grow without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def clock_of(client: Client) -> Clock:
    """Put a movable clock under the client's reading cache (before anything is stored)."""
    clock = Clock()
    client.readings.monotonic = clock
    return clock
