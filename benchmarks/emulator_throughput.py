"""Requests per second of one emulator process, hammered by an aiohttp client.

Starts ``python -m smartcar_async.testing --port 0`` as a subprocess, then for a
bounded time keeps ``--concurrency`` requests in flight from this process:
first single GETs (odometer, spread over the fleet), then 5-path batches.
Prints the figures and stops the server with SIGINT.

    python benchmarks/emulator_throughput.py [--seconds 5] [--concurrency 64] [--compare ROUNDS]

Both processes share the machine, so the figures are a floor for the server
alone: on two cores the hammering client can run out of CPU first. So where
``/proc`` exists the server's own CPU time per request is reported beside the
rate; it does not depend on how fast the client keeps up. Every response is
checked (status 200) so a broken server cannot look fast.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BATCH_PATHS = ["/odometer", "/location", "/tires/pressure", "/security", "/vin"]
HEADERS = {"Authorization": "Bearer benchmark", "SC-Unit-System": "metric"}


def start_server(vehicles: int, speedups: bool | None = None) -> tuple[subprocess.Popen[str], str]:
    """The emulator CLI; ``speedups`` True: uvloop and orjson, False: asyncio and json."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    loop: list[str] = []
    if speedups is not None:
        env["SMARTCAR_ASYNC_JSON"] = "orjson" if speedups else "stdlib"
        loop = ["--loop", "uvloop" if speedups else "asyncio"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smartcar_async.testing",
            "--port",
            "0",
            "--vehicles",
            str(vehicles),
            *loop,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if " at " not in line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.rsplit(" at ", 1)[1]


async def vehicle_ids(session: aiohttp.ClientSession, url: str) -> list[str]:
    ids: list[str] = []
    while True:
        async with session.get(
            f"{url}/v2.0/vehicles", params={"limit": "50", "offset": str(len(ids))}, headers=HEADERS
        ) as resp:
            page = await resp.json()
        ids.extend(page["vehicles"])
        if len(ids) >= page["paging"]["count"] or not page["vehicles"]:
            return ids


async def hammer(
    seconds: float, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[int, float]:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done
        n = offset
        while time.perf_counter() < deadline:
            await one(n)
            done += 1
            n += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done, time.perf_counter() - started


def server_cpu(pid: int | None) -> float | None:
    """Seconds of CPU the process has used (user and system), or None without ``/proc``."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    url: str, seconds: float, concurrency: int, pid: int | None = None
) -> dict[str, float]:
    """Requests per second of each phase (``*_rps``), and the server's CPU per request
    in microseconds (``*_cpu_us``) when ``pid`` is given and ``/proc`` can tell."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        ids = await vehicle_ids(session, url)

        async def single(n: int) -> None:
            async with session.get(
                f"{url}/v2.0/vehicles/{ids[n % len(ids)]}/odometer", headers=HEADERS
            ) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET answered {resp.status}")

        body = {"requests": [{"path": p} for p in BATCH_PATHS]}

        async def batch(n: int) -> None:
            async with session.post(
                f"{url}/v2.0/vehicles/{ids[n % len(ids)]}/batch", json=body, headers=HEADERS
            ) as resp:
                data = await resp.json()
                if resp.status != 200 or any(r["code"] != 200 for r in data["responses"]):
                    raise RuntimeError(f"batch answered {resp.status}")

        await hammer(0.5, concurrency, single)  # warm up connections and caches
        rates: dict[str, float] = {}
        for name, one, label in (
            ("single", single, "single GET /odometer"),
            ("batch", batch, "5-path batch        "),
        ):
            cpu_before = server_cpu(pid)
            count, elapsed = await hammer(seconds, concurrency, one)
            cpu_after = server_cpu(pid)
            rates[f"{name}_rps"] = count / elapsed
            line = f"{label} : {count / elapsed:8.0f} requests/s ({count} in {elapsed:.1f} s)"
            if cpu_before is not None and cpu_after is not None and count:
                rates[f"{name}_cpu_us"] = (cpu_after - cpu_before) / count * 1e6
                line += f", server CPU {rates[f'{name}_cpu_us']:.0f} us per request"
            print(line)
        return rates


def _better(key: str, a: float, b: float) -> float:
    """The better of two rounds: more requests per second, less CPU per request."""
    return min(a, b) if key.endswith("_cpu_us") else max(a, b)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def compare(seconds: float, concurrency: int, vehicles: int, rounds: int) -> dict[str, Any]:
    """The server stock (asyncio, json) and with speedups (uvloop, orjson), rounds interleaved.

    The hammering client is the same for both: uvloop when installed, so that the
    server, not the client, is what runs out of CPU first. Best round of each.
    """
    try:
        import uvloop

        client_loop: Any = uvloop.new_event_loop
    except ImportError:
        client_loop = None
    best: dict[str, dict[str, float]] = {}
    for _ in range(rounds):
        for name, speedups in (("stock", False), ("speedups", True)):
            proc, url = start_server(vehicles, speedups)
            try:
                print(f"-- emulator {name}")
                with asyncio.Runner(loop_factory=client_loop) as runner:
                    rates = runner.run(run(url, seconds, concurrency, proc.pid))
            finally:
                _stop(proc)
            kept = best.setdefault(name, rates)
            best[name] = {k: _better(k, v, kept[k]) for k, v in rates.items() if k in kept}
    # Every ratio reads "how many times faster with speedups": rates divide one
    # way, CPU per request the other.
    ratio = {
        k: best["stock"][k] / best["speedups"][k]
        if k.endswith("_cpu_us")
        else best["speedups"][k] / best["stock"][k]
        for k in best["stock"]
        if k in best["speedups"]
    }
    rps = [f"{k[: -len('_rps')]} {v:.2f}x" for k, v in ratio.items() if k.endswith("_rps")]
    cpu = [f"{k[: -len('_cpu_us')]} {v:.2f}x" for k, v in ratio.items() if k.endswith("_cpu_us")]
    print(f"requests/s, speedups / stock: {', '.join(rps)}")
    if cpu:
        print(f"server CPU per request, stock / speedups: {', '.join(cpu)}")
    return {"stock": best["stock"], "speedups": best["speedups"], "ratio": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument(
        "--compare",
        type=int,
        metavar="ROUNDS",
        help="serve stock and with speedups (uvloop, orjson), interleaved, and print the ratio",
    )
    args = parser.parse_args()
    if args.compare:
        compare(args.seconds, args.concurrency, args.vehicles, args.compare)
        return 0
    proc, url = start_server(args.vehicles)
    print(
        f"emulator at {url} ({args.vehicles} vehicles), concurrency {args.concurrency}, "
        f"{args.seconds:g} s per phase, {os.cpu_count()} CPUs"
    )
    try:
        asyncio.run(run(url, args.seconds, args.concurrency, proc.pid))
    finally:
        _stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
