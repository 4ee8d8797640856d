"""Loop helpers, and the one "no pending tasks left behind" check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

#: Guards against hangs only; no assertion is ever made about elapsed time.
HANG_GUARD = 10.0


async def settle(turns: int = 5) -> None:
    """Let the loop run a few turns (callbacks, done-callbacks, cancellations)."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def wait_until(
    predicate: Callable[[], bool], what: str = "condition", *, within: float = HANG_GUARD
) -> None:
    """Poll ``predicate`` every 5 ms until true; fails after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def _coro_file(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    return code.co_filename.replace("\\", "/") if code is not None else ""


def _is_server_task(task: asyncio.Task[Any]) -> bool:
    # In-loop servers (the emulator, stub apps) keep a task per keep-alive
    # connection, and anyio's test runner has its own; those are expected.
    name = _coro_file(task)
    return (
        name.endswith(("aiohttp/web_protocol.py", "anyio/_backends/_asyncio.py"))
        or "/smartcar_async/testing/" in name
    )


def leftover_tasks() -> list[asyncio.Task[Any]]:
    """Every task but the current one and the in-loop test servers' connection handlers."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not _is_server_task(t)]


async def assert_no_leftover_tasks() -> None:
    await settle()
    left = leftover_tasks()
    assert left == [], f"pending tasks left behind: {left}"
