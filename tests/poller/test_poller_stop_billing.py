"""A stopping poller still counts, in its state store, what its last polls were billed."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from poller_support import make_client, vehicles

from smartcar_async import FleetPoller, SQLiteState
from smartcar_async._quota import month_of
from smartcar_async.testing import Emulator


async def test_a_stop_mid_poll_still_counts_what_was_billed(emu: Emulator, tmp_path: Path) -> None:
    # odometer answers (billed) while location fails and waits for its retry:
    # the stop comes in that wait.
    vid = emu.fleet.ids[0]
    for in_batch in (True, False):
        emu.inject(500, path="/location", vehicle_id=vid, in_batch=in_batch, times=None)
    async with SQLiteState(tmp_path / "s.db") as state:
        client = make_client(emu.url, max_retries=2, retry_backoff=30.0)
        poller = FleetPoller(
            reads=("odometer", "location"),
            interval=60.0,
            jitter=0.0,
            vehicles=vehicles(client, [vid]),
            state=state,
            monthly_budget=10**8,
        )
        async with client, poller:
            with anyio.fail_after(10):
                while emu.billed_requests == 0:
                    await anyio.sleep(0.01)
            await anyio.sleep(0.1)
        assert emu.billed_requests == 1
        # The store's count of the month is what a restart budgets from: never
        # below what Smartcar billed (the client also counts the failed attempts).
        stored = await state.billed(vid, month_of(time.time()))
    assert stored >= emu.billed_requests
    assert stored == client.stats.billed_requests
