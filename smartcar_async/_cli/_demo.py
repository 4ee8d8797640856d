"""The demo: with no token, ``poll`` polls a simulated fleet on the built-in emulator.

Within ``smartcar_async``, only the command line (this package) may import
the emulator, ``smartcar_async.testing``; this module is where it does, lazily,
so that a run against the API never loads it.
"""

from __future__ import annotations

import contextlib
import random
from typing import TYPE_CHECKING

import attrs

from ._defaults import (
    DEMO_ASLEEP,
    DEMO_ITEM_ERRORS,
    DEMO_LATENCY,
    DEMO_SERVER_ERRORS,
    DEMO_UNREACHABLE,
)
from ._vehicles_file import VehicleRow

if TYPE_CHECKING:
    from ..testing import Emulator, Faults


@attrs.frozen
class _Demo:
    """A started emulator's fleet, as the run polls it."""

    origin: str
    vehicles: list[VehicleRow] = attrs.field(repr=lambda rows: f"<{len(rows)} vehicles>")
    #: What the summary calls it, and (with its faults) what the first line does.
    label: str
    where: str


async def _start_demo(stack: contextlib.AsyncExitStack, fleet_size: int, seed: int) -> _Demo:
    """Start the emulator on ``stack``, with some latency and a few faults."""
    from ..testing import Emulator

    emu = Emulator(vehicles=fleet_size, seed=seed, latency=DEMO_LATENCY, max_recorded=0)
    emu.faults, described = _demo_faults(emu, seed)
    await stack.enter_async_context(emu)
    # One token per vehicle, as a real fleet has one per owner.
    vehicles = [
        VehicleRow(vid, access_token=f"demo-token-{n:05d}") for n, vid in enumerate(emu.fleet.ids)
    ]
    label = f"the built-in emulator (seed {seed})"
    return _Demo(emu.url, vehicles, label, where=f"{label[:-1]}; {described})")


def _demo_faults(emu: Emulator, seed: int) -> tuple[Faults, str]:
    """A few asleep and unreachable vehicles and some 5xx, so the summary has errors to show."""
    from ..testing import Faults

    ids = emu.fleet.ids
    rng = random.Random(seed)
    # At least one of each in a fleet big enough to spare it, so the demo shows them.
    asleep = set(rng.sample(ids, _at_least_one(len(ids), DEMO_ASLEEP)))
    awake = [vid for vid in ids if vid not in asleep]
    unreachable = set(rng.sample(awake, _at_least_one(len(ids), DEMO_UNREACHABLE)))
    faults = Faults(
        seed=seed,
        server_error_rate=DEMO_SERVER_ERRORS,
        item_error_rate=DEMO_ITEM_ERRORS,
        asleep=asleep,
        unreachable=unreachable,
    )
    low, high = DEMO_LATENCY
    described = (
        f"{low * 1000:.0f}-{high * 1000:.0f} ms latency, {len(asleep)} asleep, "
        f"{len(unreachable)} unreachable, {DEMO_SERVER_ERRORS:.0%} HTTP 5xx, "
        f"{DEMO_ITEM_ERRORS:.1%} failed batch items"
    )
    return faults, described


def _at_least_one(size: int, fraction: float) -> int:
    return max(1, round(size * fraction)) if size * fraction * 10 >= 1 else 0
