"""Billed requests per vehicle per day: a fleet polled every 5 minutes for three reads.

    python benchmarks/billed_requests.py                 # 1,000 vehicles, 6 cycles per setup
    python benchmarks/billed_requests.py --smoke --out /tmp/x   # 20 vehicles, seconds

Every setup polls the same fleet (odometer, location and lock status of every
vehicle, every 5 minutes) against one emulator, which counts the requests
Smartcar would bill (``emu.billed_requests``: every path of a batch is one).
Time is simulated: each cycle moves the emulator clock and the client's reuse
clocks forward by the interval at once, so a day is 288 cycles; the figure per
day is the steady-state count per cycle (after one warm-up cycle) x 288.

Setups:

* ``official_sdk``: ``smartcar`` 6.19's plain loop, one call per read (on a
  thread pool, as in run.py); it has no reuse, so webhooks change nothing.
* ``smartcar_async``: one client, one handle per vehicle; with or without
  ``max_age`` equal to the interval, and with or without a webhook feed
  covering half the fleet: a signed 4.0 ``VEHICLE_STATE`` delivery per covered
  vehicle half way through each interval, POSTed by the emulator to a
  receiver on loopback that verifies it and calls ``client.ingest_webhook``.
* ``+ on-demand``: the same, plus an application reading the three values of
  every vehicle once between two polls (a dashboard), which is where
  ``max_age`` alone pays: a poll's answer is exactly one interval old at the
  next poll, so a pure poll loop never reuses its own answers.

Written to ``results/billed_requests.json`` and printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _contenders import SDK_THREADS, TOKEN, UNIT_SYSTEM, _clear_proxies

import smartcar_async
from smartcar_async.testing import Emulator

HERE = Path(__file__).resolve().parent
INTERVAL = 300.0
PER_DAY = 86_400 / INTERVAL
READS = ("odometer", "location", "lock_status")
AMT = "benchmark-management-token"
#: name: (vehicles, cycles measured after the warm-up one)
PROFILES = {"full": (1000, 6), "quick": (300, 3), "smoke": (20, 2)}

logging.getLogger("smartcar_async").setLevel(logging.ERROR)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class SimClock:
    """The reuse cache's clocks, moved forward with the emulator's."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.emu.advance_clock(seconds)


# ---------------------------------------------------------------- ours


async def _ours(
    emu: Emulator,
    ids: Sequence[str],
    cycles: int,
    *,
    max_age: float | None,
    webhooks: bool,
    on_demand: bool,
) -> float:
    clock = SimClock(emu)
    covered = ids[::2] if webhooks else []
    async with smartcar_async.Client(api_origin=emu.url, timeout=60, max_retries=0) as client:
        client.readings.monotonic = clock.monotonic
        client.readings.wall = clock.wall
        cars = [client.vehicle(i, access_token=TOKEN, max_age=max_age) for i in ids]

        async def receiver(request: web.Request) -> web.Response:
            raw = await request.read()
            signature = request.headers.get(smartcar_async.SIGNATURE_HEADER)
            if not smartcar_async.verify_payload(AMT, signature, raw):
                return web.Response(status=401)
            client.ingest_webhook(smartcar_async.parse_webhook(raw))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/webhook", receiver)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/webhook"

        async def read_all() -> None:
            await asyncio.gather(*(getattr(car, name)() for car in cars for name in READS))

        async def deliver() -> None:
            for start in range(0, len(covered), 100):
                chunk = covered[start : start + 100]
                await asyncio.gather(
                    *(
                        emu.deliver_webhook(url, vehicle_ids=[i], version="4.0", amt=AMT)
                        for i in chunk
                    )
                )

        try:
            billed = 0
            for cycle in range(cycles + 1):
                clock.advance(INTERVAL / 2)
                await deliver()
                if on_demand:
                    await read_all()
                clock.advance(INTERVAL / 2)
                await read_all()
                if cycle == 0:  # warm-up: the first poll finds nothing to reuse
                    billed = emu.billed_requests
            billed = emu.billed_requests - billed
        finally:
            await runner.cleanup()
    return billed / len(ids) / cycles * PER_DAY


# ---------------------------------------------------------------- the SDK


def _sdk(emu: Emulator, ids: Sequence[str], cycles: int, *, on_demand: bool) -> float:
    _clear_proxies()
    os.environ["SMARTCAR_API_ORIGIN"] = emu.url
    import smartcar
    import smartcar.config

    smartcar.config.API_ORIGIN = emu.url
    vehicles = [smartcar.Vehicle(i, TOKEN, {"unit_system": UNIT_SYSTEM}) for i in ids]
    calls: list[Callable[[], Any]] = [getattr(v, n) for v in vehicles for n in READS]

    def read_all(pool: ThreadPoolExecutor) -> None:
        for future in [pool.submit(call) for call in calls]:
            future.result()

    with ThreadPoolExecutor(SDK_THREADS) as pool:
        before = emu.billed_requests
        for _ in range(cycles):
            emu.advance_clock(INTERVAL / 2)
            if on_demand:
                read_all(pool)
            emu.advance_clock(INTERVAL / 2)
            read_all(pool)
        billed = emu.billed_requests - before
    return billed / len(ids) / cycles * PER_DAY


# ---------------------------------------------------------------- the run


def run(vehicles: int, cycles: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    emu = Emulator(vehicles=vehicles, seed=1, max_recorded=0, management_token=AMT)
    with emu.in_thread():
        ids = [v.id for v in emu.fleet.vehicles]

        def ours(**setup: Any) -> Awaitable[float]:
            return _ours(emu, ids, cycles, **setup)

        setups: list[tuple[str, bool, bool, bool, Callable[[], float]]] = []
        for on_demand in (False, True):
            setups.append(
                (
                    "official_sdk",
                    False,
                    False,
                    on_demand,
                    lambda d=on_demand: _sdk(emu, ids, 1, on_demand=d),
                )
            )
            for webhooks in (False, True):
                for max_age in (None, INTERVAL):
                    setups.append(
                        (
                            "smartcar_async",
                            max_age is not None,
                            webhooks,
                            on_demand,
                            lambda a=max_age, w=webhooks, d=on_demand: asyncio.run(
                                ours(max_age=a, webhooks=w, on_demand=d)  # type: ignore[arg-type]
                            ),
                        )
                    )
        for name, max_age, webhooks, on_demand, measure in setups:
            per_day = measure()
            rows.append(
                {
                    "contender": name,
                    "max_age": INTERVAL if max_age else None,
                    "webhooks_half_fleet": webhooks,
                    "on_demand_reads": on_demand,
                    "billed_per_vehicle_per_day": round(per_day, 1),
                }
            )
            log(
                f"{name:15} max_age={max_age!s:5} webhooks={webhooks!s:5} "
                f"on_demand={on_demand!s:5} -> {per_day:7.1f} billed/vehicle/day"
            )
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| client | max_age | webhooks, half the fleet | on-demand reads "
        "| billed per vehicle per day |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        max_age = (
            "-"
            if row["contender"] == "official_sdk"
            else (f"{row['max_age']:.0f} s" if row["max_age"] else "None")
        )
        webhooks = (
            "-"
            if row["contender"] == "official_sdk"
            else ("yes" if row["webhooks_half_fleet"] else "no")
        )
        lines.append(
            f"| {row['contender']} | {max_age} | {webhooks} | "
            f"{'yes' if row['on_demand_reads'] else 'no'} | "
            f"{row['billed_per_vehicle_per_day']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--smoke", action="store_true")
    parser.add_argument("--vehicles", type=int)
    parser.add_argument("--cycles", type=int)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    vehicles, cycles = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    vehicles = args.vehicles or vehicles
    cycles = args.cycles or cycles
    log(f"{vehicles} vehicles, {cycles} cycles of {INTERVAL:.0f} s per setup")
    rows = run(vehicles, cycles)
    result = {
        "vehicles": vehicles,
        "cycles": cycles,
        "interval_seconds": INTERVAL,
        "reads": list(READS),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "billed_requests.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "billed_requests.md").write_text(table(rows) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
