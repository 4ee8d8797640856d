"""The connection of a Redis store: its lifecycle, and how every command and script is called.

:class:`RedisCore` is the base of :class:`~smartcar_async.redis.RedisState`
(which sets the attributes declared here) and of its parts: one place turns
redis-py's errors into :class:`~smartcar_async.StateError` and
:class:`~smartcar_async.StateUnavailableError`, and passes the frozen test
clock to every script.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar

import redis.exceptions as redis_errors

from ._exceptions import StateError, StateUnavailableError
from ._redis_helpers import _reason, _seconds

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.commands.core import AsyncScript

__all__ = ["RedisCore"]

logger = logging.getLogger("smartcar_async")

_CHUNK: Final = 1000  # fields per HMGET/HSET
_T = TypeVar("_T")

_UNAVAILABLE: Final = (
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.TimeoutError,
    OSError,  # includes the builtin TimeoutError
)


class RedisCore:
    """Lifecycle and command plumbing shared by the parts of a Redis store."""

    _client: aioredis.Redis
    _owned: bool
    _where: str
    _namespace: str
    _prefix: str
    _scripts: dict[str, AsyncScript]
    _closed: bool
    _entered: bool
    _frozen_us: int | None

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._closed:
            raise StateError(f"redis {self._where}: this store is closed")
        if self._entered:
            raise RuntimeError("This RedisState is already open; enter it only once")
        self._entered = True
        try:
            await self._call("connect", self._client.ping())
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client if the store made it (a given client stays open); idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            try:
                await self._client.aclose()
            except redis_errors.RedisError as exc:
                logger.warning("redis %s: closing failed: %s", self._where, _reason(exc))

    async def ping(self) -> bool:
        """True if Redis answers now; never raises for an unreachable server (a probe)."""
        try:
            await self._call("ping", self._client.ping())
        except StateUnavailableError:
            return False
        return True

    async def now(self) -> float:
        """Redis' clock (monotonic across this namespace's calls), in epoch seconds."""
        value = await self._script("read the clock", "NOW", [self._key("clock")], [])
        return self._time("read the clock", value)

    # -------------------------------------------------------------- plumbing

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    def _time(self, what: str, value: object) -> float:
        """A script's microseconds as seconds; a StateError when they are not a number.

        Scripts read what any client may have written: a gate's ``until`` or the
        clock set to ``inf`` by another writer comes back as the text ``inf``.
        """
        try:
            return _seconds(value)
        except (TypeError, ValueError, OverflowError):
            raise StateError(
                f"redis {self._where}: cannot {what}: a stored time is not a number"
            ) from None

    async def _script(
        self,
        what: str,
        name: str,
        keys: list[str],
        args: list[Any],
    ) -> Any:
        frozen = "" if self._frozen_us is None else str(self._frozen_us)
        return await self._call(what, self._scripts[name](keys=keys, args=[frozen, *args]))

    async def _hmget_all(self, what: str, key: str, fields: list[str]) -> dict[str, Any]:
        """The stored value of each of ``fields`` of hash ``key`` (absent ones left out), read
        in chunks within one MULTI/EXEC, so the answer is one snapshot."""
        if not fields:
            return {}

        async def load() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                for start in range(0, len(fields), _CHUNK):
                    pipe.hmget(key, fields[start : start + _CHUNK])
                return await pipe.execute()

        chunks = await self._call(what, load())
        values = [value for chunk in chunks for value in chunk]
        return {f: v for f, v in zip(fields, values, strict=True) if v is not None}

    async def _hset_all(self, what: str, key: str, items: Sequence[tuple[str, str]]) -> None:
        """Set these fields of hash ``key`` in chunks within one MULTI/EXEC: all or none."""
        if not items:
            return

        async def save() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                for start in range(0, len(items), _CHUNK):
                    pipe.hset(key, mapping=dict(items[start : start + _CHUNK]))
                await pipe.execute()

        await self._call(what, save())

    async def _call(self, what: str, operation: Awaitable[_T]) -> _T:
        if self._closed:
            if asyncio.iscoroutine(operation):
                operation.close()  # never awaited: no "was never awaited" warning
            raise StateError(f"redis {self._where}: this store is closed")
        try:
            return await operation
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as exc:
            # A ConnectionError to redis-py, but no reconnect will fix it.
            raise StateError(f"redis {self._where}: cannot {what}: {_reason(exc)}") from exc
        except (redis_errors.ConnectionError, *_UNAVAILABLE) as exc:
            raise StateUnavailableError(
                f"redis {self._where}: cannot {what}: unreachable ({_reason(exc)})"
            ) from exc
        except redis_errors.RedisError as exc:
            raise StateError(f"redis {self._where}: cannot {what}: {_reason(exc)}") from exc
