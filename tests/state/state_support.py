"""Helpers for the state store's tests: distinctive secrets, sample facts, threads, a writer."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

from smartcar_async import ParkedRead, StoredTokens, VehicleRecord

# Distinctive, so that a leak into a repr, a message or a log is easy to grep for.
SECRET = "tok-SECRET-state-7e57c0de"

EXPIRY = dt.datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
NOW = 1_800_000_000.0  # epoch seconds, well clear of any real clock

THREAD_NAME = "smartcar_async.SQLiteState"


def pair(n: int | str, *, refresh_expiry: dt.datetime | None = None) -> StoredTokens:
    """The n-th pair of a lineage: tokens that say which generation they are."""
    return StoredTokens(
        access_token=f"{SECRET}-access-{n}",
        refresh_token=f"{SECRET}-refresh-{n}",
        access_expires_at=EXPIRY,
        refresh_expires_at=refresh_expiry,
    )


def record(n: int = 0, *, parked: bool = False) -> VehicleRecord:
    result = VehicleRecord(next_due=NOW + n, blocked_until=NOW + 2 * n, failures=n)
    if parked:
        result = result.with_parked(
            "odometer", ParkedRead(reason="PERMISSION", until=NOW + 86_400)
        ).with_parked(
            "location", ParkedRead(reason="AUTHENTICATION", until=NOW + 60, fingerprint="f" * 64)
        )
    return result


def store_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def mode(path: Path | str) -> int:
    return os.stat(path).st_mode & 0o777


# Plain file access for the async tests (kept out of them: ruff's ASYNC240).


def write(path: Path, data: bytes | str) -> None:
    Path(path).write_bytes(data.encode() if isinstance(data, str) else data)


def read(path: Path) -> bytes:
    return Path(path).read_bytes()


def exists(path: Path | str) -> bool:
    return Path(path).exists()


# ------------------------------------------------------ the crash-test writer

# Rotates one lineage and rewrites every vehicle's record, generation after
# generation, printing each generation once both saves have returned. Killed
# with SIGKILL at a random moment by the test; the cap only bounds a run that
# is never killed.
WRITER = """
import asyncio, datetime as dt, sys
from smartcar_async import SQLiteState, StoredTokens, VehicleRecord, token_lineage

async def main(path, vehicles, cap):
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    async with SQLiteState(path) as store:
        lineage = token_lineage("origin")
        spent = None
        for n in range(1, cap + 1):
            tokens = StoredTokens(
                access_token=f"access-{n}", refresh_token=f"refresh-{n}", access_expires_at=expiry
            )
            assert await store.save_tokens(lineage, tokens, replacing=spent)
            spent = tokens.refresh_token
            await store.save_vehicles(
                {f"v{i}": VehicleRecord(failures=n, next_due=float(n)) for i in range(vehicles)}
            )
            print(n, flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def start_writer(path: Path, *, vehicles: int, cap: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(vehicles), str(cap)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
