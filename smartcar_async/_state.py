"""State that survives a restart: the :class:`StateStore` protocol and the facts it holds.

A store keeps these facts, nothing else:

- **token pairs**, keyed by a *lineage*: the :func:`token_lineage` digest of the
  refresh token a vehicles file ORIGINALLY gave. The file keeps naming that first
  token while Smartcar rotates it at every refresh, so the digest of the file's
  token finds the newest pair after a restart; the stored pair wins over the
  file's. The raw token is never a key.
- **billed requests per vehicle and calendar month** (UTC, ``"YYYY-MM"``), and
  each vehicle's make and recent poll times (:class:`VehicleQuota`), for a
  poller's ``monthly_budget`` and per-make limits;
- **per-vehicle poll state** (:class:`VehicleRecord`): when the vehicle is next
  due, until when it is held back (backoff, ``Retry-After``), its consecutive
  failures, and its parked reads (:class:`ParkedRead`: a read that answered
  COMPATIBILITY or PERMISSION is not asked again before ``until``).

Every time is wall-clock epoch seconds (``time.time()``), or an aware datetime
for token expiries: a monotonic clock means nothing after a restart.

The protocol is small, async and about facts, not storage, so that the
embedded :class:`~smartcar_async.SQLiteState` and a shared backend (Redis) are
interchangeable behind the poller. Records are written whole: one poller owns
a vehicle at a time (in one process, the poller; across processes, a lease).

How the poller and the CLI use a store
--------------------------------------
The caller owns the store: ``async with SQLiteState(path) as state:`` around
the poller, which takes ``state=state`` and never closes it.

Tokens, once per distinct refresh token of the vehicles file::

    lineage = token_lineage(file_refresh_token)
    pair = await state.load_tokens(lineage)
    if pair is None:                       # first run with this file's token
        pair = StoredTokens(access_token=..., refresh_token=file_refresh_token,
                            access_expires_at=file_expires_at or now)  # unknown: expired
        if not await state.save_tokens(lineage, pair, replacing=None):
            pair = await state.load_tokens(lineage)   # another process stored one first

Each refresh (single-flight per lineage; the new pair is written BEFORE it is used,
because Smartcar invalidates the spent refresh token shortly after use)::

    spent = pair.refresh_token
    new = StoredTokens.from_access(await auth.exchange_refresh_token(spent))
    if await state.save_tokens(lineage, new, replacing=spent):
        pair = new                          # durable now: safe to hand out
    else:
        pair = await state.load_tokens(lineage)   # another writer rotated first: use theirs

If ``save_tokens`` raises :class:`~smartcar_async.StateError` after a successful
exchange, the new pair exists only in memory and the spent token is dead: retry
the save, and if the store stays failed, stop with a clear error (the pair cannot
be made durable; losing it means the user must reconnect). A new refresh token
in the file (the user reconnected) is a new lineage; the old one is just never
asked for again.

Vehicles: one bulk ``load_vehicles(ids)`` at start-up (thousands in one call);
``save_vehicles({id: record, ...})`` after polls (one transaction per call, so
saving a round's changes together costs one durable write). A poller converts
its monotonic times on the way in and out, e.g.
``next_due = time.time() + (due - anyio.current_time())``. A park that must end
when the vehicle's tokens change (AUTHENTICATION with no way to refresh) carries
a ``fingerprint`` (say ``token_lineage(access_token)``) that the poller compares
with the vehicle's current tokens after loading.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from ._models_account import Access, _redacted
from ._quota import VehicleQuota
from ._validate import check_encodable

__all__ = [
    "ParkedRead",
    "StateStore",
    "StoredTokens",
    "VehicleRecord",
    "token_lineage",
]

# Domain separation: a lineage is never equal to a plain SHA-256 of the token
# that some other tool might also have stored next to it.
_LINEAGE_PREFIX = b"smartcar_async token lineage v1\x00"


def token_lineage(refresh_token: str) -> str:
    """The key of a token lineage: a SHA-256 hex digest of the file's refresh token.

    Refresh tokens are long random strings, so the digest reveals nothing and
    needs no secret key; the same token gives the same lineage in every
    backend and on every machine. Added in 0.1.0.
    """
    if not isinstance(refresh_token, str):
        raise TypeError(f"refresh_token must be a str, not {type(refresh_token).__name__}")
    if not refresh_token:
        raise ValueError("refresh_token must not be empty")
    return hashlib.sha256(_LINEAGE_PREFIX + refresh_token.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ validation
# Messages name the field, never the value: a value may be a token.


def _token(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _nonempty_str(attribute.name, value)


def _aware(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None and attribute.name == "refresh_expires_at":
        return
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{attribute.name} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


def _epoch(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be epoch seconds (a number), not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite epoch seconds") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be finite epoch seconds, not {seconds}")
    return seconds


def _nonempty_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    # A store would fail to encode it later, with an error that quotes it whole.
    return check_encodable(name, value)


# attrs converters: their annotations are what mypy lets callers pass.


def _until(value: float) -> float:
    return _epoch("until", value)


def _next_due(value: float | None) -> float | None:
    return None if value is None else _epoch("next_due", value)


def _blocked_until(value: float | None) -> float | None:
    return None if value is None else _epoch("blocked_until", value)


def _reason(value: str) -> str:
    return _nonempty_str("reason", value)


def _fingerprint(value: str | None) -> str | None:
    return None if value is None else _nonempty_str("fingerprint", value)


def _failures(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"failures must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"failures must be >= 0, not {value}")
    return value


def _freeze_parked(value: Mapping[str, ParkedRead]) -> Mapping[str, ParkedRead]:
    if not isinstance(value, Mapping):
        raise TypeError(f"parked must be a mapping, not {type(value).__name__}")
    frozen: dict[str, ParkedRead] = {}
    for read, parked in value.items():
        _nonempty_str("a parked read's name", read)
        if not isinstance(parked, ParkedRead):
            raise TypeError(f"parked[{read!r}] must be a ParkedRead, not {type(parked).__name__}")
        frozen[read] = parked
    return MappingProxyType(frozen)


def _mapping_repr(value: Mapping[str, ParkedRead]) -> str:
    return repr(dict(value))


# ---------------------------------------------------------------- value types


@attrs.frozen(kw_only=True)
class StoredTokens:
    """One user's token pair as a store keeps it; the repr hides both tokens.

    ``access_expires_at`` and ``refresh_expires_at`` are timezone-aware;
    ``refresh_expires_at`` is None when unknown (a vehicles file does not say).
    An unknown access expiry is best saved as "now": the pair is refreshed
    before its first use. Added in 0.1.0.
    """

    access_token: str = attrs.field(repr=_redacted, validator=_token)
    refresh_token: str = attrs.field(repr=_redacted, validator=_token)
    access_expires_at: dt.datetime = attrs.field(validator=_aware)
    refresh_expires_at: dt.datetime | None = attrs.field(default=None, validator=_aware)

    @classmethod
    def from_access(cls, access: Access) -> StoredTokens:
        """The pair an :class:`~smartcar_async.Access` (a code or refresh exchange) carries."""
        return cls(
            access_token=access.access_token,
            refresh_token=access.refresh_token,
            access_expires_at=access.expiration,
            refresh_expires_at=access.refresh_expiration,
        )


@attrs.frozen(kw_only=True)
class ParkedRead:
    """Why a read is not asked for, and until when (epoch seconds).

    ``reason`` is the error type that parked it (``"COMPATIBILITY"``,
    ``"PERMISSION"``, ``"AUTHENTICATION"``...). ``fingerprint``, when set,
    identifies the tokens the park was decided under: the caller lifts the park
    early once the vehicle's tokens no longer match. Added in 0.1.0.
    """

    reason: str = attrs.field(converter=_reason)
    until: float = attrs.field(converter=_until)
    fingerprint: str | None = attrs.field(default=None, converter=_fingerprint)


@attrs.frozen(kw_only=True)
class VehicleRecord:
    """What a poller knows about one vehicle between polls, in epoch seconds.

    ``next_due``: when it is next to be polled (None: at the poller's own
    schedule). ``blocked_until``: held back until then by a backoff or a
    ``Retry-After`` (None: not held). ``failures``: consecutive failed polls,
    which size the next backoff. ``parked``: read name -> :class:`ParkedRead`
    (a read-only mapping; use :meth:`with_parked` / :meth:`without_parked`).

    Added in 0.1.0.
    """

    next_due: float | None = attrs.field(default=None, converter=_next_due)
    blocked_until: float | None = attrs.field(default=None, converter=_blocked_until)
    failures: int = attrs.field(default=0, converter=_failures)
    # Left out of the hash (a mapping has none); equal records still hash alike.
    parked: Mapping[str, ParkedRead] = attrs.field(
        factory=dict, converter=_freeze_parked, repr=_mapping_repr, hash=False
    )

    def with_parked(self, read: str, parked: ParkedRead) -> VehicleRecord:
        """A copy with ``read`` parked (replacing any earlier park of it)."""
        return attrs.evolve(self, parked={**self.parked, read: parked})

    def without_parked(self, *reads: str) -> VehicleRecord:
        """A copy with ``reads`` no longer parked (unknown names are ignored)."""
        return attrs.evolve(
            self, parked={name: p for name, p in self.parked.items() if name not in reads}
        )


# ------------------------------------------------------------------ protocol


@runtime_checkable
class StateStore(Protocol):
    """Where a poller keeps what must survive a restart (see the module docs).

    Calls are safe to make concurrently from many tasks of one event loop.
    Failures of the store itself (unreadable file, newer schema, I/O error,
    use after close) raise :class:`~smartcar_async.StateError`; bad arguments
    raise ``TypeError``/``ValueError`` before any I/O. Added in 0.1.0.
    """

    async def load_tokens(self, lineage: str) -> StoredTokens | None:
        """The stored pair of ``lineage``, or None if there is none."""
        ...

    async def save_tokens(
        self, lineage: str, tokens: StoredTokens, *, replacing: str | None
    ) -> bool:
        """Store ``tokens`` for ``lineage`` if the stored refresh token is ``replacing``.

        A compare-and-swap: ``replacing=None`` means "only if nothing is stored
        yet" (the first save of a file's pair), a token means "only if that is
        still the stored refresh token" (a rotation of the token just spent).
        True once the pair is durable; False if another writer got there first
        (the stored pair is then unchanged: load it and use it).
        """
        ...

    async def load_vehicles(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleRecord]:
        """The stored records of ``vehicle_ids``; ids with no record are absent."""
        ...

    async def save_vehicles(self, records: Mapping[str, VehicleRecord]) -> None:
        """Replace the records of these vehicles, all of them or none (one transaction)."""
        ...

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        """Add ``n`` billed requests to the vehicle's count for ``month`` (``"YYYY-MM"``, UTC).

        Atomic across the store's users; returns the new total. Counts of past
        months may be dropped once the month is over (Redis keeps ~40 days).
        """
        ...

    async def billed(self, vehicle_id: str, month: str) -> int:
        """The vehicle's billed requests counted for ``month`` (0 when none)."""
        ...

    async def load_quotas(self, vehicle_ids: Iterable[str]) -> dict[str, VehicleQuota]:
        """The stored make and recent poll times of ``vehicle_ids``; absent when none."""
        ...

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        """Replace the make and recent poll times of these vehicles."""
        ...

    async def aclose(self) -> None:
        """Release the store; idempotent. Later calls raise StateError."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_lineage(lineage: object) -> str:
    """``lineage`` as a key, or TypeError/ValueError (for backends, before any I/O)."""
    return _nonempty_str("lineage", lineage)


def check_vehicle_id(vehicle_id: object) -> str:
    """``vehicle_id`` as a key, or TypeError/ValueError (for backends, before any I/O)."""
    return _nonempty_str("vehicle_id", vehicle_id)


def check_vehicle_ids(vehicle_ids: object) -> list[str]:
    """Distinct vehicle ids in order, or TypeError/ValueError (a lone str is refused)."""
    if isinstance(vehicle_ids, str | bytes) or not isinstance(vehicle_ids, Iterable):
        raise TypeError("vehicle_ids must be an iterable of str (not a single str)")
    return list(dict.fromkeys(_nonempty_str("a vehicle id", vid) for vid in vehicle_ids))


def check_records(records: object) -> dict[str, VehicleRecord]:
    """``records`` as a plain dict, or TypeError/ValueError."""
    if not isinstance(records, Mapping):
        raise TypeError(f"records must be a mapping, not {type(records).__name__}")
    checked: dict[str, VehicleRecord] = {}
    for vid, record in records.items():
        _nonempty_str("a vehicle id", vid)
        if not isinstance(record, VehicleRecord):
            raise TypeError(
                f"records[{vid!r}] must be a VehicleRecord, not {type(record).__name__}"
            )
        checked[vid] = record
    return checked
