"""Billed requests and brand limits: what counts, per calendar month, and the per-make table.

What the client counts as billed
--------------------------------
Smartcar bills per vehicle and per request, and "each endpoint in the batch
counts against your request limit for a vehicle" (its batch docs), so a batch
of N paths counts N, a single GET counts 1 and a write (a command) counts 1.
``/permissions``, ``DELETE /application`` and webhook subscriptions are free
(Smartcar's support article lists them among the unbilled endpoints).

Every attempt counts, retries included, the moment it is sent. Smartcar's
support article says only successful requests are billed, and its error pages
suggest that some "no" answers (COMPATIBILITY) are billed too: counting what
is sent is the one figure that is never below what Smartcar counts, so a
monthly budget built on it is never exceeded whatever Smartcar decides about a
failed attempt. The surplus is at most ``stats.failed_requests``.

Months are calendar months in UTC, named ``"YYYY-MM"``, from the wall clock of
the process that counts (``time.time()`` by default): a store shared by
workers on machines whose clocks disagree by seconds may file a request made
at midnight on the 1st in either month, which no budget notices.

Per-make limits
---------------
:data:`DEFAULT_MAKE_LIMITS` follows Smartcar's brand-quirks page,
https://smartcar.com/docs/help/brand-quirks (seen as
https://smartcar-home.netlify.app/docs/help/brand-quirks):

- GM (Buick, Chevrolet, Cadillac, GMC): "use batch requests and ping no more
  than once every 30 minutes" to avoid UPSTREAM:RATE_LIMIT.
- Hyundai and Kia: "only 20 requests can be made in a 24 hour period";
  Smartcar lets one request every 72 minutes reach the car itself.

A poll (one batch) is one contact with the vehicle, so these limits count
polls, not billed paths.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from ._vehicle import Vehicle

__all__ = [
    "DEFAULT_MAKE_LIMITS",
    "FreshnessOracle",
    "MakeLimit",
    "VehicleQuota",
    "month_bounds",
    "month_of",
]

_DAY: Final = 86_400.0


def month_of(epoch: float) -> str:
    """The calendar month (UTC) of ``epoch`` seconds, as ``"YYYY-MM"``. Added in 0.1.0."""
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return f"{when.year:04d}-{when.month:02d}"


def month_bounds(epoch: float) -> tuple[float, float]:
    """Start and end (epoch seconds) of ``epoch``'s calendar month in UTC. Added in 0.1.0."""
    when = dt.datetime.fromtimestamp(epoch, dt.UTC)
    start = dt.datetime(when.year, when.month, 1, tzinfo=dt.UTC)
    days = calendar.monthrange(when.year, when.month)[1]
    return start.timestamp(), start.timestamp() + days * _DAY


def check_month(month: object) -> str:
    """``month`` as a key (``"YYYY-MM"``), or TypeError/ValueError before any I/O."""
    if not isinstance(month, str):
        raise TypeError(f"month must be a str 'YYYY-MM', not {type(month).__name__}")
    year, dash, number = month.partition("-")
    if not (dash and len(year) == 4 and year.isdigit() and len(number) == 2 and number.isdigit()):
        raise ValueError(f"month must look like 'YYYY-MM', not {month!r}")
    if not 1 <= int(number) <= 12:
        raise ValueError(f"month must look like 'YYYY-MM' with a month 01..12, not {month!r}")
    return month


#: The largest count a store keeps: a signed 64-bit integer, as SQLite and Redis' HINCRBY do.
MAX_COUNT: Final = 2**63 - 1


def check_count(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, not {value}")
    if value > MAX_COUNT:
        raise ValueError(f"{name} must be at most {MAX_COUNT} (a 64-bit count)")
    return value


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past a float's range
        return False


def billable(method: str, path: str) -> bool:
    """Whether Smartcar bills a request to this vehicle path (see the module)."""
    if path == "/permissions" or path.startswith("/webhooks/"):
        return False
    return not (method == "DELETE" and path == "/application")


# ------------------------------------------------------------- make limits


def _positive_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    name = attribute.name
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be seconds (a number), not {type(value).__name__}")
    if not _finite(value):
        raise ValueError(f"{name} must be a finite number of seconds > 0")
    if value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")


def _polls(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_count("max_polls", value, minimum=1)


@attrs.frozen(kw_only=True)
class MakeLimit:
    """How often the poller may contact a vehicle of one make.

    ``min_interval``: seconds between two polls; ``max_polls`` per ``window``
    seconds: a sliding window. Either or both; ``source`` says where the
    figure comes from. Added in 0.1.0.
    """

    min_interval: float | None = attrs.field(default=None, validator=_positive_seconds)
    max_polls: int | None = attrs.field(default=None, validator=_polls)
    window: float | None = attrs.field(default=None, validator=_positive_seconds)
    source: str = ""

    def __attrs_post_init__(self) -> None:
        if (self.max_polls is None) != (self.window is None):
            raise ValueError("max_polls and window go together (max_polls per window seconds)")
        if self.min_interval is None and self.max_polls is None:
            raise ValueError("a make limit needs min_interval, or max_polls with window")

    @property
    def keep(self) -> int:
        """How many recent poll times the limit needs to remember."""
        return max(1, self.max_polls or 1)

    def wait(self, polls: tuple[float, ...], now: float) -> float:
        """Seconds from ``now`` until the next poll is allowed (0.0: now), given past poll times."""
        wait = 0.0
        if polls and self.min_interval is not None:
            wait = max(wait, polls[-1] + self.min_interval - now)
        if self.max_polls is not None and self.window is not None:
            recent = [t for t in polls if t > now - self.window]
            if len(recent) >= self.max_polls:
                wait = max(wait, recent[-self.max_polls] + self.window - now)
        return wait


_QUIRKS: Final = "https://smartcar.com/docs/help/brand-quirks"
_GM: Final = MakeLimit(min_interval=1800.0, source=f"{_QUIRKS} (GM: once every 30 minutes)")
_HYUNDAI_KIA: Final = MakeLimit(
    max_polls=20, window=_DAY, source=f"{_QUIRKS} (Hyundai/Kia: 20 requests per 24 hours)"
)

#: The poller's per-make limits by default (``FleetPoller(make_limits=True)``),
#: keyed by make as the attributes endpoint reports it, upper case. Sources: the
#: module docs. Added in 0.1.0.
DEFAULT_MAKE_LIMITS: Final[Mapping[str, MakeLimit]] = MappingProxyType(
    {
        "BUICK": _GM,
        "CADILLAC": _GM,
        "CHEVROLET": _GM,
        "GMC": _GM,
        "HYUNDAI": _HYUNDAI_KIA,
        "KIA": _HYUNDAI_KIA,
    }
)


def make_key(make: str) -> str:
    return make.strip().upper()


def resolve_make_limits(
    given: bool | Mapping[str, MakeLimit | None],
) -> dict[str, MakeLimit] | None:
    """``FleetPoller(make_limits=...)`` as a table; None when make limits are off.

    ``True``: the defaults; a mapping: the defaults with its entries on top
    (``None`` removes a make's default); ``False``: off.
    """
    if isinstance(given, bool):
        return dict(DEFAULT_MAKE_LIMITS) if given else None
    if not isinstance(given, Mapping):
        raise TypeError(
            "make_limits must be True, False or a mapping of make -> MakeLimit | None, "
            f"not {type(given).__name__}"
        )
    table = dict(DEFAULT_MAKE_LIMITS)
    for make, limit in given.items():
        if not isinstance(make, str) or not make.strip():
            raise TypeError(f"make_limits keys must be non-empty make names, not {make!r}")
        if limit is None:
            table.pop(make_key(make), None)
        elif isinstance(limit, MakeLimit):
            table[make_key(make)] = limit
        else:
            raise TypeError(
                f"make_limits[{make!r}] must be a MakeLimit or None, not {type(limit).__name__}"
            )
    return table


# ------------------------------------------------------------ store facts


def _polls_tuple(value: object) -> tuple[float, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, tuple | list):
        raise TypeError("polls must be a tuple of epoch seconds")
    out: list[float] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise TypeError("polls must be epoch seconds (numbers)")
        if not _finite(item):
            raise ValueError("polls must be finite epoch seconds")
        out.append(float(item))
    return tuple(sorted(out))


def _make(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"make must be a str or None, not {type(value).__name__}")
    return make_key(value)


@attrs.frozen(kw_only=True)
class VehicleQuota:
    """What a store keeps for a vehicle's brand limit: its make and recent poll times.

    ``make``: upper case as the attributes endpoint says it (None: not asked
    yet); ``polls``: epoch seconds of its most recent polls, oldest first.
    Added in 0.1.0.
    """

    make: str | None = attrs.field(default=None, converter=_make)
    polls: tuple[float, ...] = attrs.field(default=(), converter=_polls_tuple)


def check_quotas(records: object) -> dict[str, VehicleQuota]:
    if not isinstance(records, Mapping):
        raise TypeError(f"records must be a mapping, not {type(records).__name__}")
    checked: dict[str, VehicleQuota] = {}
    for vid, record in records.items():
        if not isinstance(vid, str) or not vid:
            raise TypeError("a vehicle id must be a non-empty str")
        if not isinstance(record, VehicleQuota):
            raise TypeError(f"records[{vid!r}] must be a VehicleQuota, not {type(record).__name__}")
        checked[vid] = record
    return checked


class MemoryQuotas:
    """The poller's in-memory billed counts and quotas when it has no store (they end with it)."""

    __slots__ = ("_billed", "_quotas")

    def __init__(self) -> None:
        self._billed: dict[tuple[str, str], int] = {}
        self._quotas: dict[str, VehicleQuota] = {}

    async def add_billed(self, vehicle_id: str, month: str, n: int) -> int:
        key = (vehicle_id, check_month(month))
        total = self._billed[key] = self._billed.get(key, 0) + check_count("n", n, minimum=0)
        return total

    async def billed(self, vehicle_id: str, month: str) -> int:
        return self._billed.get((vehicle_id, check_month(month)), 0)

    async def load_quotas(self, vehicle_ids: list[str]) -> dict[str, VehicleQuota]:
        return {vid: self._quotas[vid] for vid in vehicle_ids if vid in self._quotas}

    async def save_quotas(self, records: Mapping[str, VehicleQuota]) -> None:
        self._quotas.update(check_quotas(records))


# ------------------------------------------------------------ the client side


class BillingMeter:
    """Billed requests per vehicle, kept only for the vehicles someone watches.

    The client adds to it as it sends (see `billable`); a budgeted poller
    `watch`-es its vehicles and `take`-s what was billed since it last looked,
    to add it to the store's monthly count. Vehicles nobody watches cost one
    dict lookup per request and no memory.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, int] = {}

    def watch(self, vehicle_id: str) -> None:
        self._pending.setdefault(vehicle_id, 0)

    def add(self, vehicle_id: str, n: int) -> None:
        if vehicle_id in self._pending:
            self._pending[vehicle_id] += n

    def take(self, vehicle_id: str) -> int:
        """What was billed for ``vehicle_id`` since the last take (and keep watching it)."""
        n = self._pending.get(vehicle_id, 0)
        if n:
            self._pending[vehicle_id] = 0
        return n


@runtime_checkable
class FreshnessOracle(Protocol):
    """Says whether a vehicle's read is already known fresh (e.g. from a webhook delivery).

    ``FleetPoller(freshness=client.readings)`` asks the client's `ReadingCache`
    (which fits this protocol) before each poll: a read whose ``path``
    (``"/odometer"``...) was answered within ``max_age`` seconds (the poll
    interval), by a webhook delivery that ``client.ingest_webhook`` stored or by
    another reader, is not requested. It must answer quickly and synchronously
    (no I/O). Added in 0.1.0.
    """

    def is_fresh(self, vehicle: Vehicle, path: str, *, max_age: float | None = None) -> bool: ...
