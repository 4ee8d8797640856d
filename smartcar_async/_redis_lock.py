"""The refresh lock of one token lineage in Redis (see :meth:`RedisState.lock`)."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from types import TracebackType
from typing import Self

from ._exceptions import StateError
from ._redis_core import RedisCore
from ._redis_helpers import _US, _duration_us
from ._redis_types import LockTimeoutError

__all__ = ["RefreshLock"]

logger = logging.getLogger("smartcar_async")


class RefreshLock:
    """A token lineage's refresh lock in Redis (from :meth:`RedisState.lock`).

    ``async with`` takes it (waiting up to ``wait``), and releases it on the way
    out only if it is still this holder's (compare-and-delete with a random
    owner token). The owner token is not shown in the repr. Added in 0.1.0.
    """

    def __init__(self, state: RedisCore, key: str, *, ttl: float, wait: float) -> None:
        self._state = state
        self._key = key
        self._ttl_ms = max(1, _duration_us("ttl", ttl, allow_zero=False) // 1000)
        self._wait = _duration_us("wait", wait, allow_zero=True) / _US
        self._owner = secrets.token_hex(16)
        self._held = False

    @property
    def held(self) -> bool:
        """True between a successful take and the release (it may have expired since)."""
        return self._held

    def __repr__(self) -> str:
        return f"<smartcar_async.RefreshLock {self._key!r} held={self._held}>"

    async def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting; True if taken."""
        if self._held:
            raise RuntimeError("This RefreshLock is already held; take it once at a time")
        client = self._state._client
        taken = await self._state._call(
            "take the refresh lock", client.set(self._key, self._owner, nx=True, px=self._ttl_ms)
        )
        self._held = bool(taken)
        return self._held

    async def acquire(self) -> None:
        """Take the lock, polling until it is free for up to ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        pause = 0.01
        while not await self.try_acquire():
            left = deadline - loop.time()
            if left <= 0:
                raise LockTimeoutError(
                    f"redis {self._state._where}: the refresh lock {self._key!r} was "
                    f"still held by another worker after {self._wait:g} s"
                )
            # Jittered so that waiters do not poll in step.
            await asyncio.sleep(min(left, pause * random.uniform(0.5, 1.5)))
            pause = min(pause * 2, 0.25)

    async def extend(self, ttl: float | None = None) -> bool:
        """Push the expiry to ``ttl`` (default: the lock's) from now, if still ours."""
        ttl_ms = self._ttl_ms if ttl is None else max(1, _duration_us("ttl", ttl) // 1000)
        state = self._state
        done = await state._call(
            "extend the refresh lock",
            state._scripts["RELOCK"](keys=[self._key], args=[self._owner, ttl_ms]),
        )
        return int(done) == 1

    async def release(self) -> bool:
        """Release the lock if it is still ours (not expired and taken by another)."""
        if not self._held:
            return False
        self._held = False
        state = self._state
        done = await state._call(
            "release the refresh lock",
            state._scripts["UNLOCK"](keys=[self._key], args=[self._owner]),
        )
        if int(done) != 1:
            logger.warning(
                "redis %s: the refresh lock %s expired before its release "
                "(a refresh took longer than its ttl)",
                state._where,
                self._key,
            )
        return int(done) == 1

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.release()
        except StateError:
            if exc is None:
                raise
            # The body's own error matters more; the lock expires by itself.
