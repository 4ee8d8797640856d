"""SQLiteState under concurrent writers, and after a kill -9 in the middle of a write."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import pytest
from state_support import pair, record, start_writer, store_threads

from smartcar_async import SQLiteState, StoredTokens, VehicleRecord, token_lineage

LINEAGE = token_lineage("origin")

# ------------------------------------------------------- many tasks, one store


async def test_concurrent_rotations_of_one_lineage_have_one_winner(store: SQLiteState) -> None:
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    spent = pair(0).refresh_token
    outcomes = await asyncio.gather(
        *(store.save_tokens(LINEAGE, pair(f"w{n}"), replacing=spent) for n in range(50))
    )
    assert outcomes.count(True) == 1
    winner = outcomes.index(True)
    assert await store.load_tokens(LINEAGE) == pair(f"w{winner}")


async def test_concurrent_first_saves_have_one_winner(store: SQLiteState) -> None:
    outcomes = await asyncio.gather(
        *(store.save_tokens(LINEAGE, pair(n), replacing=None) for n in range(30))
    )
    assert outcomes.count(True) == 1
    assert await store.load_tokens(LINEAGE) == pair(outcomes.index(True))


async def rotate(store: SQLiteState, times: int) -> int:
    """Read, rotate, compare-and-swap; start over when another writer won. Returns the misses."""
    misses = 0
    done = 0
    while done < times:
        current = await store.load_tokens(LINEAGE)
        assert current is not None
        generation = int(current.refresh_token.rsplit("-", 1)[1])
        await asyncio.sleep(0)  # let the other writers interleave
        if await store.save_tokens(LINEAGE, pair(generation + 1), replacing=current.refresh_token):
            done += 1
        else:
            misses += 1
    return misses


async def test_no_rotation_is_lost_among_concurrent_writers(store: SQLiteState) -> None:
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    misses = await asyncio.gather(*(rotate(store, 5) for _ in range(12)))
    # Every successful swap moved the lineage on by exactly one generation.
    assert await store.load_tokens(LINEAGE) == pair(60)
    assert sum(misses) > 0  # they did collide, and the swaps sorted it out


async def test_concurrent_vehicle_saves_and_loads(store: SQLiteState) -> None:
    async def writer(n: int) -> None:
        for step in range(5):
            await store.save_vehicles({f"w{n}-v{k}": record(step) for k in range(10)})

    async def reader() -> None:
        for _ in range(10):
            seen = await store.load_vehicles([f"w{n}-v{k}" for n in range(20) for k in range(10)])
            # A bulk save is all or nothing: one writer's ten records move together.
            for n in range(20):
                steps = {seen[f"w{n}-v{k}"].failures for k in range(10) if f"w{n}-v{k}" in seen}
                assert len(steps) <= 1

    await asyncio.gather(*(writer(n) for n in range(20)), *(reader() for _ in range(3)))
    final = await store.load_vehicles([f"w{n}-v{k}" for n in range(20) for k in range(10)])
    assert len(final) == 200
    assert {r.failures for r in final.values()} == {4}


async def test_two_stores_on_one_file_share_the_compare_and_swap(state_file: Path) -> None:
    """Two connections on two threads (as two processes would be): still one winner."""
    async with SQLiteState(state_file) as one, SQLiteState(state_file) as two:
        assert await one.save_tokens(LINEAGE, pair(0), replacing=None)
        spent = pair(0).refresh_token
        outcomes = await asyncio.gather(
            *(
                (one if n % 2 else two).save_tokens(LINEAGE, pair(f"s{n}"), replacing=spent)
                for n in range(20)
            )
        )
        assert outcomes.count(True) == 1
        winner = pair(f"s{outcomes.index(True)}")
        assert await one.load_tokens(LINEAGE) == winner
        assert await two.load_tokens(LINEAGE) == winner
        assert len(store_threads()) == 2
    assert store_threads() == []


# ------------------------------------------------------------ kill -9 mid-write

VEHICLES = 300  # a few pages per bulk save, so a kill often lands inside one


def last_generation(output: str) -> int:
    lines = output.split()
    return int(lines[-1]) if lines else 0


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_kill_mid_write_leaves_the_previous_complete_value(
    state_file: Path, seed: int
) -> None:
    rng = random.Random(seed)
    writer = start_writer(state_file, vehicles=VEHICLES, cap=10_000)
    assert writer.stdout is not None
    try:
        # Past start-up (a few confirmed generations), then a random moment.
        deadline = time.monotonic() + 20
        confirmed = 0
        while confirmed < 3 and time.monotonic() < deadline:
            line = await asyncio.to_thread(writer.stdout.readline)
            if not line:
                break
            confirmed = int(line)
        assert confirmed >= 3, writer.stderr.read() if writer.stderr else ""
        await asyncio.sleep(rng.uniform(0.0, 0.05))
        writer.send_signal(signal.SIGKILL)
        rest, _ = await asyncio.to_thread(writer.communicate, timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL
    confirmed = max(confirmed, last_generation(rest))

    async with SQLiteState(state_file) as store:
        tokens = await store.load_tokens(LINEAGE)
        records = await store.load_vehicles([f"v{i}" for i in range(VEHICLES)])
    assert tokens is not None
    generation = int(tokens.refresh_token.rsplit("-", 1)[1])
    # Nothing confirmed is lost; at most the write in flight went through, whole.
    assert generation in (confirmed, confirmed + 1)
    assert tokens == StoredTokens(
        access_token=f"access-{generation}",
        refresh_token=f"refresh-{generation}",
        access_expires_at=tokens.access_expires_at,
    )
    # The vehicles are saved after the tokens of their generation, all in one transaction.
    assert len(records) == VEHICLES
    assert len(set(records.values())) == 1
    (saved,) = set(records.values())
    assert saved == VehicleRecord(failures=saved.failures, next_due=float(saved.failures))
    assert saved.failures in (generation - 1, generation)
    assert saved.failures >= confirmed
