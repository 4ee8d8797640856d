"""The shared schedule: loading once, claiming by lease, rescheduling, rounds, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis_support import FROZEN, RedisServer, freeze, require_redis_py

require_redis_py()

from smartcar_async import StateError  # noqa: E402
from smartcar_async.redis import RedisState  # noqa: E402

IDS = [f"v{n:04}" for n in range(500)]


@pytest.fixture
async def state(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisState]:
    opened = RedisState(redis_server.url, namespace=namespace)
    freeze(opened, FROZEN)
    yield opened
    await opened.aclose()


async def test_the_first_loader_wins_and_later_ones_change_nothing(
    redis_server: RedisServer, namespace: str
) -> None:
    loaders = [RedisState(redis_server.url, namespace=namespace) for _ in range(6)]
    try:
        outcomes = await asyncio.gather(*(s.load_schedule(IDS, rounds=2) for s in loaders))
        assert outcomes.count(True) == 1
        assert await loaders[0].remaining() == len(IDS)
        # Same ids in another order, and the same rounds: fine, nothing changes.
        assert await loaders[1].load_schedule(reversed(IDS), rounds=2) is False
        with pytest.raises(StateError, match="another namespace"):
            await loaders[2].load_schedule([*IDS, "new"], rounds=2)
        with pytest.raises(StateError, match="rounds"):
            await loaders[2].load_schedule(IDS, rounds=3)
        await loaders[3].reset_schedule()
        assert await loaders[3].remaining() == 0
        assert await loaders[4].load_schedule(IDS[:10], rounds=1) is True
    finally:
        await asyncio.gather(*(s.aclose() for s in loaders))


async def test_one_claim_takes_many_due_vehicles_earliest_first(state: RedisState) -> None:
    await state.load_schedule(IDS, first_due=FROZEN - 10)
    # Make v0499 the most overdue, v0000 due in 5 s, v0001 in an hour.
    await state._client.zadd(
        state._key("schedule"),
        {"v0499": (FROZEN - 60) * 1e6, "v0000": (FROZEN + 5) * 1e6, "v0001": (FROZEN + 3600) * 1e6},
    )
    claim = await state.claim("w1", max_n=200, lease=30)
    assert claim.now == FROZEN
    assert claim.lease_until == FROZEN + 30
    assert claim.reclaimed == 0
    ids = [v.vehicle_id for v in claim.vehicles]
    assert ids == ["v0499", *IDS[2:201]]
    assert claim.vehicles[0].due == FROZEN - 60
    assert {v.polls_done for v in claim.vehicles} == {0}
    second = await state.claim("w2", max_n=1000, lease=30)
    assert [v.vehicle_id for v in second.vehicles] == IDS[201:499]  # not the future ones
    assert (await state.claim("w3", max_n=10, lease=30)).vehicles == ()
    ahead = await state.claim("w3", max_n=10, lease=30, ahead=5)
    assert [v.vehicle_id for v in ahead.vehicles] == ["v0000"]
    assert await state.remaining() == len(IDS)
    assert (await state.claim("w3", max_n=0, lease=30)).vehicles == ()


async def test_a_lease_expiring_exactly_at_claim_time_is_taken(state: RedisState) -> None:
    await state.load_schedule(["a", "b"], first_due=FROZEN)
    held = await state.claim("w1", max_n=1, lease=10)
    assert [v.vehicle_id for v in held.vehicles] == ["a"]
    freeze(state, FROZEN + 10 - 1e-6)  # one microsecond before the end: still w1's
    just_before = await state.claim("w2", max_n=5, lease=10)
    assert [v.vehicle_id for v in just_before.vehicles] == ["b"]
    assert just_before.reclaimed == 0
    freeze(state, FROZEN + 10)  # the lease ends now: expired, anyone's
    at_the_end = await state.claim("w2", max_n=5, lease=10)
    assert at_the_end.reclaimed == 1
    assert [(v.vehicle_id, v.due) for v in at_the_end.vehicles] == [("a", FROZEN)]  # its old due
    # w1 comes back too late: refused, and the vehicle stays w2's.
    assert await state.reschedule("a", FROZEN + 60, "w1") is False
    assert await state.reschedule("a", FROZEN + 60, "w2") is True
    assert await state.rounds_done("a") == 1


async def test_a_reschedule_sent_again_cannot_complete_the_same_workers_newer_lease(
    state: RedisState,
) -> None:
    await state.load_schedule(["a"], first_due=FROZEN, rounds=3)
    first = await state.claim("w", max_n=1, lease=10)
    claimed_at = {"a": first.vehicles[0].due}
    # The first attempt takes effect, but Redis goes down before its answer arrives...
    assert await state.reschedule_many("w", {"a": FROZEN + 1}, claimed=claimed_at) == {"a": 1}
    # ...and once the vehicle is due, the same worker claims it for its second poll.
    freeze(state, FROZEN + 1)
    second = await state.claim("w", max_n=1, lease=10)
    assert [(v.vehicle_id, v.due, v.polls_done) for v in second.vehicles] == [("a", FROZEN + 1, 1)]
    # The worker sends the first reschedule again: it names the first lease, so it is
    # refused rather than counted against the second (which nobody has polled yet).
    assert await state.reschedule_many("w", {"a": FROZEN + 1}, claimed=claimed_at) == {"a": None}
    assert await state.rounds_done("a") == 1
    done = await state.reschedule_many("w", {"a": FROZEN + 2}, claimed={"a": FROZEN + 1})
    assert done == {"a": 2}
    with pytest.raises(TypeError, match="claimed"):
        await state.reschedule_many("w", {"a": FROZEN + 3}, claimed=[("a", 1.0)])  # type: ignore[arg-type]


async def test_an_expired_lease_cannot_be_completed_even_if_unclaimed(state: RedisState) -> None:
    await state.load_schedule(["a"], first_due=FROZEN)
    await state.claim("w1", max_n=1, lease=10)
    freeze(state, FROZEN + 10)
    assert await state.reschedule_many("w1", {"a": FROZEN + 60}) == {"a": None}
    assert await state.rounds_done("a") == 0
    assert await state.remaining() == 1  # still leased until someone claims it back
    again = await state.claim("w2", max_n=1, lease=10)
    assert [v.vehicle_id for v in again.vehicles] == ["a"]


async def test_only_the_holder_completes_a_lease(state: RedisState) -> None:
    await state.load_schedule(["a", "b", "c"], first_due=FROZEN)
    await state.claim("worker one", max_n=2, lease=10)  # a worker id may hold spaces
    freeze(state, FROZEN + 5)
    outcome = await state.reschedule_many(
        "worker", {"a": FROZEN + 30, "b": FROZEN + 30, "c": FROZEN + 30}
    )
    assert outcome == {"a": None, "b": None, "c": None}
    outcome = await state.reschedule_many("worker one", {"a": FROZEN + 30, "c": FROZEN + 30})
    assert outcome == {"a": 1, "c": None}  # c was never claimed
    assert await state.reschedule("a", FROZEN + 30, "worker one") is False  # done once
    # Rescheduled at its next due time: not claimable before it.
    assert [v.vehicle_id for v in (await state.claim("x", max_n=5, lease=5)).vehicles] == ["c"]
    freeze(state, FROZEN + 30)
    claim = await state.claim("x", max_n=5, lease=5)
    # b (worker one's) and c (x's) leases expired meanwhile: back at their old due, first.
    assert [(v.vehicle_id, v.polls_done) for v in claim.vehicles] == [("b", 0), ("c", 0), ("a", 1)]


async def test_rounds_end_and_remaining_reaches_zero(state: RedisState) -> None:
    await state.load_schedule(["a", "b"], first_due=FROZEN, rounds=2)
    for expected_round in (0, 1):
        claim = await state.claim("w", max_n=10, lease=10)
        assert [(v.vehicle_id, v.polls_done) for v in claim.vehicles] == [
            ("a", expected_round),
            ("b", expected_round),
        ]
        assert await state.remaining() == 2
        done = await state.reschedule_many("w", {v.vehicle_id: FROZEN for v in claim.vehicles})
        assert done == {"a": expected_round + 1, "b": expected_round + 1}
    assert await state.remaining() == 0
    assert (await state.claim("w", max_n=10, lease=10)).vehicles == ()
    assert [await state.rounds_done(v) for v in ("a", "b", "never")] == [2, 2, 0]


async def test_release_and_renew(state: RedisState) -> None:
    await state.load_schedule(["a", "b", "c"], first_due=FROZEN)
    await state.claim("w1", max_n=3, lease=10)
    assert await state.release("w2") == 0
    assert await state.release("w1", ["a"]) == 1
    assert [v.vehicle_id for v in (await state.claim("w2", max_n=5, lease=10)).vehicles] == ["a"]
    freeze(state, FROZEN + 9)
    assert await state.renew("w1", ["b", "c", "a"], lease=10) == 2  # a is w2's now
    freeze(state, FROZEN + 15)
    claim = await state.claim("w3", max_n=5, lease=10)
    assert [v.vehicle_id for v in claim.vehicles] == ["a"]  # w2's expired; b, c renewed
    assert await state.release("w1") == 2  # all of w1's, at their old due time
    claim = await state.claim("w3", max_n=5, lease=10)
    assert [(v.vehicle_id, v.due) for v in claim.vehicles] == [("b", FROZEN), ("c", FROZEN)]
