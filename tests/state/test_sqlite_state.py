"""SQLiteState over a real file: round trips, compare-and-swap, restarts, lifecycle, secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from pathlib import Path

import anyio
import pytest
from state_support import EXPIRY, NOW, SECRET, exists, pair, record, store_threads

from smartcar_async import (
    SQLiteState,
    StateError,
    StoredTokens,
    VehicleRecord,
    token_lineage,
)

LINEAGE = token_lineage(f"{SECRET}-refresh-0")

# ------------------------------------------------------------------ tokens


async def test_tokens_round_trip(store: SQLiteState) -> None:
    assert await store.load_tokens(LINEAGE) is None
    first = pair(0, refresh_expiry=EXPIRY + dt.timedelta(days=60))
    assert await store.save_tokens(LINEAGE, first, replacing=None) is True
    loaded = await store.load_tokens(LINEAGE)
    assert loaded == first
    assert loaded is not None
    assert loaded.refresh_expires_at is not None
    assert loaded.access_expires_at.utcoffset() == dt.timedelta(0)
    assert await store.load_tokens(token_lineage("another user")) is None


async def test_token_times_keep_their_instant_in_any_zone(store: SQLiteState) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    tokens = StoredTokens(
        access_token="a-é-🚗",
        refresh_token="r\x00nul",
        access_expires_at=dt.datetime(2030, 6, 1, 12, 0, 0, 1, tzinfo=paris),
    )
    assert await store.save_tokens(LINEAGE, tokens, replacing=None)
    loaded = await store.load_tokens(LINEAGE)
    assert loaded == tokens  # aware datetimes compare as instants; microseconds kept
    assert loaded is not None
    assert loaded.refresh_expires_at is None


async def test_each_rotation_replaces_the_spent_refresh_token(store: SQLiteState) -> None:
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    for n in range(1, 4):
        assert await store.save_tokens(LINEAGE, pair(n), replacing=pair(n - 1).refresh_token)
        assert await store.load_tokens(LINEAGE) == pair(n)


async def test_a_stale_compare_and_swap_changes_nothing(store: SQLiteState) -> None:
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    assert await store.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token)
    # Another writer already spent token 0, or a first save finds a pair stored.
    assert await store.save_tokens(LINEAGE, pair(2), replacing=pair(0).refresh_token) is False
    assert await store.save_tokens(LINEAGE, pair(3), replacing=None) is False
    assert await store.load_tokens(LINEAGE) == pair(1)


async def test_replacing_a_token_needs_a_stored_pair(store: SQLiteState) -> None:
    assert await store.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token) is False
    assert await store.load_tokens(LINEAGE) is None


async def test_lineages_are_independent(store: SQLiteState) -> None:
    other = token_lineage("someone else")
    assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    assert await store.save_tokens(other, pair("x"), replacing=None)
    assert await store.load_tokens(LINEAGE) == pair(0)
    assert await store.load_tokens(other) == pair("x")


# ---------------------------------------------------------------- vehicles


async def test_vehicle_records_round_trip(store: SQLiteState) -> None:
    records = {
        "plain": VehicleRecord(),
        "due": record(1),
        "parked": record(2, parked=True),
        "v-ünïcode": VehicleRecord(failures=7, blocked_until=NOW),
    }
    await store.save_vehicles(records)
    loaded = await store.load_vehicles(["missing", *records, "parked"])
    assert loaded == records
    assert list(loaded) == list(records)  # the order asked for; missing ids absent
    assert loaded["parked"].parked["location"].fingerprint == "f" * 64


async def test_a_record_is_replaced_whole(store: SQLiteState) -> None:
    await store.save_vehicles({"v": record(1, parked=True)})
    await store.save_vehicles({"v": record(2)})
    assert await store.load_vehicles(["v"]) == {"v": record(2)}


async def test_thousands_of_vehicles_in_one_call(store: SQLiteState) -> None:
    records = {f"vehicle-{n:05}": record(n % 50, parked=n % 7 == 0) for n in range(3000)}
    await store.save_vehicles(records)
    wanted = [f"vehicle-{n:05}" for n in range(0, 3200, 2)]  # beyond one query's chunk
    loaded = await store.load_vehicles(wanted)
    assert loaded == {vid: records[vid] for vid in wanted if vid in records}
    assert await store.load_vehicles(iter(["vehicle-00001", "vehicle-00001"])) == {
        "vehicle-00001": records["vehicle-00001"]
    }


async def test_empty_calls(store: SQLiteState) -> None:
    await store.save_vehicles({})
    assert await store.load_vehicles([]) == {}


async def test_bad_arguments_fail_before_any_io(state_file: Path) -> None:
    store = SQLiteState(state_file)
    with pytest.raises(TypeError):
        await store.load_vehicles("vehicle-1")  # a lone str is not a list of ids
    with pytest.raises(TypeError):
        await store.load_vehicles([1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="vehicle id"):
        await store.save_vehicles({"": VehicleRecord()})
    with pytest.raises(TypeError):
        await store.save_vehicles({"v": {"failures": 1}})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        await store.save_vehicles([("v", VehicleRecord())])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lineage"):
        await store.load_tokens("")
    with pytest.raises(TypeError):
        await store.save_tokens(LINEAGE, {"access_token": "a"}, replacing=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await store.save_tokens(LINEAGE, pair(0), replacing=b"r")  # type: ignore[arg-type]
    assert not exists(state_file)
    assert store_threads() == []
    await store.aclose()


@pytest.mark.parametrize("path", ["", ":memory:", "a\x00b"])
def test_a_store_is_a_named_file(path: str) -> None:
    with pytest.raises(ValueError):
        SQLiteState(path)


def test_a_store_path_is_text() -> None:
    with pytest.raises(TypeError):
        SQLiteState(b"state.db")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SQLiteState(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- restarts


async def test_everything_is_there_after_a_restart(state_file: Path) -> None:
    records = {"a": record(1), "b": record(2, parked=True)}
    async with SQLiteState(state_file) as store:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
        assert await store.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token)
        await store.save_vehicles(records)
    async with SQLiteState(state_file) as store:
        assert await store.load_tokens(LINEAGE) == pair(1)
        assert await store.load_vehicles(["a", "b"]) == records
        # The restarted process carries on rotating from the stored pair.
        assert await store.save_tokens(LINEAGE, pair(2), replacing=pair(1).refresh_token)
    assert store_threads() == []


def test_restart_across_event_loops_as_the_cli_runs(state_file: Path) -> None:
    """asyncio.run twice (the CLI's loop), and one store used from two loops in turn."""

    async def write(store: SQLiteState) -> None:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
        await store.save_vehicles({"v": record(4)})

    async def read(store: SQLiteState) -> tuple[StoredTokens | None, dict[str, VehicleRecord]]:
        return await store.load_tokens(LINEAGE), await store.load_vehicles(["v"])

    async def write_and_close() -> None:
        async with SQLiteState(state_file) as store:
            await write(store)

    asyncio.run(write_and_close())
    shared = SQLiteState(state_file)
    assert asyncio.run(read(shared)) == (pair(0), {"v": record(4)})
    assert asyncio.run(read(shared)) == (pair(0), {"v": record(4)})  # another loop, same thread
    asyncio.run(shared.aclose())
    assert store_threads() == []


async def test_a_fresh_file_is_tidied_up_to_one_file_at_close(state_file: Path) -> None:
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({"v": record(1)})
        assert exists(f"{state_file}-wal")  # WAL mode
    assert sorted(p.name for p in state_file.parent.iterdir()) == ["state.db"]


# ---------------------------------------------------------------- lifecycle


async def test_aclose_is_idempotent_and_joins_the_thread(state_file: Path) -> None:
    before = set(threading.enumerate())
    store = SQLiteState(state_file)
    assert "unopened" in repr(store)
    assert await store.load_tokens(LINEAGE) is None  # opens lazily
    assert len(store_threads()) == 1
    assert "open" in repr(store)
    await asyncio.gather(store.aclose(), store.aclose())
    await store.aclose()
    assert store.closed
    assert "closed" in repr(store)
    assert set(threading.enumerate()) <= before
    with pytest.raises(StateError, match="closed"):
        await store.load_vehicles(["v"])
    with pytest.raises(StateError, match="closed"):
        await store.save_tokens(LINEAGE, pair(0), replacing=None)
    with pytest.raises(StateError, match="closed"):
        async with store:
            pass


async def test_a_store_never_used_starts_no_thread(state_file: Path) -> None:
    store = SQLiteState(state_file)
    await store.aclose()
    assert store_threads() == []
    assert not exists(state_file)


async def test_a_store_is_entered_once(store: SQLiteState) -> None:
    with pytest.raises(RuntimeError, match="once"):
        async with store:
            pass
    assert await store.load_tokens(LINEAGE) is None  # still open


async def test_calls_made_before_close_finish(state_file: Path) -> None:
    store = SQLiteState(state_file)
    saves = [store.save_vehicles({f"v{n}": record(n)}) for n in range(20)]
    pending = asyncio.gather(*saves)
    await asyncio.sleep(0)  # every save is queued
    await store.aclose()
    await pending
    async with SQLiteState(state_file) as again:
        assert len(await again.load_vehicles([f"v{n}" for n in range(20)])) == 20


async def test_a_cancelled_caller_leaves_the_store_working(store: SQLiteState) -> None:
    with anyio.move_on_after(0):
        await store.save_vehicles({f"v{n}": record(n) for n in range(500)})
    tasks = [asyncio.ensure_future(store.load_vehicles(["v1"])) for _ in range(10)]
    await asyncio.sleep(0)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.save_vehicles({"after": record(9)})
    assert await store.load_vehicles(["after"]) == {"after": record(9)}


# ----------------------------------------------------------------- secrets


async def test_no_token_in_reprs_or_logs(
    state_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with SQLiteState(state_file) as store:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
        assert await store.save_tokens(LINEAGE, pair(1), replacing=pair(0).refresh_token)
        assert not await store.save_tokens(LINEAGE, pair(2), replacing=pair(0).refresh_token)
        loaded = await store.load_tokens(LINEAGE)
        texts = [repr(store), str(store), repr(loaded), str(loaded)]
    texts.append(repr(store))
    texts.extend(r.getMessage() for r in caplog.records)
    assert all(SECRET not in text for text in texts), texts
    assert str(state_file) in repr(store)
