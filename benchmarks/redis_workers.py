"""Polling with a shared Redis schedule: Redis round trips and client CPU per vehicle poll.

    python benchmarks/redis_workers.py [--vehicles 2000] [--rounds 3] [--workers 1]

Starts a redis-server of its own (persistence off, a free port) and the
benchmark's emulator in another process, then polls the same fleet twice with
FleetPoller (reads odometer + location, one batch per poll): once alone (no
state), once with ``state=RedisState(...)`` sharing the schedule among
``--workers`` pollers in this process. It reports:

- Redis round trips per vehicle poll, amortised over the run: every RedisState
  operation is one round trip (a script call or one pipeline), counted by
  wrapping the store's single I/O method; target <= 2;
- the polling process's CPU per poll (``time.process_time``; the emulator runs
  in its own process), with Redis over without; target <= 1.3x. Redis' own CPU
  is not the client's and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from smartcar_async import Client  # noqa: E402
from smartcar_async._poller import FleetPoller  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402

READS: Any = ("odometer", "location")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not on PATH: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", folder, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.01)
    return process, f"redis://127.0.0.1:{port}/0"


def start_emulator(vehicles: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(HERE / "_emulator_proc.py"), "--vehicles", str(vehicles)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    ready = process.stdout.readline().split()
    assert ready[0] == "ready", ready
    return process, ready[1]


async def fleet_ids(process: subprocess.Popen[str]) -> list[str]:
    import json

    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write("fleet\n")
    process.stdin.flush()
    return [vid for vid, _ in json.loads(process.stdout.readline())]


async def run(
    origin: str, ids: list[str], rounds: int, interval: float, url: str | None, workers: int
) -> dict[str, float]:
    trips = 0
    polls = 0
    async with Client(api_origin=origin) as client:
        handles = [client.vehicle(vid, access_token="bench-token") for vid in ids]
        state: RedisState | None = None
        if url is not None:
            state = RedisState(url, namespace=f"bench{os.getpid()}{time.monotonic_ns()}")
            await state.__aenter__()
            real_call = state._call

            async def counted(what: str, operation: Any) -> Any:
                nonlocal trips
                trips += 1
                return await real_call(what, operation)

            state._call = counted  # type: ignore[method-assign]
        pollers = [
            FleetPoller(
                reads=READS,
                interval=interval,
                rounds=rounds,
                vehicles=handles,
                state=state,
                jitter=0.0,
                max_concurrent_vehicles=100,
            )
            for _ in range(workers if state is not None else 1)
        ]

        async def drain(poller: FleetPoller) -> None:
            nonlocal polls
            async with poller:
                async for _ in poller.results():
                    polls += 1

        cpu, wall = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for poller in pollers:
                tg.create_task(drain(poller))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if state is not None:
            await state.aclose()
    return {"polls": polls, "trips": trips, "cpu": cpu, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    redis_process, url = start_redis(folder)
    emulator, origin = start_emulator(args.vehicles)
    try:
        ids = asyncio.run(fleet_ids(emulator))
        alone: list[dict[str, float]] = []
        shared: list[dict[str, float]] = []
        for _ in range(args.repeat):  # interleaved, so that load drifts hit both alike
            alone.append(asyncio.run(run(origin, ids, args.rounds, args.interval, None, 1)))
            shared.append(
                asyncio.run(run(origin, ids, args.rounds, args.interval, url, args.workers))
            )
    finally:
        emulator.kill()
        redis_process.kill()
        shutil.rmtree(folder, ignore_errors=True)

    def median(rows: list[dict[str, float]], key: str) -> float:
        values = sorted(row[key] / row["polls"] for row in rows)
        return values[len(values) // 2]

    cpu_alone = median(alone, "cpu") * 1e6
    cpu_shared = median(shared, "cpu") * 1e6
    trips = median(shared, "trips")
    print(f"vehicles {args.vehicles}, rounds {args.rounds}, interval {args.interval:g} s, "
          f"workers sharing Redis {args.workers}, repeats {args.repeat}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"polls per run: {int(alone[0]['polls'])} alone, {int(shared[0]['polls'])} shared")
    print(f"Redis round trips per poll: {trips:.3f} (target <= 2)")
    print(f"CPU per poll: {cpu_alone:.0f} us alone, {cpu_shared:.0f} us with Redis "
          f"({cpu_shared / cpu_alone:.2f}x; target <= 1.3x)")  # fmt: skip


if __name__ == "__main__":
    main()
