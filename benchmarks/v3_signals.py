"""Smartcar API v3 benchmark: a fleet reading k signals per vehicle, three clients.

    python benchmarks/v3_signals.py            # 1,000 vehicles, k = 1 and 5, 5 rounds
    python benchmarks/v3_signals.py --quick    # 300 vehicles, 3 rounds
    python benchmarks/v3_signals.py --smoke --out /tmp/x   # seconds

Every vehicle reads k signals (k = 1 and 5: odometer, location, state of
charge, tire pressure, lock status), all reads issued at once, by:

* ``smartcar_async``: ``client.vehicle(id, access_token=..., api_version="3")``
  and one ``get_signal(code)`` task per read; a vehicle's concurrent reads
  coalesce into one ``GET /signals`` when k >= 2;
* ``official_sdk``: ``smartcar`` 6.19.1's ``Vehicle.get_signal(code)``, one
  call per read on the same 64-thread pool as the v2 scenarios of ``run.py``;
* ``aiohttp``: one ``GET /v3/vehicles/{id}/signals/{code}`` per read.

Reported per contender: HTTP requests per read (counted by the emulator),
client CPU per read (``time.process_time()`` of this process, all threads),
wall time; medians of interleaved rounds, and ratios against smartcar_async.

This is a separate script rather than scenario 8 of ``run.py``: its report is
one section that lives inside RESULTS.md's hand-written block (``run.py``
rewrites everything outside it), between this script's own markers, so each
script can be rerun without erasing the other's figures.

The fleet's combustion cars have no state of charge (their battery signals
answer COMPATIBILITY), so the emulator is started with a larger fleet
and the first N electrified (EV and PHEV) vehicles are read: every read of
every contender is a success and all three take the same code path.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _contenders import SDK_THREADS, TOKEN, UNIT_SYSTEM, Outcome, Read, _clear_proxies
from _harness import HERE, EmulatorProcess, machine_info, median, settle
from _report import KEEP_BEGIN, KEEP_END

import smartcar_async

#: Signals every electrified car of the emulated fleet has, in the order k takes them.
CODES = (
    "odometer-traveleddistance",
    "location-preciselocation",
    "tractionbattery-stateofcharge",
    "wheel-tires",
    "closure-islocked",
)
CONTENDERS = ("official_sdk", "aiohttp", "smartcar_async")
BEGIN = "<!-- BEGIN V3 SIGNALS: written by benchmarks/v3_signals.py -->"
END = "<!-- END V3 SIGNALS -->"
#: name: (vehicles, rounds)
PROFILES = {"full": (1000, 5), "quick": (300, 3), "smoke": (20, 1)}

logging.getLogger("smartcar_async").setLevel(logging.ERROR)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------ contenders


class V3Contender:
    name = "?"

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        raise NotImplementedError

    def run(self, reads: Sequence[Read]) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class OfficialSDKv3(V3Contender):
    """``Vehicle(id, token).get_signal(code)`` per read, on a thread pool."""

    name = "official_sdk"

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._vehicles: dict[str, Any] = {}
        self._smartcar: Any = None

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        _clear_proxies()
        # The SDK reads this variable at import into smartcar.config, and reads
        # that attribute on every call: set both, whoever imported it first.
        os.environ["SMARTCAR_VEHICLE_API_V3_ORIGIN"] = origin
        import smartcar
        import smartcar.config

        smartcar.config.VEHICLE_API_ORIGIN = origin
        self._smartcar = smartcar
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sdk")

    def _call(self, read: Read) -> Callable[[], Any]:
        vehicle_id, code = read
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            vehicle = self._vehicles[vehicle_id] = self._smartcar.Vehicle(
                vehicle_id, TOKEN, {"unit_system": UNIT_SYSTEM}
            )
        return lambda: vehicle.get_signal(code)

    def run(self, reads: Sequence[Read]) -> Outcome:
        assert self._pool is not None
        exc_type = self._smartcar.SmartcarException
        calls = [self._call(read) for read in reads]
        out = Outcome()

        def one(call: Callable[[], Any]) -> bool:
            try:
                body = call()["body"]
            except exc_type:
                return False
            return bool(body["data"]["attributes"]["status"]["value"] == "SUCCESS")

        cpu0, t0 = time.process_time(), time.perf_counter()
        futures = [self._pool.submit(one, call) for call in calls]
        wait(futures)
        out.wall, out.cpu = time.perf_counter() - t0, time.process_time() - cpu0
        out.ok = sum(1 for fut in futures if fut.result())
        out.errors = len(futures) - out.ok
        out.requests = len(reads)  # one request per SDK call, always
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class _Async(V3Contender):
    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        self._runner = runner
        runner.run(self._astart(origin))

    async def _astart(self, origin: str) -> None:
        raise NotImplementedError

    def _call(self, read: Read) -> Callable[[], Awaitable[bool]]:
        raise NotImplementedError

    def _requests(self) -> int:
        raise NotImplementedError

    def run(self, reads: Sequence[Read]) -> Outcome:
        assert self._runner is not None
        return self._runner.run(self._burst(reads))

    async def _burst(self, reads: Sequence[Read]) -> Outcome:
        calls = [self._call(read) for read in reads]
        errors = (smartcar_async.SmartcarError, aiohttp.ClientError, ValueError)
        out = Outcome()

        async def one(call: Callable[[], Awaitable[bool]]) -> bool:
            try:
                return await call()
            except errors:
                return False

        sent0 = self._requests()
        loop = asyncio.get_running_loop()
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = await asyncio.gather(*[loop.create_task(one(call)) for call in calls])
        out.wall, out.cpu = time.perf_counter() - t0, time.process_time() - cpu0
        out.ok = sum(results)
        out.errors = len(results) - out.ok
        out.requests = self._requests() - sent0
        return out

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self._aclose())

    async def _aclose(self) -> None:
        raise NotImplementedError


class PlainAiohttpV3(_Async):
    """One ``GET .../signals/{code}`` per read, JSON decoded, status checked."""

    name = "aiohttp"

    def __init__(self) -> None:
        super().__init__()
        self._session: aiohttp.ClientSession | None = None
        self._origin = ""
        self._sent = 0
        self._headers = {"Authorization": f"Bearer {TOKEN}", "SC-Unit-System": UNIT_SYSTEM}

    async def _astart(self, origin: str) -> None:
        self._origin = origin
        self._session = aiohttp.ClientSession()  # default connector: 100 connections

    def _call(self, read: Read) -> Callable[[], Awaitable[bool]]:
        vehicle_id, code = read
        url = f"{self._origin}/v3/vehicles/{vehicle_id}/signals/{code}"
        return lambda: self._get(url)

    async def _get(self, url: str) -> bool:
        assert self._session is not None
        self._sent += 1
        async with self._session.get(url, headers=self._headers) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            return bool(body["data"]["attributes"]["status"]["value"] == "SUCCESS")

    def _requests(self) -> int:
        return self._sent

    async def _aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SmartcarAsyncV3(_Async):
    """One ``Client()`` (defaults), one ``api_version="3"`` handle per vehicle."""

    name = "smartcar_async"

    def __init__(self) -> None:
        super().__init__()
        self._client: smartcar_async.Client | None = None
        self._vehicles: dict[str, smartcar_async.VehicleV3] = {}

    async def _astart(self, origin: str) -> None:
        self._client = smartcar_async.Client(api_origin=origin, vehicle_api_origin=origin)
        await self._client.__aenter__()

    def _call(self, read: Read) -> Callable[[], Awaitable[bool]]:
        assert self._client is not None
        vehicle_id, code = read
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            vehicle = self._vehicles[vehicle_id] = self._client.vehicle(
                vehicle_id, access_token=TOKEN, unit_system="metric", api_version="3"
            )
        get_signal = vehicle.get_signal

        async def read_one() -> bool:
            signal = await get_signal(code)  # raises the signal's typed error
            return signal.error is None

        return read_one

    def _requests(self) -> int:
        assert self._client is not None
        return self._client.stats.http_requests

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make(name: str, sdk_threads: int) -> V3Contender:
    if name == "official_sdk":
        return OfficialSDKv3(sdk_threads)
    if name == "aiohttp":
        return PlainAiohttpV3()
    return SmartcarAsyncV3()


# ------------------------------------------------------------------- measuring


def start_emulator(count: int) -> tuple[EmulatorProcess, list[str]]:
    """An emulator whose fleet holds at least ``count`` electrified vehicles, and their ids."""
    size = 2 * count + 20  # about half of the emulated fleet burns fuel only
    for _ in range(3):
        emu = EmulatorProcess(vehicles=size)
        ids = [vid for vid, powertrain in emu.fleet() if powertrain != "ICE"]
        if len(ids) >= count:
            return emu, ids[:count]
        emu.close()
        size = int(size * count / max(1, len(ids)) * 1.1) + 20
    raise SystemExit(f"no emulated fleet of {size} vehicles had {count} electrified ones")


async def signals_per_vehicle(origin: str, vehicle_id: str) -> int:
    """How many signals one ``GET /signals`` carries (what a coalesced read receives)."""
    url = f"{origin}/v3/vehicles/{vehicle_id}/signals"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp,
    ):
        body = await resp.json()
    return int(body["meta"].get("totalCount", len(body["data"])))


def measure(
    emu: EmulatorProcess,
    contenders: Sequence[V3Contender],
    ids: Sequence[str],
    k: int,
    rounds: int,
) -> dict[str, Any]:
    # Interleaved across vehicles, as independent tasks of a fleet service issue them.
    reads = [(vid, code) for code in CODES[:k] for vid in ids]
    warmup = reads[: max(1, len(reads) // 5)]
    for contender in contenders:
        contender.run(warmup)
    records: dict[str, list[dict[str, float]]] = {c.name: [] for c in contenders}
    for rnd in range(rounds):
        # Rotate who goes first, so no contender always runs on a cold or hot machine.
        shift = rnd % len(contenders)
        for contender in [*contenders[shift:], *contenders[:shift]]:
            settle()
            served0, emu_cpu0 = emu.stats()
            out = contender.run(reads)
            served1, emu_cpu1 = emu.stats()
            served = served1 - served0 if served0 >= 0 else out.requests
            if out.errors:
                log(f"  ! k={k} {contender.name}: {out.errors} reads failed")
            if served0 >= 0 and served != out.requests:
                log(
                    f"  ! k={k} {contender.name}: emulator {served}, client {out.requests} requests"
                )
            records[contender.name].append(
                {
                    "ok": out.ok,
                    "requests": served,
                    "requests_client": out.requests,
                    "requests_per_read": served / len(reads),
                    "cpu_per_read_us": out.cpu / len(reads) * 1e6,
                    "wall_s": out.wall,
                    "emulator_cpu_s": emu_cpu1 - emu_cpu0,
                }
            )
    summary: dict[str, Any] = {}
    for name, recs in records.items():
        summary[name] = {key: median([r[key] for r in recs]) for key in recs[0]}
        summary[name]["cpu_per_read_us_all"] = [round(r["cpu_per_read_us"], 1) for r in recs]
    base = summary["smartcar_async"]
    for s in summary.values():
        for key in ("requests_per_read", "cpu_per_read_us", "wall_s"):
            s[f"{key}_ratio"] = s[key] / base[key] if base[key] else float("nan")
    for name, s in summary.items():
        log(
            f"  k={k} {name:<15} requests/read {s['requests_per_read']:5.2f}  "
            f"cpu/read {s['cpu_per_read_us']:7.1f} us ({s['cpu_per_read_us_ratio']:5.2f}x)  "
            f"wall {s['wall_s']:6.3f} s  ok {s['ok']:.0f}/{len(reads)}"
        )
    return {"vehicles": len(ids), "codes": list(CODES[:k]), "reads": len(reads), **summary}


# --------------------------------------------------------------------- report

_LABEL = {"official_sdk": "official SDK", "aiohttp": "plain aiohttp"}


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "## Smartcar API v3: k signals per vehicle",
        "",
        f"Generated by `{results['command']}` on {results['date']} ({results['elapsed_s']:.0f} s); "
        f"{m.get('cpus')} CPUs, load average at start {m.get('load_average')} (a shared, loaded "
        f"machine); smartcar {m.get('smartcar')}, aiohttp {m.get('aiohttp')}, CPython "
        f"{m.get('python')}. Raw numbers: `results/v3_signals.json`.",
        "",
        f"{results['vehicles']:,} electrified vehicles; each reads k signals "
        f"({', '.join(f'`{c}`' for c in CODES)}, the first k), every read issued at once; "
        f"zero emulator latency; median of {results['rounds']} interleaved "
        f"round{'s' if results['rounds'] != 1 else ''} after a 20% warm-up. "
        "smartcar_async: `client.vehicle(id, access_token=..., "
        'api_version="3")` and one `get_signal(code)` task per read. Official SDK: '
        f"`Vehicle.get_signal(code)` on {results['sdk_threads']} threads. aiohttp: one "
        "`GET /v3/vehicles/{id}/signals/{code}` per read. Requests are counted by the "
        "emulator; CPU is this process's `time.process_time()` (all threads) over the reads; "
        "ratios are *contender / smartcar_async*.",
        "",
        "| k | contender | requests / read | client CPU / read us | wall s | emulator CPU s "
        "| requests ratio | CPU ratio | wall ratio | reads ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, entry in results["by_k"].items():
        for name in CONTENDERS:
            s = entry.get(name)
            if s is None:
                continue
            lines.append(
                f"| {k} | {_LABEL.get(name, name)} | {s['requests_per_read']:.2f} | "
                f"{s['cpu_per_read_us']:,.1f} | {s['wall_s']:.3f} | {s['emulator_cpu_s']:.2f} | "
                f"{s['requests_per_read_ratio']:.2f}x | {s['cpu_per_read_us_ratio']:.2f}x | "
                f"{s['wall_s_ratio']:.2f}x | {s['ok']:.0f}/{entry['reads']} |"
            )
    lines += [
        "",
        "At k = 1 smartcar_async sends the same lone `GET /signals/{code}` as the others, so "
        "its CPU figure is its per-read overhead (handle, coalescer, model); from k = 2 a "
        "vehicle's reads share one `GET /signals`, which carries every signal of the car "
        f"({results.get('signals_per_vehicle', '?')} here). *Emulator CPU*: the server "
        "process's, per round, apart from the client's.",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Put the section between this script's markers, inside run.py's kept block."""
    block = f"{BEGIN}\n{section}\n{END}"
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    elif KEEP_BEGIN in text:
        head, rest = text.split(KEEP_BEGIN, 1)
        text = f"{head}{KEEP_BEGIN}\n{block}\n\n{rest.lstrip(chr(10))}"
    else:
        text = f"{text}\n{KEEP_BEGIN}\n{block}\n{KEEP_END}\n"
    path.write_text(text)


# ----------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/v3_signals.py", description=__doc__.splitlines()[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="300 vehicles, 3 rounds")
    mode.add_argument("--smoke", action="store_true", help="20 vehicles, 1 round (seconds)")
    parser.add_argument("--vehicles", type=int, default=None, help="override the fleet size")
    parser.add_argument("--rounds", type=int, default=None, help="override the round count")
    parser.add_argument("--ks", default="1,5", help="comma-separated signals per vehicle (1..5)")
    parser.add_argument(
        "--sdk-threads", type=int, default=SDK_THREADS, help="official SDK thread pool size"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write v3_signals.json and v3_signals.md here instead of updating "
        "benchmarks/RESULTS.md and benchmarks/results/",
    )
    args = parser.parse_args(argv)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    vehicles, rounds = PROFILES[profile]
    vehicles = args.vehicles or vehicles
    rounds = args.rounds or rounds
    ks = [int(x) for x in args.ks.split(",") if x.strip()]
    if not ks or any(not 1 <= k <= len(CODES) for k in ks):
        raise SystemExit(f"--ks takes values from 1 to {len(CODES)}")

    command = "python benchmarks/v3_signals.py" + (f" --{profile}" if profile != "full" else "")
    if args.vehicles or args.rounds:
        command += (f" --vehicles {args.vehicles}" if args.vehicles else "") + (
            f" --rounds {args.rounds}" if args.rounds else ""
        )
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info(),
        "vehicles": vehicles,
        "rounds": rounds,
        "sdk_threads": args.sdk_threads,
        "by_k": {},
    }
    log(
        f"v3 signals, {profile}: {vehicles} vehicles, k in {ks}, {rounds} rounds, "
        f"load {results['machine'].get('load_average')}"
    )
    emu, ids = start_emulator(vehicles)
    try:
        contenders = [make(name, args.sdk_threads) for name in CONTENDERS]
        with asyncio.Runner() as runner:
            results["signals_per_vehicle"] = runner.run(signals_per_vehicle(emu.url, ids[0]))
            for contender in contenders:
                contender.start(emu.url, runner)
            try:
                for k in ks:
                    results["by_k"][str(k)] = measure(emu, contenders, ids, k, rounds)
            finally:
                for contender in contenders:
                    contender.close()
    finally:
        emu.close()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)

    section = markdown(results)
    if args.out is None:
        json_path, md_path = HERE / "results" / "v3_signals.json", HERE / "RESULTS.md"
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = args.out / "v3_signals.json", args.out / "v3_signals.md"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    if args.out is None:
        write_section(md_path, section)
    else:
        md_path.write_text(section + "\n")
    log(f"done in {results['elapsed_s']:.0f} s: {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
