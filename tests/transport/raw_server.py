"""A raw asyncio HTTP server for the adversarial tests: it can answer with malformed HTTP.

`aiohttp.web` only ever sends well-formed HTTP, so the shapes a broken proxy or
a hostile server sends (a body cut short, a reset after the headers, bad
chunking, a lying Content-Length, a garbage status line) come from here. It
reads one request at a time (request line, headers, a Content-Length body),
then hands the connection to the current `Script`; a script that returns
without closing lets the connection serve the next request.

Every connection handler is tracked, and leaving the ``async with`` block
cancels and awaits them, so a test can check for leftover tasks afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from transport_support import good_answer

__all__ = ["RawRequest", "RawServer", "Script", "http_response", "json_answer", "raw_server"]


@attrs.frozen
class RawRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


#: Writes the answer to one request; returns True to keep the connection open.
Script = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[bool]]


def http_response(
    status: int,
    body: bytes,
    *,
    reason: str = "OK",
    headers: dict[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """The bytes of a response; ``content_length`` may lie (None: the true length)."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    merged = {"Content-Type": "application/json", **(headers or {})}
    merged["Content-Length"] = str(len(body) if content_length is None else content_length)
    lines += [f"{name}: {value}" for name, value in merged.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_answer(request: RawRequest) -> tuple[int, bytes]:
    """What a healthy API answers to this request (see `transport_support.good_answer`)."""
    return good_answer(request.method, request.target.split("?", 1)[0], request.json)


async def answer_well(request: RawRequest, writer: asyncio.StreamWriter) -> bool:
    status, body = json_answer(request)
    writer.write(http_response(status, body))
    await writer.drain()
    return True


@attrs.define
class RawServer:
    """The running server: its URL, the script in force, and what it received."""

    url: str = ""
    script: Script = answer_well
    requests: list[RawRequest] = attrs.field(factory=list)
    handlers: set[asyncio.Task[None]] = attrs.field(factory=set)
    writers: set[asyncio.StreamWriter] = attrs.field(factory=set)

    def heal(self) -> None:
        """Answer every later request well (existing connections included)."""
        self.script = answer_well

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if not await self.script(request, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        except asyncio.CancelledError:
            # Cancelled by the server's exit. asyncio's stream callback asks
            # a finished handler for its exception, which raises for a
            # cancelled task and gets reported: end normally instead.
            return
        finally:
            self.writers.discard(writer)
            self.handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection between requests
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawRequest(method, target, headers, body)


@contextlib.asynccontextmanager
async def raw_server(script: Script = answer_well) -> AsyncIterator[RawServer]:
    """Serve on 127.0.0.1 (port 0); on exit, every connection handler is cancelled and awaited."""
    state = RawServer(script=script)
    server = await asyncio.start_server(state._handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        for writer in list(state.writers):
            writer.transport.abort()
        handlers = list(state.handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
