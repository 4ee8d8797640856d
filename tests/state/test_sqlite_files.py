"""What SQLiteState makes of the file it is given: permissions, wrong files, damage.

Every failure is a StateError naming the file (never a raw sqlite3 error, never a
token), raised at open, and leaves no thread behind.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest
from state_support import SECRET, mode, pair, read, record, store_threads, write

from smartcar_async import SQLiteState, StateError, token_lineage

LINEAGE = token_lineage("origin")

# ------------------------------------------------------------- permissions


@pytest.mark.usefixtures("restore_umask")
@pytest.mark.parametrize("umask", [0o022, 0o000, 0o277])
async def test_new_files_are_owner_only_whatever_the_umask(state_file: Path, umask: int) -> None:
    os.umask(umask)
    async with SQLiteState(state_file) as store:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
        await store.save_vehicles({"v": record(1)})
        files = [state_file, Path(f"{state_file}-wal"), Path(f"{state_file}-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    assert mode(state_file) == 0o600
    async with SQLiteState(state_file) as store:  # and it opens again
        assert await store.load_tokens(LINEAGE) == pair(0)


async def test_an_existing_file_open_to_others_is_restricted_with_a_warning(
    state_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with SQLiteState(state_file) as store:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    os.chmod(state_file, 0o644)  # say, restored from a backup
    caplog.set_level(logging.WARNING, logger="smartcar_async")
    async with SQLiteState(state_file) as store:
        assert mode(state_file) == 0o600
        assert await store.load_tokens(LINEAGE) == pair(0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(state_file) in warnings[0]
    assert "644" in warnings[0]
    assert SECRET not in warnings[0]


async def test_an_empty_file_with_loose_permissions_becomes_a_store(state_file: Path) -> None:
    write(state_file, b"")
    os.chmod(state_file, 0o666)
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({"v": record(2)})
    assert mode(state_file) == 0o600
    async with SQLiteState(state_file) as store:
        assert await store.load_vehicles(["v"]) == {"v": record(2)}


# ------------------------------------------------------------ wrong files


async def assert_refused(path: Path, *fragments: str) -> StateError:
    with pytest.raises(StateError) as caught:
        async with SQLiteState(path):
            pass  # pragma: no cover
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    assert SECRET not in message
    assert SECRET not in repr(caught.value)
    assert store_threads() == []
    return caught.value


async def test_a_file_that_is_not_sqlite(state_file: Path) -> None:
    write(state_file, os.urandom(8192))
    await assert_refused(state_file, "not a SQLite database")
    write(state_file, "vehicle_id,access_token\nv1,abc\n")  # --state fleet.csv by mistake
    os.chmod(state_file, 0o644)
    await assert_refused(state_file, "not a SQLite database")
    assert mode(state_file) == 0o644  # a file that is not ours is not chmod'ed either
    assert read(state_file) == b"vehicle_id,access_token\nv1,abc\n"


async def test_another_applications_database_is_left_untouched(state_file: Path) -> None:
    with sqlite3.connect(state_file) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    os.chmod(state_file, 0o644)
    before = read(state_file)
    await assert_refused(state_file, "not a smartcar_async state file")
    assert read(state_file) == before  # not switched to WAL, nothing written
    assert mode(state_file) == 0o644


async def test_a_newer_schema_is_refused_with_advice(state_file: Path) -> None:
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({"v": record(1)})
    with sqlite3.connect(state_file) as conn:
        conn.execute("PRAGMA user_version = 7")
    conn.close()
    await assert_refused(state_file, "newer smartcar_async", "schema version 7", "upgrade")


async def test_missing_tables_are_corruption(state_file: Path) -> None:
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({"v": record(1)})
    with sqlite3.connect(state_file) as conn:
        conn.execute("DROP TABLE vehicles")
    conn.close()
    await assert_refused(state_file, "corrupt")


async def test_damaged_pages_are_found_at_open(state_file: Path) -> None:
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({f"v{n}": record(n, parked=True) for n in range(2000)})
    data = bytearray(read(state_file))
    page = 4096
    assert len(data) > 8 * page
    for start in range(2 * page, len(data), 3 * page):  # every third page from the second on
        data[start + 8 : start + 400] = os.urandom(392)
    write(state_file, bytes(data))
    await assert_refused(state_file)


async def test_a_directory_or_a_missing_folder(tmp_path: Path) -> None:
    await assert_refused(tmp_path, "not a regular file")
    await assert_refused(tmp_path / "no" / "such" / "state.db", "cannot open")


# ------------------------------------------------------------ damaged rows


def tamper(path: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(sql, params)
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("access_expires_at", SECRET),  # a token where a date belongs: not quoted back
        ("access_expires_at", "2030-01-01T00:00:00"),  # no zone
        ("refresh_expires_at", 12),
        ("access_token", ""),
        ("refresh_token", None),
    ],
)
async def test_a_malformed_token_row(state_file: Path, column: str, value: object) -> None:
    async with SQLiteState(state_file) as store:
        assert await store.save_tokens(LINEAGE, pair(0), replacing=None)
    if value is None:  # NOT NULL in the schema: rebuild the row without the constraint's help
        tamper(state_file, "UPDATE tokens SET refresh_token = CAST(x'00' AS BLOB)")
    else:
        tamper(state_file, f"UPDATE tokens SET {column} = ?", value)
    async with SQLiteState(state_file) as store:
        with pytest.raises(StateError, match="token pair is malformed") as caught:
            await store.load_tokens(LINEAGE)
        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None
        await store.save_vehicles({"v": record(1)})  # the store still works


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("parked", "not json"),
        ("parked", "[1, 2]"),
        ("parked", '{"odometer": {"reason": "PERMISSION", "until": NaN}}'),
        ("parked", '{"odometer": {"reason": "PERMISSION"}}'),
        ("parked", '{"odometer": "PERMISSION"}'),
        pytest.param("parked", "[" * 100_000 + "]" * 100_000, id="parked-deeply-nested"),
        ("failures", -3),
        ("failures", "many"),
        ("next_due", "soon"),
        ("blocked_until", 1e400),
    ],
)
async def test_a_malformed_vehicle_row(state_file: Path, column: str, value: object) -> None:
    async with SQLiteState(state_file) as store:
        await store.save_vehicles({"v1": record(1), "v2": record(2)})
    tamper(state_file, f"UPDATE vehicles SET {column} = ? WHERE vehicle_id = 'v2'", value)
    async with SQLiteState(state_file) as store:
        with pytest.raises(StateError, match="vehicle 'v2' is malformed"):
            await store.load_vehicles(["v1", "v2"])
        assert await store.load_vehicles(["v1"]) == {"v1": record(1)}
