"""StoredTokenSource on a RedisState: one refresh across processes, the lock, the swap.

Each "process" is a StoredTokenSource with a RedisState (a connection pool) of
its own, all on one lineage, so nothing is shared in memory: only Redis. The
emulator runs with ``token_ttl``: a refresh token works exactly once, so a
double spend shows as a refused grant in its log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from redis_support import RedisServer, require_redis_py

require_redis_py()

import smartcar_async as sc  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402
from smartcar_async.testing import Emulator  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CLIENT_ID = "redis-tokens-client"
CLIENT_SECRET = "redis-tokens-secret"
EXPIRED = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
MARGIN = 5.0  # below the emulator's 30-second tokens


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=3, seed=0, token_ttl=30) as emulator:
        emulator.register_client(CLIENT_ID, CLIENT_SECRET)
        yield emulator


@pytest.fixture
async def auth(emu: Emulator) -> AsyncIterator[sc.AuthClient]:
    async with sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url) as client:
        yield client


def first_pair(emu: Emulator, *, expired: bool = True) -> sc.StoredTokens:
    pair = emu.issue_tokens()
    return sc.StoredTokens(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        access_expires_at=EXPIRED if expired else pair.expires_at,
    )


def refresh_grants(emu: Emulator) -> list[str]:
    """The refresh tokens presented at the token endpoint, in order (refused ones too)."""
    return [
        r.body["refresh_token"]
        for r in emu.requests
        if r.method == "POST"
        and r.path == "/oauth/token"
        and isinstance(r.body, dict)
        and r.body.get("grant_type") == "refresh_token"
    ]


class Slow:
    """An auth client whose exchanges take ``delay`` seconds more, before or after the
    token endpoint sees them (after: the token is spent, the answer is late)."""

    def __init__(self, auth: sc.AuthClient, delay: float, *, spend_first: bool) -> None:
        self.auth = auth
        self.delay = delay
        self.spend_first = spend_first
        self.entered = asyncio.Event()

    async def exchange_refresh_token(self, refresh_token: str) -> Any:
        self.entered.set()
        if not self.spend_first:
            await asyncio.sleep(self.delay)
        access = await self.auth.exchange_refresh_token(refresh_token)
        if self.spend_first:
            await asyncio.sleep(self.delay)
        return access


async def stores(url: str, namespace: str, n: int, stack: AsyncExitStack) -> list[RedisState]:
    return [await stack.enter_async_context(RedisState(url, namespace=namespace)) for _ in range(n)]


async def test_many_processes_refresh_a_lineage_once_and_share_the_pair(
    emu: Emulator, auth: sc.AuthClient, redis_server: RedisServer, namespace: str
) -> None:
    initial = first_pair(emu)
    async with AsyncExitStack() as stack:
        states = await stores(redis_server.url, namespace, 4, stack)
        sources = [
            sc.StoredTokenSource(auth, state, initial, refresh_margin=MARGIN) for state in states
        ]
        # Expired at first: every process wants a refresh at once.
        tokens = await asyncio.gather(*(s.token() for s in sources for _ in range(5)))
        assert refresh_grants(emu) == [initial.refresh_token]
        stored = await states[0].load_tokens(sources[0].lineage)
        assert stored is not None
        assert set(tokens) == {stored.access_token}
        assert sum(s.refreshes for s in sources) == 1
        # A 401 seen by every process at once: one more refresh, spending the
        # stored refresh token once.
        fresh = await asyncio.gather(*(s.refresh(stored.access_token) for s in sources))
        assert refresh_grants(emu) == [initial.refresh_token, stored.refresh_token]
        again = await states[1].load_tokens(sources[0].lineage)
        assert again is not None
        assert set(fresh) == {again.access_token}
        assert sum(s.refreshes for s in sources) == 2
        # Each refresh token was spent exactly once, and the pair works.
        grants = refresh_grants(emu)
        assert len(grants) == len(set(grants))
    async with sc.Client(api_origin=emu.url) as client:
        await client.vehicle(emu.fleet.ids[0], access_token=again.access_token).odometer()


ROOT = Path(sc.__file__).resolve().parents[1]
WORKER = textwrap.dedent(
    """
    import asyncio, datetime as dt, sys
    import smartcar_async as sc
    from smartcar_async.redis import RedisState

    async def main(url, namespace, origin, access, refresh):
        initial = sc.StoredTokens(
            access_token=access,
            refresh_token=refresh,
            access_expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        )
        async with (
            RedisState(url, namespace=namespace) as state,
            sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=origin) as auth,
        ):
            source = sc.StoredTokenSource(auth, state, initial, refresh_margin=5.0)
            tokens = set(await asyncio.gather(*(source.token() for _ in range(5))))
            print(source.refreshes, len(tokens), sc.token_lineage(tokens.pop()))

    asyncio.run(main(*sys.argv[1:]))
    """
).replace("CLIENT_ID, CLIENT_SECRET", f"{CLIENT_ID!r}, {CLIENT_SECRET!r}")


async def test_real_processes_refresh_a_lineage_once(
    emu: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    initial = first_pair(emu)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [redis_server.url, namespace, emu.url, initial.access_token, initial.refresh_token]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    try:
        done = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 45)
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    outputs = []
    for (out, err), worker in zip(done, workers, strict=True):
        assert worker.returncode == 0, err.decode()
        outputs.append(out.decode().split())
    assert refresh_grants(emu) == [initial.refresh_token]
    assert sorted(int(refreshes) for refreshes, _n, _t in outputs) == [0, 0, 1]
    assert {n for _r, n, _t in outputs} == {"1"}
    assert len({token for _r, _n, token in outputs}) == 1  # the same pair everywhere


@pytest.mark.parametrize("spend_first", [True, False], ids=["spent-then-slow", "slow-then-spent"])
async def test_a_lock_that_expires_during_a_slow_refresh_keeps_exactly_one_pair(
    emu: Emulator,
    auth: sc.AuthClient,
    redis_server: RedisServer,
    namespace: str,
    spend_first: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="smartcar_async")
    initial = first_pair(emu)
    slow = Slow(auth, 1.0, spend_first=spend_first)
    async with AsyncExitStack() as stack:
        state_a, state_b = await stores(redis_server.url, namespace, 2, stack)
        options: dict[str, Any] = {"refresh_margin": MARGIN, "lock_ttl": 0.3, "lock_wait": 5.0}
        a = sc.StoredTokenSource(slow, state_a, initial, **options)
        b = sc.StoredTokenSource(auth, state_b, initial, **options)
        first = asyncio.create_task(a.token())
        await slow.entered.wait()
        await asyncio.sleep(0.5)  # a's lock has expired; its exchange goes on
        lock_key = f"smartcar_async:{namespace}:lock:refresh:{a.lineage}"
        assert redis_server.command("EXISTS", lock_key) == b":0\r\n"  # expired
        token_b = await b.token()
        token_a = await first
        stored = await state_a.load_tokens(a.lineage)
    # Both use the one stored pair; nothing overwrote it with an older lineage's.
    assert stored is not None
    assert token_a == token_b == stored.access_token
    grants = refresh_grants(emu)
    # Both spent the first token (the lock had expired); only one grant was
    # honoured, and its pair is the stored one.
    assert grants == [initial.refresh_token, initial.refresh_token]
    assert a.refreshes + b.refreshes == 1
    assert (a.refreshes == 1) is spend_first
    async with sc.Client(api_origin=emu.url) as client:
        await client.vehicle(emu.fleet.ids[0], access_token=stored.access_token).odometer()
    if spend_first:
        assert any("expired before its release" in r.getMessage() for r in caplog.records)


async def test_a_refresh_while_redis_is_down_fails_with_a_clear_authentication_error(
    emu: Emulator,
    auth: sc.AuthClient,
    own_redis_server: RedisServer,
    namespace: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    initial = first_pair(emu, expired=False)
    async with RedisState(own_redis_server.url, namespace=namespace) as state:
        source = sc.StoredTokenSource(auth, state, initial, refresh_margin=MARGIN, lock_wait=0.5)
        assert await source.token() == initial.access_token  # loaded and stored
        own_redis_server.stop()
        # The pair in hand still serves: reads need no Redis.
        assert await source.token() == initial.access_token
        with pytest.raises(sc.AuthenticationError, match="shared refresh lock could not be taken"):
            await source.refresh(initial.access_token)
        # Through a client: the call that needs a new token fails the same way.
        source._adopt(
            sc.StoredTokens(
                access_token=initial.access_token,
                refresh_token=initial.refresh_token,
                access_expires_at=EXPIRED,
            )
        )
        async with sc.Client(api_origin=emu.url, state=state, max_retries=0) as client:
            vehicle = client.vehicle(emu.fleet.ids[0], access_token=source)
            with pytest.raises(sc.AuthenticationError, match="refresh lock") as caught:
                await vehicle.odometer()
        assert initial.refresh_token not in str(caught.value)
        assert refresh_grants(emu) == []  # never without the lock
        own_redis_server.start()
        # Back: the refresh happens, under the lock (the restarted Redis is empty,
        # so the pair in use is refreshed and claims the lineage afresh).
        token = await source.token()
        assert token != initial.access_token
        assert refresh_grants(emu) == [initial.refresh_token]
    for record in caplog.records:
        assert initial.refresh_token not in record.getMessage()
        assert initial.access_token not in record.getMessage()
