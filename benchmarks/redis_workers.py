"""Polling with a shared Redis schedule: round trips and CPU per poll, and one shared budget.

    python benchmarks/redis_workers.py [--vehicles 2000] [--rounds 3] [--workers 1]
                                       [--part all|cpu|budget]

Starts a redis-server of its own (persistence off, a free port) and the
benchmark's emulator in another process. The ``cpu`` part polls the same fleet
twice with FleetPoller (reads odometer + location, one batch per poll): once
alone (no state), once with ``state=RedisState(...)`` sharing the schedule among
``--workers`` pollers in this process. It reports:

- Redis round trips per vehicle poll, amortised over the run: every RedisState
  operation is one round trip (a script call or one pipeline), counted by
  wrapping the store's single I/O method; target <= 2;
- the polling process's CPU per poll (``time.process_time``; the emulator runs
  in its own process), with Redis over without; target <= 1.3x. Redis' own CPU
  is not the client's and is not counted. Rounds a poller skips as ``late``
  make no request and are not counted as polls (the count is printed).

The ``budget`` part runs ``--workers-budget`` pollers, each with its own client,
for ``--budget-seconds`` against an emulator enforcing a small application
bucket, with demand far above it: once each pacing itself alone to the whole
budget (``request_budget=``, the fleet split by ``shard``), once sharing one
bucket through Redis. It prints the emulator's 429 ``RATE_LIMIT:SMARTCAR_API``
count, the reads delivered and failed, and the requests the budget allows over the run
(each poll is one batch, one token of the bucket).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from smartcar_async import Client, RequestBudget  # noqa: E402
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
    skipped = 0
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
            nonlocal polls, skipped
            async with poller:
                async for result in poller.results():
                    # A round skipped (a "late" vehicle on a loaded machine) made no
                    # request and cost next to nothing: counting it would flatter the
                    # side that skips more (the local schedule skips, leases poll late).
                    if result.skipped is None:
                        polls += 1
                    else:
                        skipped += 1

        cpu, wall = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for poller in pollers:
                tg.create_task(drain(poller))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if state is not None:
            await state.aclose()
    return {"polls": polls, "skipped": skipped, "trips": trips, "cpu": cpu, "wall": wall}


def ask(process: subprocess.Popen[str], command: str) -> str:
    """One command to the benchmark's emulator process, and its one-line reply."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


async def budget_run(
    emulator: subprocess.Popen[str],
    origin: str,
    ids: list[str],
    url: str | None,
    *,
    workers: int,
    seconds: float,
    budget: RequestBudget,
    concurrency: int,
) -> dict[str, float]:
    """``workers`` pollers (each its own client) against one application bucket, for
    ``seconds``: sharing it through Redis (``url``), or each pacing itself alone to the
    whole budget (``url`` None, the fleet split by ``shard``). Demand is far above it."""
    import json

    ask(emulator, f"ratelimit {budget.capacity} {budget.refill_per_minute}")
    ask(emulator, "reset")  # a full bucket
    ask(emulator, "clear")
    tokens_before = int(ask(emulator, "stats").split()[2])
    namespace = f"budget{os.getpid()}{time.monotonic_ns()}"
    delivered = failed = 0

    async def worker(index: int) -> None:
        nonlocal delivered, failed
        async with contextlib.AsyncExitStack() as stack:
            state: RedisState | None = None
            if url is not None:
                state = RedisState(url, namespace=namespace, budget=budget)
                await stack.enter_async_context(state)
            client = Client(
                api_origin=origin, state=state, request_budget=None if state else budget
            )
            await stack.enter_async_context(client)
            poller = FleetPoller(
                reads=READS,
                interval=1.0,
                vehicles=[client.vehicle(vid, access_token="bench-token") for vid in ids],
                state=state,
                shard=None if state else (index, workers),
                max_concurrent_vehicles=concurrency,
            )
            async with poller:
                async for result in poller.results():
                    delivered += len(result.values)
                    failed += len(result.errors)

    began = time.perf_counter()
    with anyio.move_on_after(seconds):
        async with asyncio.TaskGroup() as tg:
            for index in range(workers):
                tg.create_task(worker(index))
    elapsed = time.perf_counter() - began
    errors = json.loads(ask(emulator, "errors"))
    ask(emulator, "ratelimit off")
    return {
        "seconds": elapsed,
        "allowed": budget.capacity + budget.refill_per_minute / 60 * elapsed,
        "accepted": int(ask(emulator, "stats").split()[2]) - tokens_before,
        "delivered": delivered,
        "failed": failed,
        "app_429": errors.get("429 RATE_LIMIT:SMARTCAR_API", 0),
    }


def budget_table(args: argparse.Namespace, emulator: subprocess.Popen[str], origin: str,
                 ids: list[str], url: str) -> None:  # fmt: skip
    budget = RequestBudget(capacity=args.budget_capacity, refill_per_minute=args.budget_refill)
    # The bucket counts HTTP requests: each poll is one batch of 2 reads, one token.
    print(f"\n{args.workers_budget} workers, {len(ids)} vehicles every 1 s (a 2-read batch "
          f"each: {len(ids)} requests/s wanted), one application bucket of "
          f"{budget.capacity} + {budget.refill_per_minute:g}/min, "
          f"{args.budget_seconds:g} s per run")  # fmt: skip
    print("| workers | app 429s | reads delivered | requests the budget allows "
          "| reads per allowed request | reads failed |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, where in (("pacing alone (shards)", None), ("sharing Redis", url)):
        row = asyncio.run(
            budget_run(
                emulator, origin, ids, where, workers=args.workers_budget,
                seconds=args.budget_seconds, budget=budget, concurrency=args.budget_concurrency,
            )
        )  # fmt: skip
        print(f"| {label} | {row['app_429']} | {row['delivered']} | {row['allowed']:.0f} "
              f"| {row['delivered'] / row['allowed']:.2f} | {row['failed']} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part", choices=("all", "cpu", "budget"), default="all")
    parser.add_argument("--workers-budget", type=int, default=4)
    parser.add_argument("--budget-vehicles", type=int, default=200)
    parser.add_argument("--budget-capacity", type=int, default=20)
    parser.add_argument("--budget-refill", type=float, default=240.0)
    parser.add_argument("--budget-seconds", type=float, default=20.0)
    parser.add_argument("--budget-concurrency", type=int, default=10)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    redis_process, url = start_redis(folder)
    emulator, origin = start_emulator(max(args.vehicles, args.budget_vehicles))
    try:
        ids = asyncio.run(fleet_ids(emulator))
        if args.part in ("all", "cpu"):
            cpu_table(args, origin, ids[: args.vehicles], url)
        if args.part in ("all", "budget"):
            budget_table(args, emulator, origin, ids[: args.budget_vehicles], url)
    finally:
        emulator.kill()
        redis_process.kill()
        shutil.rmtree(folder, ignore_errors=True)


def cpu_table(args: argparse.Namespace, origin: str, ids: list[str], url: str) -> None:
    alone: list[dict[str, float]] = []
    shared: list[dict[str, float]] = []
    for _ in range(args.repeat):  # interleaved, so that load drifts hit both alike
        alone.append(asyncio.run(run(origin, ids, args.rounds, args.interval, None, 1)))
        shared.append(asyncio.run(run(origin, ids, args.rounds, args.interval, url, args.workers)))

    def median(rows: list[dict[str, float]], key: str) -> float:
        values = sorted(row[key] / row["polls"] for row in rows)
        return values[len(values) // 2]

    cpu_alone = median(alone, "cpu") * 1e6
    cpu_shared = median(shared, "cpu") * 1e6
    trips = median(shared, "trips")
    print(f"vehicles {len(ids)}, rounds {args.rounds}, interval {args.interval:g} s, "
          f"workers sharing Redis {args.workers}, repeats {args.repeat}; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(
        f"polls per run (rounds skipped as late): {int(alone[0]['polls'])} "
        f"({int(alone[0]['skipped'])}) alone, {int(shared[0]['polls'])} "
        f"({int(shared[0]['skipped'])}) shared"
    )
    print(f"Redis round trips per poll: {trips:.3f} (target <= 2)")
    print(f"CPU per poll: {cpu_alone:.0f} us alone, {cpu_shared:.0f} us with Redis "
          f"({cpu_shared / cpu_alone:.2f}x; target <= 1.3x)")  # fmt: skip


if __name__ == "__main__":
    main()
