"""Scenario 4's reference floors: the least a batching client can cost, not contenders.

Both send, per vehicle, one ``POST /v2.0/vehicles/{id}/batch`` for k paths and
resolve one future per read with the item's raw body: no models, no dedupe,
no retries, no error handling. Each is as lean as a careful engineer would
write it: one coroutine per vehicle, and no task per read (a future is all
a read needs when the same coroutine sends its request). Until issue 16 the
floor also ran a task per read awaiting its future, the shape the harness
drives the contenders in; that cost 10 to 15 us per read, inside the floor,
and made the floor look 1.2x dearer than the lean one (see RESULTS.md).
They differ only in what carries the POST:

* ``aiohttp_batch_cost``: one shared ``aiohttp.ClientSession``. This is the
  floor any client built on aiohttp starts from, smartcar_async included.
* ``raw_batch_cost``: a bare ``asyncio.Protocol`` on 100 kept-alive loopback
  connections, a pre-formatted HTTP/1.1 request and a parser that knows just
  enough for the emulator's answers (status line, Content-Length). It is not
  a usable HTTP client (no TLS, chunking, redirects or error handling); it
  shows how much of the floor is aiohttp's own request machinery.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from _harness import median, settle

__all__ = ["aiohttp_batch_cost", "raw_batch_cost"]

HEADERS = {
    "Authorization": "Bearer benchmark",
    "SC-Unit-System": "metric",
    "Content-Type": "application/json",
}
CONNECTIONS = 100

#: Posts one vehicle's batch and returns the parsed envelope.
Post = Callable[[str], Awaitable[Any]]


def _body(paths: Sequence[str]) -> bytes:
    return json.dumps({"requests": [{"path": p} for p in paths]}).encode()


async def _cost(post: Post, ids: Sequence[str], paths: Sequence[str], reps: int) -> float:
    """Median CPU per read over ``reps`` bursts (after one warm-up burst)."""

    async def vehicle(vid: str) -> list[Any]:
        loop = asyncio.get_running_loop()
        futs = {p: loop.create_future() for p in paths}
        data = await post(vid)
        for item in data["responses"]:
            futs[item["path"]].set_result(item["body"])
        return [f.result() for f in futs.values()]

    async def burst() -> float:
        cpu0 = time.process_time()
        await asyncio.gather(*map(vehicle, ids))
        return (time.process_time() - cpu0) / (len(ids) * len(paths)) * 1e6

    await burst()
    return median([await burst() for _ in range(max(reps, 1))])


def aiohttp_batch_cost(url: str, ids: Sequence[str], paths: Sequence[str], reps: int) -> float:
    """CPU per read of a hand-written batch over one aiohttp session."""
    import aiohttp

    body = _body(paths)

    async def measure() -> float:
        async with aiohttp.ClientSession() as session:

            async def post(vid: str) -> Any:
                async with session.post(
                    f"{url}/v2.0/vehicles/{vid}/batch", data=body, headers=HEADERS
                ) as resp:
                    return json.loads(await resp.read())

            return await _cost(post, ids, paths, reps)

    settle()
    return asyncio.run(measure())


class _Conn(asyncio.Protocol):
    """One kept-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: a cast, not a check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = None
        for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError("the raw reference client needs a Content-Length")
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        answer, self.answer = self.answer, None
        assert answer is not None
        answer.set_result(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("the emulator closed the connection"))


def raw_batch_cost(url: str, ids: Sequence[str], paths: Sequence[str], reps: int) -> float:
    """CPU per read of a hand-written batch over bare asyncio protocols (no aiohttp)."""
    body = _body(paths)
    origin = urlsplit(url)
    host, port = origin.hostname or "127.0.0.1", origin.port or 80
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())

    async def measure() -> float:
        loop = asyncio.get_running_loop()
        idle: list[_Conn] = []
        for _ in range(CONNECTIONS):
            _transport, conn = await loop.create_connection(_Conn, host, port)
            idle.append(conn)
        limit = asyncio.Semaphore(CONNECTIONS)

        async def post(vid: str) -> Any:
            async with limit:
                conn = idle.pop()
                try:
                    conn.answer = loop.create_future()
                    assert conn.transport is not None
                    conn.transport.write(
                        f"POST /v2.0/vehicles/{vid}/batch HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"{head}Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                    return json.loads(await conn.answer)
                finally:
                    idle.append(conn)

        try:
            return await _cost(post, ids, paths, reps)
        finally:
            for conn in idle:
                if conn.transport is not None:
                    conn.transport.close()
            await asyncio.sleep(0)  # let the transports finish closing

    settle()
    return asyncio.run(measure())
