"""Opening SQLiteState's file: created owner-only, recognised as ours, schema created or upgraded.

Kept apart from the store's calls so that everything that can refuse a file
(another application's database, a newer schema, corrupt content, a loose
mode) is decided here, once, before the first call runs; the store only
reads and writes tables this module vouched for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from ._exceptions import StateError

logger = logging.getLogger("smartcar_async")

#: "SCAS" in the database header: tells our files from other SQLite databases.
APPLICATION_ID: Final = 0x53434153
#: 2 added the billed-request and quota tables; a version 1 file gains them when opened.
SCHEMA_VERSION: Final = 2
_BUSY_TIMEOUT: Final = 5.0
_SIDECARS: Final = ("-wal", "-shm", "-journal")
_OWNER_ONLY: Final = 0o600

_SCHEMA: Final = (
    """CREATE TABLE tokens (
        lineage TEXT PRIMARY KEY NOT NULL,
        access_token TEXT NOT NULL,
        refresh_token TEXT NOT NULL,
        access_expires_at TEXT NOT NULL,
        refresh_expires_at TEXT,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE vehicles (
        vehicle_id TEXT PRIMARY KEY NOT NULL,
        next_due REAL,
        blocked_until REAL,
        failures INTEGER NOT NULL,
        parked TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID""",
)
#: The tables of version 2 (created in new files, and added to version 1 files).
_SCHEMA_2: Final = (
    """CREATE TABLE billed (
        vehicle_id TEXT NOT NULL,
        month TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (vehicle_id, month)
    ) WITHOUT ROWID""",
    """CREATE TABLE quotas (
        vehicle_id TEXT PRIMARY KEY NOT NULL,
        make TEXT,
        polls TEXT NOT NULL
    ) WITHOUT ROWID""",
)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_file(path: Path) -> sqlite3.Connection:
    _create_or_check(path)
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = FULL")
        _initialize(conn, path)
        # Only now that the file is known to be ours: never chmod a file given
        # by mistake (a vehicles CSV, another application's database).
        _restrict_all(path)
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            logger.warning(
                "state file %s: WAL is not available here (journal mode %s); "
                "writes stay durable but readers wait for writers",
                path,
                mode,
            )
        conn.execute("PRAGMA synchronous = FULL")  # a journal mode change may reset it
        _check_integrity(conn, path)
        _restrict_all(path)  # the -wal and -shm files WAL mode just created
    except BaseException:
        conn.close()
        raise
    return conn


def _initialize(conn: sqlite3.Connection, path: Path) -> None:
    with transaction(conn):
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if app_id == 0 and version == 0 and not tables:
            for statement in (*_SCHEMA, *_SCHEMA_2):
                conn.execute(statement)
            # Header fields, written in the same transaction as the tables.
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif app_id != APPLICATION_ID:
            raise StateError(
                f"state file {path}: a SQLite database, but not a smartcar_async state file "
                "(another application's?); give a path of its own"
            )
        elif version > SCHEMA_VERSION:
            raise StateError(
                f"state file {path}: written by a newer smartcar_async (schema version "
                f"{version}; this version reads up to {SCHEMA_VERSION}); upgrade smartcar_async"
            )
        elif (
            version == 1 and {"tokens", "vehicles"} <= tables and not {"billed", "quotas"} & tables
        ):
            # An upgrade in place, in this transaction: nothing else changes.
            for statement in _SCHEMA_2:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION or not {"tokens", "vehicles", "billed", "quotas"} <= tables:
            raise StateError(
                f"state file {path}: the file is corrupt (schema version {version}, "
                f"tables {sorted(tables)})"
            )


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    # Reads every page once (milliseconds for thousands of vehicles): a damaged
    # file fails here, at open, not in the middle of a run.
    problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise StateError(f"state file {path}: the file is corrupt ({'; '.join(problems[:3])})")


def _create_or_check(path: Path) -> None:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, _OWNER_ONLY)
    except FileExistsError:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise StateError(f"state file {path}: not a regular file") from None
        return
    try:
        # The umask can take bits away from 0600 (even the owner's); set it exactly.
        os.chmod(fd if os.chmod in os.supports_fd else path, _OWNER_ONLY)
    finally:
        os.close(fd)
    _sync_directory(path.parent)  # the new file's name survives a power cut too


def _restrict_all(path: Path) -> None:
    loosened = [
        (name, old)
        for name in (str(path), *(f"{path}{suffix}" for suffix in _SIDECARS))
        if (old := _restrict(Path(name))) is not None
    ]
    if loosened:
        name, old = loosened[0]
        logger.warning(
            "state file %s was open to other users (mode %03o); restricted to its owner%s. "
            "The tokens in it may have been read.",
            name,
            old,
            " (with its -wal/-shm files)" if len(loosened) > 1 else "",
        )


def _restrict(path: Path) -> int | None:
    """Take group and other bits away; the mode before if it had any, else None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode) or not mode & 0o077:
        return None
    os.chmod(path, mode & 0o700)
    return mode


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not on this platform or filesystem: SQLite's own syncs still hold
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
