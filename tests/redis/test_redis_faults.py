"""Redis going away and coming back: StateUnavailableError in between, reconnects after."""

from __future__ import annotations

import time

import pytest
from redis_support import RedisServer, free_port, require_redis_py

require_redis_py()

from state_support import pair  # noqa: E402

from smartcar_async import StateError, StateUnavailableError, token_lineage  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402

LINEAGE = token_lineage("origin")


@pytest.mark.parametrize("which", ["url", "unix_url"])
async def test_redis_killed_and_restarted_mid_use(
    own_redis_server: RedisServer, namespace: str, which: str
) -> None:
    server = own_redis_server
    async with RedisState(getattr(server, which), namespace=namespace) as state:
        assert await state.save_tokens(LINEAGE, pair(0), replacing=None)
        await state.acquire()
        server.stop()  # kill -9: connections cut, nothing persisted
        calls = [
            state.load_tokens(LINEAGE),
            state.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token),
            state.acquire(),
            state.admit(1, "v"),
            state.blocked_for("v"),
            state.block_app(5),
            state.claim("w", max_n=5, lease=5),
            state.remaining(),
            state.load_vehicles(["v"]),
            state.lock(LINEAGE).try_acquire(),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StateUnavailableError, match="unreachable"):
                await call
            assert time.monotonic() - started < 5  # bounded: a few quick retries
        assert await state.ping() is False
        server.start()
        # The same store, no new client: redis-py reconnects on the next call.
        assert await state.ping() is True
        assert await state.load_tokens(LINEAGE) is None  # persistence was off
        assert await state.save_tokens(LINEAGE, pair(2), replacing=None)
        assert await state.acquire() == 0.0
        assert await state.load_schedule(["v"]) is True


async def test_nothing_listening_is_unavailable_at_once(namespace: str) -> None:
    started = time.monotonic()
    state = RedisState(f"redis://127.0.0.1:{free_port()}/0", namespace=namespace)
    with pytest.raises(StateUnavailableError, match="cannot connect: unreachable"):
        async with state:
            pass
    assert state.closed
    assert time.monotonic() - started < 5


async def test_a_wrong_password_is_not_a_passing_outage(
    own_redis_server: RedisServer, namespace: str
) -> None:
    own_redis_server.command("CONFIG", "SET", "requirepass", "right-password")
    with pytest.raises(StateError) as caught:
        async with RedisState(own_redis_server.url, namespace=namespace):
            pass
    assert not isinstance(caught.value, StateUnavailableError)
    async with RedisState(
        f"redis://:right-password@127.0.0.1:{own_redis_server.port}/0", namespace=namespace
    ) as state:
        assert await state.acquire() == 0.0
        assert "right-password" not in repr(state)
