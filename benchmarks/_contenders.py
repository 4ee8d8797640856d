"""The three contenders, each doing the same logical reads its own idiomatic way.

A *logical read* is ``(vehicle_id, path)``: one call a user makes, such as
``vehicle.odometer()``. Every contender gets the same list of reads, all issued
at once (a burst), and reports when each one was delivered.

* ``official_sdk``: ``smartcar`` 6.19 (sync, ``requests``) on a thread pool;
  one SDK method call per read. The SDK opens a new connection per call (it
  uses no ``requests.Session``): that is its real behaviour and is kept.
* ``aiohttp``: one ``GET`` per read over one shared ``aiohttp.ClientSession``
  (default connector, 100 connections), JSON decoded, nothing else.
* ``smartcar_async``: one ``Client`` (defaults: 5 ms window, 100 connections),
  one ``Vehicle`` handle per vehicle, one method call per read.

Latency of a read is measured from the moment it is handed to the contender
(submitted to the pool, or its task created) to the moment its result is in
the caller's hands, so queueing inside the contender counts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import aiohttp

import smartcar_async

TOKEN = "benchmark-token"
UNIT_SYSTEM = "metric"

#: Reads by path: (path, method name on both SDKs' Vehicle). The names are the
#: same on the official SDK and on smartcar_async.
METHODS: dict[str, str] = {
    "/": "attributes",
    "/vin": "vin",
    "/permissions": "permissions",
    "/odometer": "odometer",
    "/location": "location",
    "/fuel": "fuel",
    "/battery": "battery",
    "/battery/capacity": "battery_capacity",
    "/battery/nominal_capacity": "nominal_capacity",
    "/charge": "charge",
    "/charge/limit": "get_charge_limit",
    "/tires/pressure": "tire_pressure",
    "/engine/oil": "engine_oil",
    "/security": "lock_status",
    "/diagnostics/system_status": "diagnostic_system_status",
    "/diagnostics/dtcs": "diagnostic_trouble_codes",
}

Read = tuple[str, str]

#: The official SDK's thread pool. In a sweep on the benchmark machine (scenario 2,
#: 16/32/64/128/256 threads: 17.6/10.0/8.1/9.0/9.4 s) 64 was the fastest: the SDK
#: is GIL-bound at ~1.5 ms of CPU per call, so more threads only add contention.
SDK_THREADS = 64


class Outcome:
    """What one contender did for one burst of reads."""

    __slots__ = ("cpu", "errors", "latencies", "ok", "requests", "wall")

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.ok = 0
        self.errors = 0
        self.requests = 0  # the contender's own count of HTTP requests sent
        self.latencies: list[float] = []


#: (delivered, failed, abandoned, HTTP requests by the client's count, window seconds)
Paced = tuple[int, int, int, int, float]


class Contender:
    """Base: ``run(reads)`` is synchronous for the harness, whatever the client inside."""

    name = "?"

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        raise NotImplementedError

    def run(self, reads: Sequence[Read]) -> Outcome:
        raise NotImplementedError

    def run_paced(self, waves: Sequence[Sequence[Read]], tick: float, seconds: float) -> Paced:
        """Start one wave of reads every ``tick`` seconds, without waiting for the
        previous ones, for ``seconds``; reads not answered by then are abandoned."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _clear_proxies() -> None:
    # requests honours HTTP(S)_PROXY; localhost must never be proxied.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    os.environ.pop("all_proxy", None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


class OfficialSDK(Contender):
    name = "official_sdk"

    def __init__(self, threads: int = SDK_THREADS) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._vehicles: dict[str, Any] = {}
        self._smartcar: Any = None

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        _clear_proxies()
        # Before the import for every 6.x, and the 6.19 attribute after it.
        os.environ["SMARTCAR_API_ORIGIN"] = origin
        import smartcar
        import smartcar.config

        smartcar.config.API_ORIGIN = origin
        smartcar.config.API_URL = origin  # the pre-6.19 name; harmless here
        self._smartcar = smartcar
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sdk")

    def _vehicle(self, vehicle_id: str) -> Any:
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            vehicle = self._vehicles[vehicle_id] = self._smartcar.Vehicle(
                vehicle_id, TOKEN, {"unit_system": UNIT_SYSTEM}
            )
        return vehicle

    def run(self, reads: Sequence[Read]) -> Outcome:
        assert self._pool is not None
        exc_type = self._smartcar.SmartcarException
        calls = [getattr(self._vehicle(vid), METHODS[path]) for vid, path in reads]
        out = Outcome()
        lat = out.latencies
        clock = time.perf_counter

        def one(call: Callable[[], Any], issued: float) -> bool:
            try:
                call()
            except exc_type:
                return False
            finally:
                lat.append(clock() - issued)
            return True

        cpu0, t0 = time.process_time(), clock()
        futures = [self._pool.submit(one, call, clock()) for call in calls]
        wait(futures)
        out.wall, out.cpu = clock() - t0, time.process_time() - cpu0
        for fut in futures:
            if fut.result():
                out.ok += 1
            else:
                out.errors += 1
        out.requests = len(reads)  # one HTTP request per SDK call, always
        return out

    def run_paced(self, waves: Sequence[Sequence[Read]], tick: float, seconds: float) -> Paced:
        assert self._pool is not None
        exc_type = self._smartcar.SmartcarException
        clock = time.perf_counter
        done: list[tuple[bool, float]] = []

        def one(call: Callable[[], Any]) -> None:
            try:
                call()
            except exc_type:
                done.append((False, clock()))
            else:
                done.append((True, clock()))

        futures = []
        t0 = clock()
        deadline = t0 + seconds
        for i, wave in enumerate(waves):
            start = t0 + i * tick
            if start >= deadline:
                break
            time.sleep(max(0.0, start - clock()))
            for vid, path in wave:
                futures.append(self._pool.submit(one, getattr(self._vehicle(vid), METHODS[path])))
        time.sleep(max(0.0, deadline - clock()))
        # Threads cannot be cancelled: wait, but count only what came back in time.
        wait(futures)
        delivered = sum(1 for ok, at in done if ok and at <= deadline)
        failed = sum(1 for ok, at in done if not ok and at <= deadline)
        return delivered, failed, len(futures) - delivered - failed, len(futures), seconds

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class _AsyncContender(Contender):
    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None

    def start(self, origin: str, runner: asyncio.Runner) -> None:
        self._runner = runner
        runner.run(self._astart(origin))

    async def _astart(self, origin: str) -> None:
        raise NotImplementedError

    def _call(self, read: Read) -> Callable[[], Awaitable[Any]]:
        raise NotImplementedError

    def _requests(self) -> int:
        raise NotImplementedError

    def run(self, reads: Sequence[Read]) -> Outcome:
        assert self._runner is not None
        return self._runner.run(self._burst(reads))

    async def _burst(self, reads: Sequence[Read]) -> Outcome:
        calls = [self._call(read) for read in reads]
        out = Outcome()
        lat = out.latencies
        clock = time.perf_counter
        errors = (smartcar_async.SmartcarError, aiohttp.ClientError, ValueError)

        async def one(call: Callable[[], Awaitable[Any]], issued: float) -> bool:
            try:
                await call()
            except errors:
                return False
            finally:
                lat.append(clock() - issued)
            return True

        sent0 = self._requests()
        loop = asyncio.get_running_loop()
        cpu0, t0 = time.process_time(), clock()
        tasks = [loop.create_task(one(call, clock())) for call in calls]
        results = await asyncio.gather(*tasks)
        out.wall, out.cpu = clock() - t0, time.process_time() - cpu0
        out.ok = sum(results)
        out.errors = len(results) - out.ok
        out.requests = self._requests() - sent0
        return out

    def run_paced(self, waves: Sequence[Sequence[Read]], tick: float, seconds: float) -> Paced:
        assert self._runner is not None
        return self._runner.run(self._paced(waves, tick, seconds))

    async def _paced(self, waves: Sequence[Sequence[Read]], tick: float, seconds: float) -> Paced:
        clock = time.perf_counter
        errors = (smartcar_async.SmartcarError, aiohttp.ClientError, ValueError)
        done: list[tuple[bool, float]] = []

        async def one(call: Callable[[], Awaitable[Any]]) -> None:
            try:
                await call()
            except errors:
                done.append((False, clock()))
            else:
                done.append((True, clock()))

        loop = asyncio.get_running_loop()
        sent0 = self._requests()
        tasks: list[asyncio.Task[None]] = []
        t0 = clock()
        deadline = t0 + seconds
        for i, wave in enumerate(waves):
            start = t0 + i * tick
            if start >= deadline:
                break
            await asyncio.sleep(max(0.0, start - clock()))
            tasks.extend(loop.create_task(one(self._call(read))) for read in wave)
        await asyncio.sleep(max(0.0, deadline - clock()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        delivered = sum(1 for ok, at in done if ok and at <= deadline)
        failed = sum(1 for ok, at in done if not ok and at <= deadline)
        sent = self._requests() - sent0
        return delivered, failed, len(tasks) - delivered - failed, sent, seconds

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self._aclose())

    async def _aclose(self) -> None:
        raise NotImplementedError


class PlainAiohttp(_AsyncContender):
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

    def _call(self, read: Read) -> Callable[[], Awaitable[Any]]:
        vehicle_id, path = read
        url = f"{self._origin}/v2.0/vehicles/{vehicle_id}{path}"
        return lambda: self._get(url)

    async def _get(self, url: str) -> Any:
        assert self._session is not None
        self._sent += 1
        async with self._session.get(url, headers=self._headers) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            return body

    def _requests(self) -> int:
        return self._sent

    async def _aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SmartcarAsync(_AsyncContender):
    name = "smartcar_async"

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self._options = options
        self._client: smartcar_async.Client | None = None
        self._vehicles: dict[str, smartcar_async.Vehicle] = {}

    @property
    def client(self) -> smartcar_async.Client:
        assert self._client is not None
        return self._client

    async def _astart(self, origin: str) -> None:
        self._client = smartcar_async.Client(api_origin=origin, **self._options)
        await self._client.__aenter__()

    def _call(self, read: Read) -> Callable[[], Awaitable[Any]]:
        vehicle_id, path = read
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            vehicle = self._vehicles[vehicle_id] = self.client.vehicle(
                vehicle_id, access_token=TOKEN, unit_system=UNIT_SYSTEM
            )
        method: Callable[[], Awaitable[Any]] = getattr(vehicle, METHODS[path])
        return method

    def _requests(self) -> int:
        return self.client.stats.http_requests

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def make_contenders(sdk_threads: int = SDK_THREADS) -> list[Contender]:
    return [OfficialSDK(sdk_threads), PlainAiohttp(), SmartcarAsync()]
