"""Scenario 5 (the coalescer's own overhead, in memory) and scenario 6 (idle handles).

Scenario 5 drives ``smartcar_async._coalescer.Coalescer`` directly, with an
in-memory executor that answers every flight at once from batch items recorded
from the emulator. No socket, no JSON: what is left is enqueue, the window
timer, flush, the flight task, routing and model building. A bare harness that
does the same task-per-call and future-resolution work with no coalescer is
measured alongside and subtracted, so the net figure is the coalescer's own
cost per call.

Scenario 6 runs ``_memory_child.py`` in fresh interpreters.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import json
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from _harness import HERE, child_env, median

import smartcar_async
from smartcar_async import _batch, _coalescer
from smartcar_async._converter import structure
from smartcar_async._endpoints import model_for_path
from smartcar_async._models import Meta
from smartcar_async._observability import Counters, Hooks

RawBatch = Mapping[str, tuple[int, Any, Mapping[str, Any]]]


def build_coalescer(executor: Callable[..., Any]) -> _coalescer.Coalescer:
    """A Coalescer configured like a default Client's, around ``executor``.

    Parameters the Coalescer grew after this harness was written are taken
    from a default (never opened) Client's private attribute of the same name,
    so the harness keeps working as the Client evolves.
    """
    known: dict[str, Any] = {
        "executor": executor,
        "window": 0.0,
        "max_batch_size": 25,
        "max_flights_per_queue": 1,
        "join_inflight": True,
        "counters": Counters(),
        "hooks": Hooks((), ()),
    }
    client = smartcar_async.Client(api_origin="http://127.0.0.1:9")
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(_coalescer.Coalescer).parameters.items():
        if name in known:
            kwargs[name] = known[name]
        elif hasattr(client, f"_{name}"):
            kwargs[name] = getattr(client, f"_{name}")
        elif param.default is inspect.Parameter.empty:
            raise RuntimeError(f"scenario 5 cannot build a Coalescer: unknown argument {name!r}")
    return _coalescer.Coalescer(**kwargs)


def _answer(items: RawBatch, paths: tuple[str, ...]) -> Any:
    return _batch.Answer(
        {p: _batch.RawItem(*items[p]) for p in paths}, "00000000-0000-4000-8000-000000000000"
    )


#: A measurement repeats small bursts until it has made at least this many calls,
#: so that small and large bursts are timed with the same resolution.
MIN_CALLS = 20_000


async def _measure(
    make_calls: Callable[[], Sequence[Callable[[], Coroutine[Any, Any, Any]]]],
) -> tuple[float, float, int]:
    """(wall, cpu, calls) for whole bursts: a task per call, each burst gathered."""
    loop = asyncio.get_running_loop()
    wall = cpu = 0.0
    done = 0
    while True:
        calls = make_calls()
        # Every burst starts with no collection debt from the one before, so
        # the collector's work is charged to the burst that caused it.
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        tasks = [loop.create_task(call()) for call in calls]
        await asyncio.gather(*tasks)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - cpu0
        done += len(calls)
        if done >= MIN_CALLS or not calls:
            return wall, cpu, done


async def _coalescer_overhead(
    items: RawBatch, vehicles: int, callers: int, reps: int
) -> dict[str, float]:
    paths = tuple(items)
    raw = {p: _batch.RawItem(*items[p]) for p in paths}

    async def execute(key: Any, flight_paths: tuple[str, ...], *rest: Any) -> Any:
        return _batch.Answer({p: raw[p] for p in flight_paths}, "req")

    coalescer = build_coalescer(execute)
    keys = [_coalescer.QueueKey(f"vehicle-{i}", "token", "metric", None) for i in range(vehicles)]
    models = {p: model_for_path(p) for p in paths}
    loop = asyncio.get_running_loop()

    def real_calls() -> list[Callable[[], Coroutine[Any, Any, Any]]]:
        read = coalescer.read
        return [
            functools.partial(read, k, p, models[p])
            for k in keys
            for p in paths
            for _ in range(callers)
        ]

    async def bare(_: Any = None) -> Any:
        # The least a concurrent call can do: own a future, have it resolved
        # from a later loop turn, and await it.
        fut = loop.create_future()
        loop.call_soon(fut.set_result, None)
        return await fut

    def bare_calls() -> list[Callable[[], Coroutine[Any, Any, Any]]]:
        return [bare for _ in range(len(keys) * len(paths) * callers)]

    meta_headers = {p: raw[p].headers for p in paths}
    bodies = {p: raw[p].body for p in paths}

    def structure_only() -> tuple[float, int]:
        n = 0
        cpu0 = time.process_time()
        for _ in keys:
            for p in paths:
                structure(models[p], bodies[p], Meta.from_headers(meta_headers[p]))
                n += 1
        return time.process_time() - cpu0, n

    await _measure(real_calls)  # warm-up
    await _measure(bare_calls)
    gross_cpu: list[float] = []
    gross_wall: list[float] = []
    base_cpu: list[float] = []
    models_cpu: list[float] = []
    for rep in range(reps):
        order = (real_calls, bare_calls) if rep % 2 == 0 else (bare_calls, real_calls)
        for maker in order:
            wall, cpu, n = await _measure(maker)
            if maker is real_calls:
                gross_cpu.append(cpu / n * 1e6)
                gross_wall.append(wall / n * 1e6)
            else:
                base_cpu.append(cpu / n * 1e6)
        spent, built = structure_only()
        # Models are built once per path, shared by that path's callers.
        models_cpu.append(spent / built * 1e6 / callers)
    gross, base = median(gross_cpu), median(base_cpu)
    return {
        "vehicles": vehicles,
        "paths": len(paths),
        "callers_per_path": callers,
        "calls_per_burst": vehicles * len(paths) * callers,
        "gross_us": gross,
        "gross_wall_us": median(gross_wall),
        "harness_us": base,
        "net_us": gross - base,
        "models_us": median(models_cpu),
        "net_without_models_us": gross - base - median(models_cpu),
        "reps": reps,
    }


def scenario5(items: RawBatch, sizes: Sequence[int], reps: int, dup: int) -> dict[str, Any]:
    """Per call overhead for each burst size (vehicles x 5 paths), distinct and duplicated.

    Per call costs grow with the burst (more live objects, colder caches, for the
    bare harness too), so more than one size is reported rather than the best one.
    """

    results: dict[str, Any] = {}
    for vehicles in sizes:
        for label, callers in (("distinct", 1), ("duplicates", dup)):
            # No collect here: `_measure` collects before every burst.
            results[f"{label}, {vehicles:,} vehicles"] = asyncio.run(
                _coalescer_overhead(items, vehicles, callers, reps)
            )
    return results


def recorded_items(url: str, vehicle_id: str, paths: Sequence[str]) -> RawBatch:
    """One real batch from the emulator, to replay in memory."""
    import aiohttp

    async def fetch() -> RawBatch:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/v2.0/vehicles/{vehicle_id}/batch",
                json={"requests": [{"path": p} for p in paths]},
                headers={"Authorization": "Bearer benchmark", "SC-Unit-System": "metric"},
            ) as resp,
        ):
            body = await resp.json()
        return {
            item["path"]: (item["code"], item["body"], item.get("headers") or {})
            for item in body["responses"]
        }

    return asyncio.run(fetch())


def scenario6(handles: int) -> dict[str, Any]:
    """Memory of idle handles, each contender in fresh interpreters (tracemalloc, then RSS)."""
    results: dict[str, Any] = {}
    for who in ("smartcar_async", "official_sdk", "aiohttp"):
        entry: dict[str, Any] = {}
        for mode in ("tracemalloc", "rss"):
            proc = subprocess.run(
                [sys.executable, str(HERE / "_memory_child.py"), who, mode, str(handles)],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=300,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"memory child {who}/{mode} failed:\n{proc.stderr}")
            entry.update(json.loads(proc.stdout))
        entry["handles"] = handles
        results[who] = entry
    return results
