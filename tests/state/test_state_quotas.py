"""Billed-request counts and quotas in a real SQLite file; a version 1 file is upgraded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from smartcar_async import SQLiteState, VehicleQuota
from smartcar_async._sqlite_state import APPLICATION_ID


async def test_billed_requests_add_up_per_vehicle_and_month(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteState(path) as state:
        assert await state.billed("v1", "2025-03") == 0
        totals = await asyncio.gather(*(state.add_billed("v1", "2025-03", 2) for _ in range(10)))
        assert sorted(totals) == list(range(2, 21, 2))
        assert await state.add_billed("v1", "2025-04", 1) == 1
        assert await state.add_billed("v2", "2025-03", 0) == 0
        await state.save_quotas({"v1": VehicleQuota(make="hyundai", polls=(3.0, 1.0))})
    async with SQLiteState(path) as state:  # a restart
        assert await state.billed("v1", "2025-03") == 20
        assert await state.billed("v1", "2025-04") == 1
        assert await state.load_quotas(["v1", "v2"]) == {
            "v1": VehicleQuota(make="HYUNDAI", polls=(1.0, 3.0))
        }


async def test_bad_arguments_fail_before_any_io(tmp_path: Path) -> None:
    async with SQLiteState(tmp_path / "s.db") as state:
        with pytest.raises(ValueError, match="YYYY-MM"):
            await state.add_billed("v1", "March", 1)
        with pytest.raises(ValueError, match=r"01\.\.12"):
            await state.billed("v1", "2025-13")
        with pytest.raises(ValueError, match="n must be >= 0"):
            await state.add_billed("v1", "2025-03", -1)
        with pytest.raises(TypeError, match="VehicleQuota"):
            await state.save_quotas({"v1": "HYUNDAI"})  # type: ignore[dict-item]
        with pytest.raises(ValueError, match="vehicle_id must not be empty"):
            await state.billed("", "2025-03")


async def test_a_version_1_file_gains_the_new_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""
        CREATE TABLE tokens (lineage TEXT PRIMARY KEY NOT NULL, access_token TEXT NOT NULL,
            refresh_token TEXT NOT NULL, access_expires_at TEXT NOT NULL,
            refresh_expires_at TEXT, updated_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE vehicles (vehicle_id TEXT PRIMARY KEY NOT NULL, next_due REAL,
            blocked_until REAL, failures INTEGER NOT NULL, parked TEXT NOT NULL,
            updated_at REAL NOT NULL) WITHOUT ROWID;
        INSERT INTO vehicles VALUES ('v1', NULL, NULL, 2, '{{}}', 0);
        PRAGMA application_id = {APPLICATION_ID};
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    path.chmod(0o600)
    async with SQLiteState(path) as state:
        assert (await state.load_vehicles(["v1"]))["v1"].failures == 2
        assert await state.add_billed("v1", "2025-03", 3) == 3
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    conn.close()
