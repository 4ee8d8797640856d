"""Monthly budgets, per-make limits and webhook-fresh reads, against the emulator's billing.

A month is lived in seconds with a compressed wall clock: each poll round is one
simulated hour (or quarter hour), and the poller's ``clock`` maps the loop's time
onto it. The emulator counts what Smartcar would bill (``billed_requests_by_vehicle``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from poller_support import by_vehicle, make_client, requested, vehicles

from smartcar_async import (
    DEFAULT_MAKE_LIMITS,
    FleetPoller,
    MakeLimit,
    PollResult,
    SQLiteState,
    Vehicle,
    parse_webhook,
)
from smartcar_async._quota import month_bounds, month_of
from smartcar_async.testing import Emulator

pytestmark = pytest.mark.timeout(120)

#: Real seconds per round; each round is `step` simulated seconds.
TICK = 0.02


@pytest.fixture
async def quick() -> AsyncIterator[Emulator]:
    async with Emulator(vehicles=30, seed=0, latency=0.0, max_recorded=100_000) as emulator:
        yield emulator


def compressed(start: float, step: float) -> Callable[[], float]:
    """A wall clock that advances ``step`` simulated seconds per TICK of the loop's clock."""
    t0 = anyio.current_time()
    return lambda: start + (anyio.current_time() - t0) * (step / TICK)


async def run(poller: FleetPoller) -> list[PollResult]:
    results: list[PollResult] = []
    with anyio.fail_after(100):
        async with poller:
            async for result in poller.results():
                results.append(result)
    return results


MARCH = dt.datetime(2025, 3, 1, tzinfo=dt.UTC).timestamp()


async def test_a_monthly_budget_holds_over_a_whole_month(
    quick: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = quick.fleet.ids[:2]
    budget = 60
    caplog.set_level(logging.WARNING, logger="smartcar_async")
    async with make_client(quick.url) as client, SQLiteState(tmp_path / "s.db") as state:
        poller = FleetPoller(
            reads=("odometer", "location"),
            interval=TICK,
            jitter=0.0,
            # March but its last day (the clock runs on while a poll is saved: margin).
            rounds=30 * 4,
            vehicles=vehicles(client, ids),
            state=state,
            monthly_budget=budget,
            clock=compressed(MARCH, 6 * 3600.0),
        )
        results = await run(poller)
        billed = quick.billed_requests_by_vehicle
        for vid in ids:
            # Never past the budget, and most of it used: the polls were spread, not stopped.
            assert 40 <= billed[vid] <= budget
            assert await state.billed(vid, "2025-03") == billed[vid]
            mine = by_vehicle(results)[vid]
            assert {r.skipped for r in mine} <= {None, "budget", "late"}
            assert sum(r.skipped == "budget" for r in mine) > 60
            # Spread over the month: polls in its first and last week alike.
            polled = [r.round for r in mine if r.skipped is None]
            assert min(polled) <= 7 * 4
            assert max(polled) >= 24 * 4
        assert client.stats.billed_requests == sum(billed[vid] for vid in ids)
    warnings = [r for r in caplog.records if getattr(r, "event", None) == "budget_warning"]
    assert sorted(str(getattr(r, "vehicle_id", "")) for r in warnings) == sorted(ids)


async def test_a_spent_budget_stays_spent_across_a_restart(quick: Emulator, tmp_path: Path) -> None:
    ids = quick.fleet.ids[:2]
    _, end = month_bounds(MARCH)
    path = tmp_path / "s.db"

    async def one_run(start: float, rounds: int) -> list[PollResult]:
        async with make_client(quick.url) as client, SQLiteState(path) as state:
            return await run(
                FleetPoller(
                    reads=("odometer", "location"),
                    interval=TICK,
                    jitter=0.0,
                    rounds=rounds,
                    vehicles=vehicles(client, ids),
                    state=state,
                    monthly_budget=6,
                    clock=compressed(start, 3600.0),
                )
            )

    # Hours of margin before the month ends: the compressed clock runs on while
    # a poll's count is saved, and a poll decided in April has April's budget.
    await one_run(end - 30 * 3600, 20)
    first = quick.billed_requests_by_vehicle
    assert all(first[vid] >= 4 for vid in ids), first
    # A new process, a new client: only the store remembers the month's spending
    # (without it, this run would spend 6 more).
    again = await one_run(end - 9 * 3600, 8)
    total = quick.billed_requests_by_vehicle
    assert all(total[vid] <= 6 for vid in ids), (first, total)
    assert "budget" in {r.skipped for r in again}


async def test_a_new_month_brings_a_new_budget(quick: Emulator) -> None:
    ids = quick.fleet.ids[:1]
    _, end = month_bounds(MARCH)
    async with make_client(quick.url) as client:
        results = await run(
            FleetPoller(
                reads=("odometer",),
                interval=TICK,
                jitter=0.0,
                rounds=8,
                vehicles=vehicles(client, ids),
                monthly_budget=2,
                clock=compressed(end - 4 * 3600, 3600.0),
            )
        )
    polled = [r.round for r in results if r.skipped is None]
    # Two in March's last hours; April's first poll goes at once, the next waits
    # for April's fair share (two polls in 30 days: one every 15 days).
    assert polled[:2] == [1, 3] or len([n for n in polled if n <= 4]) == 2
    assert [n for n in polled if n > 4] == [5]
    assert quick.billed_requests_by_vehicle[ids[0]] == 3
    assert month_of(end) == "2025-04"


async def test_make_limits_follow_smartcars_brand_quirks(quick: Emulator, tmp_path: Path) -> None:
    hyundai = quick.fleet.with_make("HYUNDAI")[0].id
    chevrolet = quick.fleet.with_make("CHEVROLET")[0].id
    tesla = quick.fleet.with_make("TESLA")[0].id
    ids = [hyundai, chevrolet, tesla]
    rounds = 2 * 96  # two days, a round every quarter hour
    async with make_client(quick.url) as client, SQLiteState(tmp_path / "s.db") as state:
        results = await run(
            FleetPoller(
                reads=("odometer",),
                interval=TICK,
                jitter=0.0,
                rounds=rounds,
                vehicles=vehicles(client, ids),
                state=state,
                make_limits=True,
                clock=compressed(MARCH, 900.0),
            )
        )
        stored = await state.load_quotas(ids)
    grouped = by_vehicle(results)
    polled = {vid: [r.round for r in grouped[vid] if r.skipped is None] for vid in ids}
    # Hyundai: at most 20 polls in any 24 hours (96 rounds).
    for first in range(1, rounds - 94):
        assert sum(first <= n < first + 95 for n in polled[hyundai]) <= 20
    assert 30 <= len(polled[hyundai]) <= 40
    # GM: no more often than every 30 minutes (2 rounds).
    assert all(b - a >= 2 for a, b in zip(polled[chevrolet], polled[chevrolet][1:], strict=False))
    assert len(polled[chevrolet]) >= rounds // 4
    # No limit for Tesla: nothing skipped for the make.
    assert all(r.skipped != "make_limit" for r in grouped[tesla])
    # The make was asked once per vehicle, and kept.
    assert [requested(quick, vid, "/") for vid in ids] == [1, 1, 1]
    assert {vid: stored[vid].make for vid in ids} == {
        hyundai: "HYUNDAI",
        chevrolet: "CHEVROLET",
        tesla: "TESLA",
    }
    assert len(stored[hyundai].polls) == 20

    # A restart knows the makes: nothing more is asked.
    async with make_client(quick.url) as client, SQLiteState(tmp_path / "s.db") as state:
        await run(
            FleetPoller(
                reads=("odometer",),
                interval=TICK,
                rounds=2,
                vehicles=vehicles(client, ids),
                state=state,
                make_limits=True,
                clock=compressed(MARCH + 3 * 86_400, 900.0),
            )
        )
    assert all(requested(quick, vid, "/") == 1 for vid in ids)


async def test_make_limits_can_be_overridden(quick: Emulator) -> None:
    tesla = quick.fleet.with_make("TESLA")[0].id
    hyundai = quick.fleet.with_make("HYUNDAI")[0].id
    async with make_client(quick.url) as client:
        results = await run(
            FleetPoller(
                reads=("odometer",),
                interval=TICK,
                jitter=0.0,
                rounds=8,
                vehicles=vehicles(client, [tesla, hyundai]),
                make_limits={"tesla": MakeLimit(max_polls=2, window=86_400.0), "HYUNDAI": None},
                clock=compressed(MARCH, 900.0),
            )
        )
    grouped = by_vehicle(results)
    assert sum(r.skipped is None for r in grouped[tesla]) == 2
    assert all(r.skipped in (None, "late") for r in grouped[hyundai])
    assert "KIA" in DEFAULT_MAKE_LIMITS


class Webhooked:
    """A freshness oracle: odometer readings of one vehicle arrived by webhook."""

    def __init__(self, vehicle_id: str) -> None:
        self.vehicle_id = vehicle_id
        self.asked: list[tuple[str, str, float | None]] = []

    def is_fresh(self, vehicle: Vehicle, path: str, *, max_age: float | None = None) -> bool:
        self.asked.append((vehicle.vehicle_id, path, max_age))
        return vehicle.vehicle_id == self.vehicle_id and path == "/odometer"


async def test_reads_a_webhook_answered_are_not_requested(quick: Emulator) -> None:
    fed, other = quick.fleet.ids[:2]
    oracle = Webhooked(fed)
    async with make_client(quick.url) as client:
        poller = FleetPoller(
            reads=("odometer", "location"),
            interval=0.05,
            rounds=2,
            vehicles=vehicles(client, [fed, other]),
            freshness=oracle,
        )
        results = await run(poller)
        assert poller.reads_fresh == 2
    grouped = by_vehicle(results)
    assert all(r.fresh == ("odometer",) and set(r.values) == {"location"} for r in grouped[fed])
    assert all(r.fresh == () and set(r.values) == {"odometer", "location"} for r in grouped[other])
    assert requested(quick, fed, "/odometer") == 0
    assert requested(quick, other, "/odometer") == 2
    assert ("odometer" in grouped[fed][0].to_dict()["fresh"]) is True
    assert (fed, "/odometer", 0.05) in oracle.asked

    # Every read fresh: the round is skipped, nothing sent.
    async with make_client(quick.url) as client:
        results = await run(
            FleetPoller(
                reads=("odometer",),
                interval=0.05,
                rounds=1,
                vehicles=vehicles(client, [fed]),
                freshness=oracle,
            )
        )
    assert [r.skipped for r in results] == ["fresh"]
    assert requested(quick, fed, "/odometer") == 0


async def test_spending_arguments_are_checked(quick: Emulator) -> None:
    with pytest.raises(ValueError, match="monthly_budget must be >= 1"):
        FleetPoller(reads=("odometer",), interval=1.0, monthly_budget=0)
    with pytest.raises(TypeError, match="monthly_budget must be an int"):
        FleetPoller(reads=("odometer",), interval=1.0, monthly_budget=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="make_limits"):
        FleetPoller(reads=("odometer",), interval=1.0, make_limits="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="MakeLimit or None"):
        FleetPoller(reads=("odometer",), interval=1.0, make_limits={"KIA": 20})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="is_fresh"):
        FleetPoller(reads=("odometer",), interval=1.0, freshness=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_polls and window go together"):
        MakeLimit(max_polls=3)
    with pytest.raises(ValueError, match="min_interval"):
        MakeLimit()
    with pytest.raises(ValueError, match="> 0"):
        MakeLimit(min_interval=0.0)


async def test_the_client_reading_cache_is_the_poller_freshness_oracle(quick: Emulator) -> None:
    ev, plain = quick.fleet[0], quick.fleet[1]
    fed, other = ev.id, plain.id
    delivery = quick._v4_event("w", [ev], time.time(), "VEHICLE_STATE")
    async with make_client(quick.url) as client:
        assert client.ingest_webhook(parse_webhook(delivery)) > 0
        poller = FleetPoller(
            reads=("odometer", "location"),
            interval=30,
            rounds=1,
            vehicles=vehicles(client, [fed, other]),
            freshness=client.readings,
        )
        results = await run(poller)
    grouped = by_vehicle(results)
    assert "odometer" in grouped[fed][0].fresh
    assert grouped[other][0].fresh == ()
    assert requested(quick, fed, "/odometer") == 0
    assert requested(quick, other, "/odometer") == 1


async def test_handles_with_max_age_are_billed_against_the_budget_too(
    quick: Emulator, tmp_path: Path
) -> None:
    ids = quick.fleet.ids[:2]
    async with make_client(quick.url) as client, SQLiteState(tmp_path / "s.db") as state:
        await run(
            FleetPoller(
                reads=("odometer", "location"),
                interval=TICK,
                jitter=0.0,
                rounds=2,
                vehicles=vehicles(client, ids, max_age=0.001),
                state=state,
                monthly_budget=100,
            )
        )
        month = month_of(time.time())
        stored = {vid: await state.billed(vid, month) for vid in ids}
    assert stored == {vid: quick.billed_requests_by_vehicle[vid] for vid in ids}
    assert all(n > 0 for n in stored.values())
