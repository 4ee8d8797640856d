from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis_support import RedisServer, new_namespace, require_redis_py, require_redis_server

# The StateStore contract tests of the embedded backend run here again on Redis
# (test_redis_state.py imports them); their helpers live next to them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "state"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by namespace."""
    require_redis_py()
    server = RedisServer(require_redis_server())
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test alone (to kill and restart)."""
    require_redis_py()
    server = RedisServer(require_redis_server())
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def namespace() -> str:
    return new_namespace()


@pytest.fixture
async def store(redis_server: RedisServer, namespace: str) -> AsyncIterator[object]:
    """An open RedisState in a namespace of this test's own; closed after."""
    from smartcar_async.redis import RedisState

    async with RedisState(redis_server.url, namespace=namespace) as opened:
        yield opened
