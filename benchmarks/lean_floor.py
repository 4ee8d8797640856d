"""Client CPU per read, each contender in a fresh process: the lean floors and the scale sweep.

    python benchmarks/lean_floor.py             # k = 1 and k = 5, 2,000 vehicles, 5 rounds
    python benchmarks/lean_floor.py --scale     # k = 5 at 1,000 / 10,000 / 50,000 vehicles
    python benchmarks/lean_floor.py --smoke --out /tmp/x   # seconds; used by the test suite

Unlike ``run.py`` (every contender in one long-lived process, one task per
read, medians), every measurement here runs in a **fresh Python process**: it
warms up with one burst, collects garbage, measures one burst with
``time.process_time()`` and exits. Rounds are interleaved (the order rotates)
and the **minimum** over rounds is reported, the figure least disturbed by
other load on a shared machine. The emulator runs in its own process with no
latency, so its CPU is not counted.

Contenders (``--contenders``; each reads the same k paths of every vehicle):

* ``lean``: the floor a careful engineer writes by hand. One coroutine per
  vehicle: k futures, one ``POST /batch`` over one shared aiohttp session,
  each future resolved with its item's raw body. No task per read, no
  models, no dedupe, no retries, no error handling. At k = 1 it sends the
  plain ``GET`` instead (a batch of one is never the cheaper request).
* ``lean_flight``: ``lean`` plus the least a client must do to keep a request
  alive for every reader that joined it, whichever of them gives up: the
  request runs in a task of its own (one per vehicle) and answers the
  vehicle's coroutine through its k futures, which it awaits.
* ``floor_tasks``: the same request, shaped as ``run.py``'s reference floor
  was before issue 16: a task per read awaiting its future and a task per
  vehicle for the POST, all gathered.
* ``aiohttp``: plain aiohttp, one coroutine per vehicle, one ``GET`` per path
  awaited in turn (at k = 1, the lone read).
* ``sca``: smartcar_async with a default ``Client``; one coroutine per
  vehicle awaiting ``asyncio.gather`` of its k reads (one ``await`` at k = 1),
  the way an application reads one car.
* ``sca_batch``: smartcar_async in the lean floor's own shape: one coroutine
  per vehicle awaiting ``vehicle.batch(paths)``, which waits on its k reads
  without a task each (at k = 1, the same lone read as ``sca``).
* ``sca_tasks``: smartcar_async driven as ``run.py`` drives it: a task per read.
* ``caller``: no client at all: ``sca``'s caller shape (a coroutine per vehicle
  gathering k coroutines, each awaiting a future resolved on the next loop turn).
  What an application pays to issue k concurrent reads, whatever answers them.

Results go to ``results/lean_floor.json`` (and ``lean_floor_scale.json``) unless
``--out`` names a directory.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import HERE, EmulatorProcess, child_env

PATHS = ("/odometer", "/location", "/tires/pressure", "/security", "/vin")
METHODS = {
    "/odometer": "odometer",
    "/location": "location",
    "/tires/pressure": "tire_pressure",
    "/security": "lock_status",
    "/vin": "vin",
}
TOKEN = "benchmark-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "SC-Unit-System": "metric"}
CONTENDERS = (
    "lean",
    "lean_flight",
    "floor_tasks",
    "aiohttp",
    "sca",
    "sca_batch",
    "sca_tasks",
    "caller",
)

#: One burst over the first n vehicles; returns the reads answered.
Burst = Callable[[int], Coroutine[Any, Any, int]]


# ------------------------------------------------------------------- children


def _aiohttp_bursts(
    name: str, url: str, ids: Sequence[str], paths: Sequence[str]
) -> tuple[Callable[[], Coroutine[Any, Any, Any]], Callable[[], Coroutine[Any, Any, Burst]]]:
    """(close, open) for the hand-written contenders: ``open`` returns one burst."""
    import aiohttp

    state: dict[str, aiohttp.ClientSession] = {}
    body = json.dumps({"requests": [{"path": p} for p in paths]}).encode()
    post_headers = {**HEADERS, "Content-Type": "application/json"}

    async def open_() -> Burst:
        session = state["session"] = aiohttp.ClientSession()
        loop = asyncio.get_running_loop()
        batch_urls = [f"{url}/v2.0/vehicles/{vid}/batch" for vid in ids]
        get_urls = [[f"{url}/v2.0/vehicles/{vid}{p}" for p in paths] for vid in ids]

        async def post(batch_url: str) -> Any:
            async with session.post(batch_url, data=body, headers=post_headers) as resp:
                return json.loads(await resp.read())

        async def get(get_url: str) -> Any:
            async with session.get(get_url, headers=HEADERS) as resp:
                return json.loads(await resp.read())

        async def lean_vehicle(batch_url: str, urls: list[str]) -> list[asyncio.Future[Any]]:
            if len(urls) == 1:
                fut = loop.create_future()
                fut.set_result(await get(urls[0]))
                return [fut]
            futs = {p: loop.create_future() for p in paths}
            for item in (await post(batch_url))["responses"]:
                futs[item["path"]].set_result(item["body"])
            return list(futs.values())

        async def lean(n: int) -> int:
            done = await asyncio.gather(*map(lean_vehicle, batch_urls[:n], get_urls[:n]))
            return sum(1 for futs in done for f in futs if f.result() is not None)

        async def floor_tasks(n: int) -> int:
            async def flight(batch_url: str, futs: dict[str, asyncio.Future[Any]]) -> None:
                for item in (await post(batch_url))["responses"]:
                    futs[item["path"]].set_result(item["body"])

            async def one(fut: asyncio.Future[Any]) -> Any:
                return await fut

            tasks: list[asyncio.Task[Any]] = []
            for batch_url in batch_urls[:n]:
                futs = {p: loop.create_future() for p in paths}
                tasks.extend(loop.create_task(one(f)) for f in futs.values())
                tasks.append(loop.create_task(flight(batch_url, futs)))
            results = await asyncio.gather(*tasks)
            return sum(1 for r in results if r is not None)

        async def flight(batch_url: str, urls: list[str], futs: list[asyncio.Future[Any]]) -> None:
            if len(urls) == 1:
                futs[0].set_result(await get(urls[0]))
                return
            by_path = dict(zip(paths, futs, strict=True))
            for item in (await post(batch_url))["responses"]:
                by_path[item["path"]].set_result(item["body"])

        running: set[asyncio.Task[None]] = set()

        async def flight_vehicle(batch_url: str, urls: list[str]) -> int:
            futs = [loop.create_future() for _ in urls]
            task = loop.create_task(flight(batch_url, urls, futs))
            running.add(task)  # as a client keeps its flights, to close them
            answered = sum([1 for f in futs if await f is not None])
            running.discard(task)
            return answered

        async def lean_flight(n: int) -> int:
            return sum(await asyncio.gather(*map(flight_vehicle, batch_urls[:n], get_urls[:n])))

        async def plain_vehicle(urls: list[str]) -> int:
            return sum([1 for u in urls if await get(u) is not None])

        async def plain(n: int) -> int:
            return sum(await asyncio.gather(*map(plain_vehicle, get_urls[:n])))

        return {
            "lean": lean,
            "lean_flight": lean_flight,
            "floor_tasks": floor_tasks,
            "aiohttp": plain,
        }[name]

    async def close() -> None:
        await state["session"].close()

    return close, open_


def _sca_bursts(
    name: str, url: str, ids: Sequence[str], paths: Sequence[str]
) -> tuple[Callable[[], Coroutine[Any, Any, Any]], Callable[[], Coroutine[Any, Any, Burst]]]:
    import smartcar_async

    state: dict[str, smartcar_async.Client] = {}

    async def open_() -> Burst:
        client = state["client"] = smartcar_async.Client(api_origin=url)
        await client.__aenter__()
        cars = [client.vehicle(vid, access_token=TOKEN, unit_system="metric") for vid in ids]
        names = [METHODS[p] for p in paths]
        loop = asyncio.get_running_loop()

        async def one_car(car: smartcar_async.Vehicle) -> int:
            if len(names) == 1:
                return 1 if await getattr(car, names[0])() is not None else 0
            models = await asyncio.gather(*[getattr(car, n)() for n in names])
            return sum(1 for m in models if m is not None)

        async def per_vehicle(n: int) -> int:
            return sum(await asyncio.gather(*map(one_car, cars[:n])))

        async def batch_car(car: smartcar_async.Vehicle) -> int:
            if len(names) == 1:
                return 1 if await getattr(car, names[0])() is not None else 0
            result = await car.batch(paths)
            return sum(1 for p in paths if result[p] is not None)

        async def per_batch(n: int) -> int:
            return sum(await asyncio.gather(*map(batch_car, cars[:n])))

        async def one(call: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
            return await call() is not None

        async def per_read(n: int) -> int:
            calls = [getattr(car, name) for name in names for car in cars[:n]]
            return sum(await asyncio.gather(*[loop.create_task(one(c)) for c in calls]))

        return {"sca": per_vehicle, "sca_batch": per_batch}.get(name, per_read)

    async def close() -> None:
        await state["client"].aclose()

    return close, open_


def _caller_bursts(
    name: str, url: str, ids: Sequence[str], paths: Sequence[str]
) -> tuple[Callable[[], Coroutine[Any, Any, Any]], Callable[[], Coroutine[Any, Any, Burst]]]:
    async def open_() -> Burst:
        loop = asyncio.get_running_loop()

        async def read() -> int:
            fut: asyncio.Future[int] = loop.create_future()
            loop.call_soon(fut.set_result, 1)
            return await fut

        async def one_car() -> int:
            if len(paths) == 1:
                return await read()
            return sum(await asyncio.gather(*[read() for _ in paths]))

        async def burst(n: int) -> int:
            return sum(await asyncio.gather(*[one_car() for _ in range(n)]))

        return burst

    async def close() -> None:
        pass

    return close, open_


def child(name: str, url: str, ids_file: Path, k: int, bursts: int = 1) -> int:
    ids = json.loads(ids_file.read_text())
    paths = PATHS[:k]
    factory = (
        _sca_bursts
        if name.startswith("sca")
        else _caller_bursts
        if name == "caller"
        else _aiohttp_bursts
    )
    close, open_ = factory(name, url, ids, paths)

    # What the cyclic collector costs inside the measured burst, by generation.
    gc_time = [0.0, 0.0, 0.0]
    gc_runs = [0, 0, 0]
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.process_time()
        else:
            gc_time[info["generation"]] += time.process_time() - gc_started[0]
            gc_runs[info["generation"]] += 1

    async def main() -> dict[str, Any]:
        burst = await open_()
        try:
            # A warm-up over at most 2,000 vehicles: imports, caches and
            # connections are warm after it, whatever the fleet's size.
            warm_n = min(len(ids), 2000)
            warm = await burst(warm_n)
            gc.collect()
            gc.callbacks.append(on_gc)
            cpu0, t0 = time.process_time(), time.perf_counter()
            # More than one measured burst only for instructions.py, which
            # counts by the difference between runs of 1 and of 3 bursts.
            for _ in range(bursts):
                ok = await burst(len(ids))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            gc.callbacks.remove(on_gc)
        finally:
            await close()
        reads = len(ids) * len(paths)
        if ok != reads or warm != warm_n * len(paths):
            raise SystemExit(f"{name}: {ok}/{reads} reads answered")
        return {
            "cpu_per_read_us": cpu / (reads * bursts) * 1e6,
            "gc_per_read_us": sum(gc_time) / (reads * bursts) * 1e6,
            "gc_runs": gc_runs,
            "wall_s": wall,
            "reads": reads,
        }

    print(json.dumps(asyncio.run(main())), flush=True)
    return 0


# --------------------------------------------------------------------- parent


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure(
    emu: EmulatorProcess,
    ids: Sequence[str],
    names: Sequence[str],
    k: int,
    rounds: int,
    trees: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Interleaved rounds, each contender in a fresh process; min and all samples.

    A name ``contender@tree`` runs that contender with ``trees[tree]`` first on
    PYTHONPATH: another checkout of smartcar_async, measured in the same run.
    """
    trees = trees or {}
    samples: dict[str, list[float]] = {n: [] for n in names}
    gc_us: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(list(ids)))
        for r in range(rounds):
            order = [*names[r % len(names) :], *names[: r % len(names)]]
            for name in order:
                contender, _, tree = name.partition("@")
                argv = ["--child", contender, "--url", emu.url, "--ids", str(ids_file)]
                env = child_env()
                if tree:
                    env["PYTHONPATH"] = os.pathsep.join([trees[tree], env["PYTHONPATH"]])
                proc = subprocess.run(
                    [sys.executable, __file__, *argv, "--k", str(k)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                if proc.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{proc.stdout}\n{proc.stderr}")
                figure = json.loads(proc.stdout.splitlines()[-1])
                samples[name].append(figure["cpu_per_read_us"])
                gc_us[name].append(figure["gc_per_read_us"])
    out = {
        n: {
            "min_us": min(s),
            "all_us": [round(x, 2) for x in s],
            # The collector's share in the round that gave the minimum.
            "gc_us": round(gc_us[n][s.index(min(s))], 2),
            # Without the collector: when a full collection lands in a burst
            # moves a figure more than small changes to the read path do.
            "min_net_us": round(min(x - g for x, g in zip(s, gc_us[n], strict=True)), 2),
        }
        for n, s in samples.items()
    }
    for n, s in out.items():
        log(
            f"  k={k} {len(ids):>6,} vehicles  {n:<14} min {s['min_us']:7.1f} us "
            f"(gc {s['gc_us']:5.1f}, net of gc {s['min_net_us']:6.1f})  {s['all_us']}"
        )
    return out


def parse_contenders(contenders: str, trees: str) -> tuple[list[str], dict[str, str]]:
    """``--contenders`` and ``--trees`` as names and {tree: path}; exits on an unknown one."""
    names = [n.strip() for n in contenders.split(",") if n.strip()]
    paths = dict(pair.split("=", 1) for pair in trees.split(",") if pair)
    unknown = {n for n in names if n.partition("@")[0] not in CONTENDERS}
    unknown |= {n for n in names if n.partition("@")[2] not in ("", *paths)}
    if unknown:
        raise SystemExit(f"unknown contenders or trees: {sorted(unknown)}")
    return names, paths


def _ratio(figures: dict[str, dict[str, Any]], top: str, bottom: str) -> float | None:
    if top in figures and bottom in figures:
        return float(figures[top]["min_us"] / figures[bottom]["min_us"])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ids", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--bursts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ks", default="1,5", help="reads per vehicle, e.g. 1,5")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument(
        "--trees",
        default="",
        help="NAME=PATH,...: other checkouts; contender@NAME runs against PATH's smartcar_async",
    )
    parser.add_argument("--scale", action="store_true", help="k = 5 at 1k / 10k / 50k vehicles")
    parser.add_argument("--fleets", default="1000,10000,50000", help="fleet sizes for --scale")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (for tests)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.url, args.ids, args.k, args.bursts)

    names, trees = parse_contenders(args.contenders, args.trees)
    if args.smoke:
        args.vehicles, args.rounds, args.fleets = 20, 1, "20,40"
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.scale:
        fleets = [int(x) for x in args.fleets.split(",")]
        scale_names = [n for n in names if n.partition("@")[0] in ("lean", "sca", "sca_batch")] or [
            "sca"
        ]
        emu = EmulatorProcess(vehicles=max(fleets))
        try:
            all_ids = [vid for vid, _ in emu.fleet()]
            info["by_fleet"] = {
                str(n): measure(emu, all_ids[:n], scale_names, 5, args.rounds, trees)
                for n in fleets
            }
        finally:
            emu.close()
        name = "lean_floor_scale.json"
    else:
        emu = EmulatorProcess(vehicles=args.vehicles)
        try:
            ids = [vid for vid, _ in emu.fleet()]
            info["vehicles"] = args.vehicles
            info["by_k"] = {}
            for k in (int(x) for x in args.ks.split(",")):
                figures = measure(emu, ids, names, k, args.rounds, trees)
                ratios = {
                    "sca / lean": _ratio(figures, "sca", "lean"),
                    "sca_batch / lean": _ratio(figures, "sca_batch", "lean"),
                    "lean_flight / lean": _ratio(figures, "lean_flight", "lean"),
                    "sca_batch / lean_flight": _ratio(figures, "sca_batch", "lean_flight"),
                    "sca_tasks / floor_tasks": _ratio(figures, "sca_tasks", "floor_tasks"),
                    "sca_tasks / lean": _ratio(figures, "sca_tasks", "lean"),
                    "floor_tasks / lean": _ratio(figures, "floor_tasks", "lean"),
                    "sca / aiohttp": _ratio(figures, "sca", "aiohttp"),
                }
                if "caller" in figures and "sca" in figures and "lean" in figures:
                    # The library alone: sca without what its caller's shape costs.
                    own = figures["sca"]["min_us"] - figures["caller"]["min_us"]
                    ratios["(sca - caller) / lean"] = own / figures["lean"]["min_us"]
                for label, value in ratios.items():
                    if value is not None:
                        log(f"  k={k} {label:<24} {value:.3f}x")
                info["by_k"][str(k)] = {"contenders": figures, "ratios": ratios}
        finally:
            emu.close()
        name = "lean_floor.json"
    info["rounds"] = args.rounds
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    (args.out / name).write_text(json.dumps(info, indent=1) + "\n")
    log(f"done in {info['elapsed_s']:.0f} s: {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
