"""RedisState as a StateStore: the SQLite backend's contract tests, restarts, lifecycle, secrets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from redis_support import RedisServer, new_namespace, require_redis_py

require_redis_py()

import redis.asyncio as aioredis  # noqa: E402
import test_sqlite_concurrency as concurrency  # noqa: E402
import test_sqlite_state as contract  # noqa: E402
from state_support import SECRET, pair, record  # noqa: E402

from smartcar_async import (  # noqa: E402
    RequestBudget,
    StateError,
    StateStore,
    StateUnavailableError,
    VehicleRecord,
    token_lineage,
)
from smartcar_async.redis import RedisState  # noqa: E402

LINEAGE = token_lineage(f"{SECRET}-refresh-0")

# --- the StateStore contract, as the SQLite backend's tests state it ------------------
# Collected here again with this folder's `store` fixture: a RedisState.

test_tokens_round_trip = contract.test_tokens_round_trip
test_token_times_keep_their_instant_in_any_zone = (
    contract.test_token_times_keep_their_instant_in_any_zone
)
test_each_rotation_replaces_the_spent_refresh_token = (
    contract.test_each_rotation_replaces_the_spent_refresh_token
)
test_a_stale_compare_and_swap_changes_nothing = (
    contract.test_a_stale_compare_and_swap_changes_nothing
)
test_replacing_a_token_needs_a_stored_pair = contract.test_replacing_a_token_needs_a_stored_pair
test_lineages_are_independent = contract.test_lineages_are_independent
test_vehicle_records_round_trip = contract.test_vehicle_records_round_trip
test_a_record_is_replaced_whole = contract.test_a_record_is_replaced_whole
test_thousands_of_vehicles_in_one_call = contract.test_thousands_of_vehicles_in_one_call
test_empty_calls = contract.test_empty_calls
test_a_cancelled_caller_leaves_the_store_working = (
    contract.test_a_cancelled_caller_leaves_the_store_working
)
test_concurrent_rotations_of_one_lineage_have_one_winner = (
    concurrency.test_concurrent_rotations_of_one_lineage_have_one_winner
)
test_concurrent_first_saves_have_one_winner = (
    concurrency.test_concurrent_first_saves_have_one_winner
)
test_no_rotation_is_lost_among_concurrent_writers = (
    concurrency.test_no_rotation_is_lost_among_concurrent_writers
)


def test_it_is_a_state_store() -> None:
    assert isinstance(RedisState("redis://127.0.0.1:1/0"), StateStore)


# --- many clients: what sharing means --------------------------------------------------


async def test_concurrent_rotations_from_many_clients_have_one_winner(
    redis_server: RedisServer, namespace: str
) -> None:
    stores = [RedisState(redis_server.url, namespace=namespace) for _ in range(8)]
    try:
        assert await stores[0].save_tokens(LINEAGE, pair(0), replacing=None)
        spent = pair(0).refresh_token
        outcomes = await asyncio.gather(
            *(s.save_tokens(LINEAGE, pair(f"w{n}"), replacing=spent) for n, s in enumerate(stores))
        )
        assert outcomes.count(True) == 1
        winner = outcomes.index(True)
        for s in stores:  # everyone now reads the winner's pair
            assert await s.load_tokens(LINEAGE) == pair(f"w{winner}")
    finally:
        await asyncio.gather(*(s.aclose() for s in stores))


async def test_everything_is_there_after_a_client_restart(
    redis_server: RedisServer, namespace: str
) -> None:
    records = {"a": record(1), "b": record(2, parked=True)}
    async with RedisState(redis_server.url, namespace=namespace) as first:
        assert await first.save_tokens(LINEAGE, pair(0), replacing=None)
        assert await first.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token)
        await first.save_vehicles(records)
    async with RedisState(redis_server.unix_url, namespace=namespace) as again:
        assert await again.load_tokens(LINEAGE) == pair(1)
        assert await again.load_vehicles(["a", "b", "c"]) == records
        assert await again.save_tokens(LINEAGE, pair(2), replacing=pair(1).refresh_token)


async def test_namespaces_do_not_see_each_other(redis_server: RedisServer) -> None:
    async with (
        RedisState(redis_server.url, namespace=new_namespace()) as one,
        RedisState(redis_server.url, namespace=new_namespace()) as two,
    ):
        assert await one.save_tokens(LINEAGE, pair(0), replacing=None)
        await one.save_vehicles({"v": record(1)})
        await one.block_app(30)
        assert await two.load_tokens(LINEAGE) is None
        assert await two.load_vehicles(["v"]) == {}
        assert await two.blocked_for() == 0.0


async def test_every_key_is_under_the_namespace(redis_server: RedisServer, namespace: str) -> None:
    async with RedisState(redis_server.url, namespace=namespace) as state:
        assert await state.save_tokens(LINEAGE, pair(0), replacing=None)
        await state.save_vehicles({"v": record(1)})
        await state.block_vehicle("v", 30, "RATE_LIMIT:VEHICLE")
        await state.block_app(30)
        await state.acquire(2)
        await state.load_schedule(["v", "w"], rounds=1)
        await state.claim("worker", max_n=1, lease=30)
        async with state.lock(LINEAGE):
            keys: list[Any] = await state._client.keys("*")
    names = sorted(k.decode() for k in keys if k.decode().startswith(f"smartcar_async:{namespace}"))
    assert len(names) >= 10
    assert all(name.startswith(f"smartcar_async:{namespace}:") for name in names)


async def test_a_client_with_decoded_responses_works_too(
    redis_server: RedisServer, namespace: str
) -> None:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        async with RedisState(client, namespace=namespace) as state:
            assert await state.save_tokens(LINEAGE, pair(0), replacing=None)
            assert await state.load_tokens(LINEAGE) == pair(0)
            await state.save_vehicles({"v": record(3, parked=True)})
            assert await state.load_vehicles(["v"]) == {"v": record(3, parked=True)}
            await state.load_schedule(["v"])
            claim = await state.claim("w", max_n=5, lease=10)
            assert [v.vehicle_id for v in claim.vehicles] == ["v"]
            admission = await state.admit(1, "v")
            assert admission.reserved
        assert await client.ping()  # given, so not closed by the store
    finally:
        await client.aclose()


# --- malformed stored values -------------------------------------------------------------


async def test_a_malformed_stored_pair_is_a_state_error_without_the_token(
    store: RedisState,
) -> None:
    key = store._key("tokens", LINEAGE)
    await store._client.hset(key, mapping={"access": SECRET, "refresh": SECRET})  # no expiry
    with pytest.raises(StateError, match="malformed") as caught:
        await store.load_tokens(LINEAGE)
    assert SECRET not in str(caught.value)
    await store._client.hset(key, "access_expires_at", SECRET)
    with pytest.raises(StateError, match="malformed") as caught:
        await store.load_tokens(LINEAGE)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[1]",
        '{"next_due": NaN, "blocked_until": null, "failures": 0, "parked": {}}',
        '{"next_due": null, "blocked_until": null, "failures": -1, "parked": {}}',
        '{"next_due": null, "blocked_until": null, "failures": 0, "parked": {"odometer": 3}}',
        '{"next_due": null, "failures": 0, "parked": {}}',
    ],
)
async def test_a_malformed_record_is_a_state_error(store: RedisState, stored: str) -> None:
    await store._client.hset(store._key("vehicles"), "v", stored)
    with pytest.raises(StateError, match="record of vehicle 'v' is malformed"):
        await store.load_vehicles(["v"])


async def test_a_key_of_another_type_is_a_state_error(store: RedisState) -> None:
    await store._client.set(store._key("vehicles"), "a string")
    with pytest.raises(StateError, match="load vehicles") as caught:
        await store.load_vehicles(["v"])
    assert not isinstance(caught.value, StateUnavailableError)


# --- arguments and lifecycle ----------------------------------------------------------------


async def test_bad_arguments_fail_before_any_io() -> None:
    state = RedisState("redis://127.0.0.1:1/0")  # nothing listens there
    with pytest.raises(TypeError):
        await state.load_vehicles("vehicle-1")
    with pytest.raises(ValueError, match="vehicle id"):
        await state.save_vehicles({"": VehicleRecord()})
    with pytest.raises(ValueError, match="lineage"):
        await state.load_tokens("")
    with pytest.raises(TypeError):
        await state.save_tokens(LINEAGE, {"access_token": "a"}, replacing=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await state.save_tokens(LINEAGE, pair(0), replacing=b"r")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        await state.acquire(121)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="cost"):
            await state.acquire(bad)
    with pytest.raises(TypeError):
        await state.acquire(True)
    with pytest.raises(ValueError, match="finite"):
        await state.block_app(float("nan"))
    with pytest.raises(ValueError, match="seconds"):
        await state.block_vehicle("v", -1, "RATE_LIMIT:VEHICLE")
    with pytest.raises(ValueError, match="lease"):
        await state.claim("w", max_n=1, lease=0)
    with pytest.raises(ValueError, match="worker_id"):
        await state.claim("", max_n=1, lease=1)
    with pytest.raises(ValueError, match="rounds"):
        await state.load_schedule(["v"], rounds=-1)
    with pytest.raises(ValueError, match="next_due"):
        await state.reschedule("v", float("inf"), "w")
    with pytest.raises(ValueError, match="ttl"):
        state.lock(LINEAGE, ttl=0)
    await state.aclose()


@pytest.mark.parametrize("namespace", ["", "a:b", "a b", "-x", "x" * 65, "fleet\n"])
def test_a_namespace_is_a_plain_name(namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisState("redis://localhost", namespace=namespace)


def test_what_it_is_given_is_checked() -> None:
    with pytest.raises(TypeError):
        RedisState(b"redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RedisState("redis://localhost", namespace=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RedisState("redis://localhost", budget=(120, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a Redis URL") as caught:
        RedisState(f"http://user:{SECRET}@host/0")
    assert SECRET not in str(caught.value)


async def test_lifecycle(redis_server: RedisServer, namespace: str) -> None:
    state = RedisState(redis_server.url, namespace=namespace)
    assert "open" in repr(state)
    async with state:
        with pytest.raises(RuntimeError, match="once"):
            async with state:
                pass
        assert await state.ping()
    await state.aclose()
    assert state.closed
    assert "closed" in repr(state)
    with pytest.raises(StateError, match="closed"):
        await state.load_tokens(LINEAGE)
    with pytest.raises(StateError, match="closed"):
        await state.acquire()
    with pytest.raises(StateError, match="closed"):
        async with state:
            pass


async def test_a_budget_of_its_own(redis_server: RedisServer, namespace: str) -> None:
    budget = RequestBudget(capacity=5, refill_per_minute=60)
    async with RedisState(redis_server.url, namespace=namespace, budget=budget) as state:
        assert [await state.acquire() for _ in range(5)] == [0.0] * 5
        # Real Redis time runs on between the calls (a loaded machine: tens of ms), so the
        # wait is one refill interval less what has passed; exact figures are in
        # test_redis_bucket.py on a frozen clock.
        wait = await state.acquire()
        assert 0.5 < wait <= 1.0
        with pytest.raises(ValueError, match="capacity"):
            await state.acquire(6)


# --- secrets ---------------------------------------------------------------------------------


async def test_no_secret_in_reprs_errors_or_logs(
    redis_server: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with_password = f"redis://user:{SECRET}@127.0.0.1:{redis_server.port}/0?password={SECRET}"
    texts.append(repr(RedisState(with_password)))
    async with RedisState(redis_server.url, namespace=namespace) as state:
        assert await state.save_tokens(LINEAGE, pair(0), replacing=None)
        assert await state.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token)
        assert not await state.save_tokens(LINEAGE, pair(2), replacing=pair(0).refresh_token)
        loaded = await state.load_tokens(LINEAGE)
        held = state.lock(LINEAGE, ttl=0.05)
        async with held:
            texts.append(repr(held))
            await asyncio.sleep(0.1)  # expires: the release logs a warning
        texts += [repr(state), str(state), repr(loaded), str(loaded)]
    # A wrong password: the error names the server, never the password.
    refused = RedisState(with_password)
    with pytest.raises(StateError) as caught:
        async with refused:
            pass
    texts += [str(caught.value), repr(caught.value), repr(refused)]
    texts += [r.getMessage() for r in caplog.records]
    assert any("expired before its release" in t for t in texts)
    assert all(SECRET not in text for text in texts), texts
    assert f"127.0.0.1:{redis_server.port}" in repr(refused)
