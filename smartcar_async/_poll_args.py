"""The poller's own argument checks: read names, shards, jitter, the store, the worker's name.

The bounds shared with the rest of the package (seconds, counts) are
``_validate``'s; what is here only a poller takes. Every check runs in
``FleetPoller.__init__``, before anything starts.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import secrets
import socket
from collections.abc import Iterable
from typing import Final

from ._endpoints import READS
from ._state import StateStore
from ._validate import check_int
from ._vehicle import Vehicle

#: The vehicle reads a poller may take: every batchable GET of the endpoint
#: table that Vehicle exposes as a method without arguments.
READ_NAMES: Final[tuple[str, ...]] = tuple(
    r.name for r in READS if inspect.iscoroutinefunction(getattr(Vehicle, r.name, None))
)


def shard_of(vehicle_id: str, shards: int) -> int:
    """The shard of ``shards`` that ``vehicle_id`` belongs to (stable across processes)."""
    check_int("shards", shards, minimum=1)
    digest = hashlib.blake2b(vehicle_id.encode(), digest_size=8, person=b"sc-shard").digest()
    return int.from_bytes(digest, "big") % shards


def check_reads(reads: Iterable[str]) -> tuple[str, ...]:
    if isinstance(reads, str):
        raise TypeError('reads must be an iterable of read names, e.g. ("odometer", "location")')
    names = tuple(dict.fromkeys(reads))
    if not names:
        raise ValueError("reads must name at least one read")
    unknown = [name for name in names if name not in READ_NAMES]
    if unknown:
        raise ValueError(
            f"unknown read{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid reads: {', '.join(READ_NAMES)}"
        )
    return names


def check_jitter(jitter: object) -> float:
    if not isinstance(jitter, int | float) or isinstance(jitter, bool):
        raise TypeError("jitter must be a number")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter must be within 0..1, got {jitter!r}")
    return float(jitter)


def check_shard(shard: tuple[int, int] | None) -> tuple[int, int] | None:
    if shard is None:
        return None
    try:
        index, count = shard
    except (TypeError, ValueError):
        raise TypeError("shard must be a pair (index, count)") from None
    check_int("shard count", count, minimum=1)
    check_int("shard index", index, minimum=0)
    if index >= count:
        raise ValueError(f"shard index must be below the shard count, got {index} of {count}")
    return (index, count)


def check_state(state: object) -> None:
    if state is not None and not isinstance(state, StateStore):
        raise TypeError(
            f"state must be a StateStore (e.g. SQLiteState), not {type(state).__name__}"
        )


def check_worker_id(worker_id: object) -> str:
    if worker_id is None:
        # Unique enough for leases without configuration: two processes never share a pid
        # on one host, and the suffix tells a restarted process from its former self.
        return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    if not isinstance(worker_id, str) or not worker_id:
        raise ValueError("worker_id must be a non-empty str")
    return worker_id
