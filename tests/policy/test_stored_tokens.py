"""StoredTokenSource over a real SQLiteState and the emulator's OAuth endpoint (issue 12, 2).

The emulator runs with ``token_ttl``: a refresh token works exactly once, so a
double spend or a pair lost between the exchange and the save shows as a
refused refresh. Refreshes are counted as ``POST /oauth/token`` in its log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from policy_support import CLIENT_ID, CLIENT_SECRET, bearer, oauth_requests, vehicle_requests

import smartcar_async as sc
from smartcar_async.testing import Emulator

EXPIRED = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
#: Below the emulator's 30-second tokens: a pair taken up fresh is not refreshed at once.
MARGIN = 5.0


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=3, seed=0, token_ttl=30) as emulator:
        emulator.register_client(CLIENT_ID, CLIENT_SECRET)
        yield emulator


@pytest.fixture
async def auth(emu: Emulator) -> AsyncIterator[sc.AuthClient]:
    async with sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[sc.SQLiteState]:
    async with sc.SQLiteState(tmp_path / "state.db") as state:
        yield state


def first_pair(emu: Emulator, *, expired: bool = True) -> sc.StoredTokens:
    """A connected user's pair, as a vehicles file would give it (expired: refresh first)."""
    pair = emu.issue_tokens()
    return sc.StoredTokens(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        access_expires_at=EXPIRED if expired else pair.expires_at,
    )


def refresh_grants(emu: Emulator) -> list[str]:
    """The refresh tokens spent at the token endpoint, in order."""
    return [
        r.body["refresh_token"]
        for r in oauth_requests(emu)
        if isinstance(r.body, dict) and r.body.get("grant_type") == "refresh_token"
    ]


class Recording:
    """A StateStore that forwards to a real one and can fail or hold its token saves."""

    def __init__(self, inner: sc.SQLiteState) -> None:
        self.inner = inner
        self.saved: list[str] = []  # access tokens the store confirmed, in order
        self.fail_saves = False
        self.hold: asyncio.Event | None = None
        self.saving = asyncio.Event()

    async def load_tokens(self, lineage: str) -> sc.StoredTokens | None:
        return await self.inner.load_tokens(lineage)

    async def save_tokens(
        self, lineage: str, tokens: sc.StoredTokens, *, replacing: str | None
    ) -> bool:
        self.saving.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_saves:
            raise sc.StateError("state file test.db: cannot save tokens: disk I/O error")
        done = await self.inner.save_tokens(lineage, tokens, replacing=replacing)
        if done:
            self.saved.append(tokens.access_token)
        return done

    async def load_vehicles(self, vehicle_ids: Iterable[str]) -> dict[str, sc.VehicleRecord]:
        return await self.inner.load_vehicles(vehicle_ids)

    async def save_vehicles(self, records: Mapping[str, sc.VehicleRecord]) -> None:
        await self.inner.save_vehicles(records)

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        return await self.inner.add_billed(vehicle_id, month, n)

    async def billed(self, vehicle_id: str, month: str) -> int:
        return await self.inner.billed(vehicle_id, month)

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, sc.VehicleQuota]:
        return await self.inner.load_quotas(vehicle_ids)

    async def save_quotas(self, records: Mapping[str, sc.VehicleQuota]) -> None:
        await self.inner.save_quotas(records)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class GatedExchanger:
    """An auth client whose exchanges wait for ``release`` (``entered`` tells one began)."""

    def __init__(self, auth: sc.AuthClient) -> None:
        self.auth = auth
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def exchange_refresh_token(self, refresh_token: str) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self.auth.exchange_refresh_token(refresh_token)


# ----------------------------------------------------------------- single flight


async def test_fifty_callers_at_expiry_cause_one_refresh_and_get_the_stored_pair(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    initial = first_pair(emu)
    source = sc.StoredTokenSource(auth, store, initial)
    tokens = await asyncio.gather(*(source.token() for _ in range(50)))
    assert refresh_grants(emu) == [initial.refresh_token]
    stored = await store.load_tokens(sc.token_lineage(initial.refresh_token))
    assert stored is not None
    assert stored == source.tokens
    assert set(tokens) == {stored.access_token} != {initial.access_token}
    assert stored.refresh_token != initial.refresh_token
    assert source.refreshes == 1
    # Fresh now: later calls need no refresh.
    assert await source.token() == stored.access_token
    assert len(refresh_grants(emu)) == 1


async def test_a_refreshed_pair_is_stored_before_any_caller_gets_it(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    recording = Recording(store)
    recording.hold = asyncio.Event()
    initial = first_pair(emu)
    source = sc.StoredTokenSource(auth, recording, initial)
    callers = [asyncio.create_task(source.token()) for _ in range(10)]
    await recording.saving.wait()  # the first pair's save
    recording.hold.set()
    recording.hold = asyncio.Event()
    recording.saving.clear()
    await recording.saving.wait()  # the refreshed pair's save, held
    # The exchange is done (the old refresh token is spent), the save is not:
    # nobody holds the new token yet.
    assert refresh_grants(emu) == [initial.refresh_token]
    assert not any(task.done() for task in callers)
    assert source.tokens is not None
    assert source.tokens.access_token == initial.access_token
    recording.hold.set()
    handed = await asyncio.gather(*callers)
    assert set(handed) == {recording.saved[-1]}
    assert recording.saved == [initial.access_token, handed[0]]


async def test_a_cancelled_caller_does_not_cancel_the_refresh_or_its_save(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    gated = GatedExchanger(auth)
    initial = first_pair(emu)
    source = sc.StoredTokenSource(gated, store, initial)
    caller = asyncio.create_task(source.token())
    await gated.entered.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    gated.release.set()
    await source.drain()
    stored = await store.load_tokens(source.lineage)
    assert stored is not None
    assert stored.refresh_token != initial.refresh_token
    assert await source.token() == stored.access_token
    assert refresh_grants(emu) == [initial.refresh_token]


async def test_a_401_refreshes_once_and_a_stale_token_gets_the_current_one(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    initial = first_pair(emu, expired=False)
    source = sc.StoredTokenSource(auth, store, initial, refresh_margin=MARGIN)
    assert await source.token() == initial.access_token  # valid: no refresh
    assert refresh_grants(emu) == []
    emu.revoke_token(initial.access_token)
    async with sc.Client(api_origin=emu.url) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=source)
        assert isinstance(await car.odometer(), sc.Odometer)
    assert refresh_grants(emu) == [initial.refresh_token]
    fresh = source.tokens
    assert fresh is not None
    assert [bearer(r) for r in vehicle_requests(emu)] == [initial.access_token, fresh.access_token]
    # A caller still holding the old token gets the current one, with no refresh.
    assert await source.refresh(initial.access_token) == fresh.access_token
    assert len(refresh_grants(emu)) == 1


# ----------------------------------------------------------------- the store wins


async def test_a_restart_uses_the_stored_pair_not_the_initial_one(
    emu: Emulator, auth: sc.AuthClient, tmp_path: Path
) -> None:
    initial = first_pair(emu)
    path = tmp_path / "restart.db"
    async with sc.SQLiteState(path) as first_run:
        before = sc.StoredTokenSource(auth, first_run, initial)
        rotated = await before.token()
    async with sc.SQLiteState(path) as second_run:
        # The same first pair, as the same vehicles file gives it again.
        after = sc.StoredTokenSource(auth, second_run, initial, refresh_margin=MARGIN)
        assert await after.token() == rotated
    # The spent initial refresh token was never offered again.
    assert refresh_grants(emu) == [initial.refresh_token]


async def test_a_refresh_token_alone_is_exchanged_and_claims_the_lineage(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    refresh_token = emu.issue_tokens().refresh_token
    source = sc.StoredTokenSource(auth, store, refresh_token)
    token = await source.token()
    stored = await store.load_tokens(sc.token_lineage(refresh_token))
    assert stored is not None
    assert stored.access_token == token
    assert refresh_grants(emu) == [refresh_token]


async def test_a_lost_swap_uses_the_pair_another_process_stored(
    tmp_path: Path,
) -> None:
    # Smartcar's grace window lets two processes spend one refresh token; the
    # store decides whose pair the lineage continues with.
    async with (
        Emulator(vehicles=1, seed=0) as emu,
        sc.AuthClient(CLIENT_ID, CLIENT_SECRET, auth_origin=emu.url) as auth,
        sc.SQLiteState(tmp_path / "shared.db") as mine,
        sc.SQLiteState(tmp_path / "shared.db") as theirs,
    ):
        initial = first_pair(emu, expired=False)
        slow = GatedExchanger(auth)
        loser = sc.StoredTokenSource(slow, mine, initial)
        winner = sc.StoredTokenSource(auth, theirs, initial)
        assert await loser.token() == await winner.token() == initial.access_token
        late = asyncio.create_task(loser.refresh(initial.access_token))
        await slow.entered.wait()  # it loaded the old pair and is about to spend it
        won = await winner.refresh(initial.access_token)
        slow.release.set()
        assert await late == won
        assert loser.tokens == winner.tokens == await mine.load_tokens(loser.lineage)
        # Both spent the old token; only one pair carries the lineage on.
        assert refresh_grants(emu) == [initial.refresh_token] * 2
        assert loser.refreshes == winner.refreshes == 1


async def test_a_process_that_finds_its_token_rotated_uses_the_stored_successor(
    emu: Emulator, auth: sc.AuthClient, tmp_path: Path
) -> None:
    path = tmp_path / "two.db"
    async with sc.SQLiteState(path) as a_store, sc.SQLiteState(path) as b_store:
        initial = first_pair(emu, expired=False)
        a = sc.StoredTokenSource(auth, a_store, initial, refresh_margin=MARGIN)
        b = sc.StoredTokenSource(auth, b_store, initial, refresh_margin=MARGIN)
        assert await a.token() == await b.token()
        new = await a.refresh(initial.access_token)
        # b never spends the dead token: it finds a's pair in the store first.
        assert await b.refresh(initial.access_token) == new
    assert refresh_grants(emu) == [initial.refresh_token]


# ----------------------------------------------------------- a save that fails


async def test_a_pair_that_cannot_be_saved_is_not_used(
    emu: Emulator,
    auth: sc.AuthClient,
    store: sc.SQLiteState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recording = Recording(store)
    initial = first_pair(emu, expired=False)
    source = sc.StoredTokenSource(auth, recording, initial, refresh_margin=MARGIN)
    assert await source.token() == initial.access_token
    recording.fail_saves = True
    emu.expire_token(initial.access_token)
    caplog.set_level(logging.INFO, logger="smartcar_async")
    async with sc.Client(api_origin=emu.url, max_retries=0) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=source)
        with pytest.raises(sc.AuthenticationError, match="could not be saved") as caught:
            await car.odometer()
        # The new pair exists at the emulator, but no request ever carried it.
        assert refresh_grants(emu) == [initial.refresh_token]
        assert {bearer(r) for r in vehicle_requests(emu)} == {initial.access_token}
        assert source.tokens == initial
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors
        assert "could not be saved" in errors[-1].getMessage()
        everything = str(caught.value) + caplog.text
        assert initial.refresh_token not in everything

        # The store recovers: the pair kept aside is saved, then used, with no
        # second exchange (the spent token is dead).
        recording.fail_saves = False
        assert isinstance(await car.odometer(), sc.Odometer)
    assert len(refresh_grants(emu)) == 1
    stored = await store.load_tokens(source.lineage)
    assert stored is not None
    assert stored == source.tokens
    assert bearer(vehicle_requests(emu)[-1]) == stored.access_token
    for secret in (stored.access_token, stored.refresh_token):
        assert secret not in caplog.text


async def test_constructor_checks_its_arguments(auth: sc.AuthClient, store: sc.SQLiteState) -> None:
    with pytest.raises(TypeError, match="store"):
        sc.StoredTokenSource(auth, object(), "r")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="initial"):
        sc.StoredTokenSource(auth, store, 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sc.StoredTokenSource(auth, store, "")
    with pytest.raises(ValueError, match="refresh_margin"):
        sc.StoredTokenSource(auth, store, "r", refresh_margin=-1)
    source = sc.StoredTokenSource(auth, store, "r-SECRET")
    assert "SECRET" not in repr(source)
    assert isinstance(source, sc.TokenSource)


async def test_on_refresh_hears_each_exchange_and_its_outcome(
    emu: Emulator, auth: sc.AuthClient, store: sc.SQLiteState
) -> None:
    heard: list[bool] = []
    pair = first_pair(emu)
    source = sc.StoredTokenSource(auth, store, pair, refresh_margin=MARGIN, on_refresh=heard.append)
    await source.token()
    assert heard == [True]
    # A refresh token the endpoint refuses (and no successor stored): heard as a failure.
    dead = sc.StoredTokenSource(auth, store, "refresh-token-nobody-issued", on_refresh=heard.append)
    with pytest.raises(sc.AuthenticationError):
        await dead.token()
    assert heard == [True, False]
    assert source.refreshes == 1
    assert dead.refreshes == 0
