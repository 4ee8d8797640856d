"""SQLiteState: the embedded :class:`StateStore`, one file on the standard library's sqlite3.

Durability
    WAL journal with ``synchronous=FULL``: when a save returns, the change is
    on disk (fsync'd), so a pair that ``save_tokens`` confirmed survives a
    ``kill -9`` or a power cut. Each call is one transaction: a crash mid-write
    leaves the previous value. Writes take the lock up front (``BEGIN
    IMMEDIATE``), so the token compare-and-swap holds even when two processes
    share the file.

Threads
    One dedicated thread per store owns the connection and runs every call in
    the order it was made; the event loop only awaits a future. Nothing is
    bound to a loop: the thread answers on the loop of each call. A call
    cancelled before the thread reaches it does nothing; one already running
    completes. ``aclose()`` stops and joins the thread.

Permissions
    A new file is created owner-only (0600) whatever the umask; SQLite gives
    the ``-wal`` and ``-shm`` files the database's mode. An existing file (or
    sidecar) that others may read is restricted to its owner's bits, with a
    warning in the log: the tokens in it may have been exposed (a service is
    better restarted with a tightened file than refused after a restore).

Errors
    Anything wrong with the file raises :class:`StateError` naming the path and
    the problem (not a SQLite file, another application's database, a newer
    schema, corrupt content, permissions, a lock held too long, I/O), never a
    raw ``sqlite3`` error and never a token. Bad arguments raise
    ``TypeError``/``ValueError`` before any I/O.

The schema is versioned (``PRAGMA user_version``) and the file marked as ours
(``PRAGMA application_id``); token expiries are stored as ISO 8601 UTC text,
poll times as epoch seconds, parked reads as a JSON object per vehicle.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from ._exceptions import StateError
from ._quota import MAX_COUNT, VehicleQuota, check_count, check_month, check_quotas
from ._sqlite_file import APPLICATION_ID as APPLICATION_ID  # re-exported: tests use it
from ._sqlite_file import open_file, transaction
from ._state import (
    ParkedRead,
    StoredTokens,
    VehicleRecord,
    check_lineage,
    check_records,
    check_vehicle_id,
    check_vehicle_ids,
)

__all__ = ["SQLiteState"]

logger = logging.getLogger("smartcar_async")

_T = TypeVar("_T")

#: Ids per ``IN (...)`` query: well under SQLite's variable limit on old builds (999).
_CHUNK: Final = 500

# (the work, or None to stop; the caller's loop; the caller's future)
_Job = tuple[Callable[[], Any] | None, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class SQLiteState:
    """The embedded :class:`StateStore`: token pairs and per-vehicle poll state in one file.

    ``SQLiteState(path)`` does no I/O; the file is opened (and created, owner-only,
    if missing) by ``async with`` or by the first call, and released by
    ``aclose()``. See the module docs for durability, threads and permissions.
    Use it from one event loop at a time. Added in 0.1.0.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or a path, not {type(path).__name__}")
        text = os.fspath(path)
        if not isinstance(text, str):
            raise TypeError("path must be a str path, not bytes")
        if text in ("", ":memory:"):
            raise ValueError("path must name a file: an in-memory store forgets everything at exit")
        if "\x00" in text:
            raise ValueError("path must not contain a NUL character")
        # Absolute now, so that a later chdir does not move the store.
        self._path = Path(text).absolute()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None  # the worker thread's alone
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._entered = False

    @property
    def path(self) -> Path:
        """The database file (absolute)."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._thread is not None else "unopened"
        return f"<smartcar_async.SQLiteState path={str(self._path)!r} {state}>"

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        if self._closed:
            raise StateError(f"state file {self._path}: this store is closed")
        if self._entered:
            raise RuntimeError("This SQLiteState is already open; enter it only once")
        self._entered = True
        try:
            await self._run("open", _nothing)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Finish the calls already made, close the file and stop the thread; idempotent."""
        if self._closing is None:
            self._closed = True
            loop = asyncio.get_running_loop()
            self._closing = loop.create_future()
            if self._thread is None:
                self._closing.set_result(None)
            else:
                self._jobs.put((None, loop, self._closing))
        if not self._closing.done():
            # A cancelled closer must not cancel the close another closer awaits.
            await asyncio.shield(self._closing)
        if self._thread is not None:
            self._thread.join()  # it has answered and is returning: no real wait

    # ---------------------------------------------------------------- tokens

    async def load_tokens(self, lineage: str) -> StoredTokens | None:
        """The stored pair of ``lineage`` (see :func:`token_lineage`), or None."""
        key = check_lineage(lineage)
        return await self._run("load tokens", functools.partial(self._load_tokens, key))

    async def save_tokens(
        self, lineage: str, tokens: StoredTokens, *, replacing: str | None
    ) -> bool:
        """Store ``tokens`` if the stored refresh token is ``replacing`` (None: nothing stored).

        True once the pair is on disk; False, with the stored pair unchanged, if
        another writer got there first.
        """
        key = check_lineage(lineage)
        if not isinstance(tokens, StoredTokens):
            raise TypeError(f"tokens must be StoredTokens, not {type(tokens).__name__}")
        if replacing is not None and not isinstance(replacing, str):
            raise TypeError(f"replacing must be a str or None, not {type(replacing).__name__}")
        return await self._run(
            "save tokens", functools.partial(self._save_tokens, key, tokens, replacing)
        )

    # -------------------------------------------------------------- vehicles

    async def load_vehicles(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleRecord]:
        """The stored records of ``vehicle_ids``, in that order; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        return await self._run("load vehicles", functools.partial(self._load_vehicles, ids))

    async def save_vehicles(self, records: Mapping[str, VehicleRecord]) -> None:
        """Replace these vehicles' records in one transaction: all of them or none."""
        checked = check_records(records)
        await self._run("save vehicles", functools.partial(self._save_vehicles, checked))

    # ------------------------------------------------- billed requests, quotas

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        """Add ``n`` to the vehicle's billed requests of ``month``; the new total."""
        vid = check_vehicle_id(vehicle_id)
        key = check_month(month)
        count = check_count("n", n, minimum=0)
        return await self._run(
            "count billed requests", functools.partial(_add_billed, vid, key, count)
        )

    async def billed(self, vehicle_id: str, month: str) -> int:
        """The vehicle's billed requests of ``month`` (0 when none)."""
        vid = check_vehicle_id(vehicle_id)
        key = check_month(month)
        return await self._run("read billed requests", functools.partial(_billed, vid, key))

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleQuota]:
        """The stored make and recent poll times of ``vehicle_ids``; ids with none are absent."""
        ids = check_vehicle_ids(vehicle_ids)
        return await self._run("load quotas", functools.partial(self._load_quotas, ids))

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        """Replace these vehicles' makes and recent poll times in one transaction."""
        checked = check_quotas(records)
        await self._run("save quotas", functools.partial(_save_quotas, checked))

    def _load_quotas(self, ids: list[str], conn: sqlite3.Connection) -> dict[str, VehicleQuota]:
        found: dict[str, VehicleQuota] = {}
        with transaction(conn, "BEGIN"):
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT vehicle_id, make, polls FROM quotas WHERE vehicle_id IN ({marks})",
                    chunk,
                )
                for vid, make, polls in rows:
                    try:
                        found[vid] = VehicleQuota(make=make, polls=tuple(_DECODER.decode(polls)))
                    except (TypeError, ValueError, RecursionError) as exc:
                        raise StateError(
                            f"state file {self._path}: the quota of vehicle {vid!r} is "
                            f"malformed: {exc}"
                        ) from None
        return {vid: found[vid] for vid in ids if vid in found}

    # ------------------------------------------------ the loop side of a call

    async def _run(self, what: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StateError(f"state file {self._path}: this store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name="smartcar_async.SQLiteState", daemon=True
            )
            self._thread.start()
        self._jobs.put((functools.partial(self._attempt, what, work), loop, future))
        return await future

    # ------------------------------------------- the worker thread's side

    def _serve(self) -> None:
        while True:
            work, loop, future = self._jobs.get()
            if work is None:
                self._disconnect()
                _answer(loop, future, None, None)
                return
            if future.cancelled():
                continue  # the caller left before its turn: do nothing
            try:
                result = work()
            except BaseException as exc:  # delivered to the caller, never lost in this thread
                _answer(loop, future, None, exc)
            else:
                _answer(loop, future, result, None)

    def _attempt(self, what: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            if self._conn is None:  # opened here, so an open failure fails this call
                self._conn = open_file(self._path)
            return work(self._conn)
        except StateError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"state file {self._path}: cannot {what}: {_describe(exc)}") from exc

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # the last connection checkpoints and removes -wal/-shm
            except sqlite3.Error as exc:
                logger.warning("state file %s: closing failed: %s", self._path, _describe(exc))

    def _load_tokens(self, key: str, conn: sqlite3.Connection) -> StoredTokens | None:
        row = conn.execute(
            "SELECT access_token, refresh_token, access_expires_at, refresh_expires_at"
            " FROM tokens WHERE lineage = ?",
            (key,),
        ).fetchone()
        return None if row is None else self._tokens_from_row(row)

    def _save_tokens(
        self, key: str, tokens: StoredTokens, replacing: str | None, conn: sqlite3.Connection
    ) -> bool:
        with transaction(conn):
            row = conn.execute("SELECT refresh_token FROM tokens WHERE lineage = ?", (key,))
            found = row.fetchone()
            if (None if found is None else found[0]) != replacing:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    tokens.access_token,
                    tokens.refresh_token,
                    _time_text(tokens.access_expires_at),
                    None
                    if tokens.refresh_expires_at is None
                    else _time_text(tokens.refresh_expires_at),
                    time.time(),
                ),
            )
        return True

    def _load_vehicles(self, ids: list[str], conn: sqlite3.Connection) -> dict[str, VehicleRecord]:
        found: dict[str, VehicleRecord] = {}
        with transaction(conn, "BEGIN"):  # one snapshot across the chunks
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    "SELECT vehicle_id, next_due, blocked_until, failures, parked"
                    f" FROM vehicles WHERE vehicle_id IN ({marks})",
                    chunk,
                )
                for row in rows:
                    found[row[0]] = self._record_from_row(row)
        return {vid: found[vid] for vid in ids if vid in found}

    def _save_vehicles(self, records: dict[str, VehicleRecord], conn: sqlite3.Connection) -> None:
        now = time.time()
        rows = [
            (vid, r.next_due, r.blocked_until, r.failures, _parked_text(r.parked), now)
            for vid, r in records.items()
        ]
        with transaction(conn):
            conn.executemany("INSERT OR REPLACE INTO vehicles VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _tokens_from_row(self, row: tuple[Any, ...]) -> StoredTokens:
        access, refresh, access_expiry, refresh_expiry = row
        try:
            return StoredTokens(
                access_token=access,
                refresh_token=refresh,
                access_expires_at=_parse_time(access_expiry),
                refresh_expires_at=None if refresh_expiry is None else _parse_time(refresh_expiry),
            )
        except (TypeError, ValueError):
            pass
        # Raised out here, with no detail and no context to follow: a corrupt
        # row may hold a token where a date belongs, and a parse error quotes it.
        raise StateError(f"state file {self._path}: a stored token pair is malformed")

    def _record_from_row(self, row: tuple[Any, ...]) -> VehicleRecord:
        vid, next_due, blocked_until, failures, parked = row
        try:
            return VehicleRecord(
                next_due=next_due,
                blocked_until=blocked_until,
                failures=failures,
                parked=_parse_parked(parked),
            )
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateError(
                f"state file {self._path}: the record of vehicle {vid!r} is malformed: {exc}"
            ) from None


# ------------------------------------------------------------ worker helpers


def _add_billed(vid: str, month: str, n: int, conn: sqlite3.Connection) -> int:
    with transaction(conn):
        conn.execute(
            "INSERT INTO billed VALUES (?, ?, ?)"
            " ON CONFLICT (vehicle_id, month) DO UPDATE SET count = count + excluded.count",
            (vid, month, n),
        )
        (total,) = conn.execute(
            "SELECT count FROM billed WHERE vehicle_id = ? AND month = ?", (vid, month)
        ).fetchone()
    return _count(total)


def _billed(vid: str, month: str, conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT count FROM billed WHERE vehicle_id = ? AND month = ?", (vid, month)
    ).fetchone()
    return 0 if row is None else _count(row[0])


def _count(value: object) -> int:
    # SQLite keeps whatever another writer put in the column: text, a blob, a
    # REAL (what an INTEGER overflowing 64 bits becomes), infinity.
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_COUNT:
        return int(value)
    raise sqlite3.DataError("a billed-request count is not a count")


def _save_quotas(records: dict[str, VehicleQuota], conn: sqlite3.Connection) -> None:
    rows = [(vid, q.make, json.dumps(list(q.polls), allow_nan=False)) for vid, q in records.items()]
    with transaction(conn):
        conn.executemany("INSERT OR REPLACE INTO quotas VALUES (?, ?, ?)", rows)


def _nothing(conn: sqlite3.Connection) -> None:
    return None


def _answer(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: object,
    error: BaseException | None,
) -> None:
    def settle() -> None:
        if future.done():  # the caller was cancelled meanwhile
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
        loop.call_soon_threadsafe(settle)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = str(exc)
    if "file is not a database" in text:
        return "not a SQLite database (file is not a database)"
    if "malformed" in text:
        return f"the file is corrupt ({text})"
    return text


def _time_text(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError("a stored time is not text")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.utcoffset() is None:
        raise ValueError("a stored time has no time zone")
    return parsed


def _parked_text(parked: Mapping[str, ParkedRead]) -> str:
    return json.dumps(
        {
            read: {"reason": p.reason, "until": p.until, "fingerprint": p.fingerprint}
            for read, p in parked.items()
        },
        separators=(",", ":"),
        allow_nan=False,
    )


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a valid time")


# One decoder for every row (json.loads with an option builds a new one per call).
_DECODER: Final = json.JSONDecoder(parse_constant=_refuse_constant)


def _parse_parked(text: object) -> dict[str, ParkedRead]:
    if text == "{}":
        return {}  # most vehicles: nothing parked
    if not isinstance(text, str):
        raise TypeError("parked reads are not JSON text")
    data = _DECODER.decode(text)
    if not isinstance(data, dict):
        raise TypeError("parked reads are not a JSON object")
    parked: dict[str, ParkedRead] = {}
    for read, entry in data.items():
        if not isinstance(entry, dict):
            raise TypeError(f"parked read {read!r} is not a JSON object")
        # A missing field becomes None, which the value type refuses with a TypeError.
        fields: dict[str, Any] = {name: entry.get(name) for name in ("reason", "until")}
        parked[read] = ParkedRead(**fields, fingerprint=entry.get("fingerprint"))
    return parked
