"""Freshness reuse: answers kept for reads with ``max_age``, and readings fed by webhooks.

A handle made with ``max_age`` (``client.vehicle(..., max_age=300)`` or
``car.with_options(max_age=300)``) reads through an `_io.ReusingIO`, which asks the
client's one `ReadingCache` before it queues a read: an answer to the same
path of the same vehicle, credentials scope, unit system, flags and API
version that is at most ``max_age`` seconds old is returned as it is (a copy
whose ``meta`` says ``reused=True`` and its ``age``), without a request. A
miss goes to the coalescer as any read does, so concurrent misses still share
one request, and its success is stored; errors never are.

Age. An entry keeps how old its data already was when it arrived (now minus
``sc-fetched-at``, clamped at 0: a server clock ahead of ours cannot make
data younger than "just received") plus the monotonic time since it
arrived. So age only grows, and no wall-clock jump after receipt (NTP, a VM
resumed) can make stale data look fresh.

Webhook readings (`ReadingCache.ingest`) belong to the vehicle, not to a
token: a delivery carries none, and the application that verified its
signature owns the data. They answer reads of handles without ``flags``
(flags may change an answer, and a delivery was made without them).

Writes. A write sent on a vehicle drops, before it is sent and again after
it finished (succeeded or not), that vehicle's entries the write could
change (`WRITE_EFFECTS`); a read in flight across a write is not stored.

Bound: at most ``max_entries`` entries; the least recently used vehicle
loses its oldest entry first. Entries are grouped per vehicle so a write
finds its vehicle's entries without scanning the cache.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import attrs

from ._converter import structure
from ._endpoints import API_VERSION, model_for_path, normalize_path
from ._exceptions import SmartcarError
from ._json_checks import Mismatch
from ._models import Meta
from ._models_account import WebhookPayload, WebhookSignal
from ._v3_compat import V2_READS
from ._v3_models import Signal, Signals, SignalsMeta, freeze
from ._validate import check_bound, check_request_path

if TYPE_CHECKING:
    from ._coalescer import QueueKey
    from ._observability import Counters
    from ._vehicle import Vehicle

__all__ = ["DEFAULT_CACHE_SIZE", "WRITE_EFFECTS", "Reading", "ReadingCache", "scope_of"]

T = TypeVar("T")

#: Entries a client keeps by default: about 0.75 kB each, the answer included
#: (benchmarks/reuse_memory.py), so at most some 37 MB, spent only when used.
DEFAULT_CACHE_SIZE: Final = 50_000
#: The "path" of ``get_signals()`` (`_v3.ALL`); every write drops it.
_ALL: Final = "*"
#: Writes whose effect is unknown drop every entry of their vehicle.
_EVERYTHING: Final = None

#: What a write may change: (v2 read paths, v3 signal code prefixes) it drops.
#: A write missing from this table (``request("POST", ...)``, make-specific
#: writes, ``DELETE /application``) drops everything its vehicle has stored.
WRITE_EFFECTS: Final[Mapping[str, tuple[frozenset[str], tuple[str, ...]] | None]] = {
    # lock / unlock: the lock status (doors, windows, trunks are in it too)
    "POST /security": (frozenset({"/security"}), ("closure-",)),
    "POST /commands/security/lock": (frozenset({"/security"}), ("closure-",)),
    "POST /commands/security/unlock": (frozenset({"/security"}), ("closure-",)),
    # start / stop charging: the charge state, and the battery's level and range
    "POST /charge": (frozenset({"/charge", "/battery"}), ("charge-", "tractionbattery-")),
    "POST /commands/charge/start": (
        frozenset({"/charge", "/battery"}),
        ("charge-", "tractionbattery-"),
    ),
    "POST /commands/charge/stop": (
        frozenset({"/charge", "/battery"}),
        ("charge-", "tractionbattery-"),
    ),
    # a charge limit below the level stops a charge: the charge state goes too
    "POST /charge/limit": (frozenset({"/charge/limit", "/charge"}), ("charge-",)),
    "POST /commands/charge/set-limit": (frozenset({"/charge/limit", "/charge"}), ("charge-",)),
    # the charge port flap is in the lock status and the charge signals
    "POST /commands/charge-port/open": (frozenset({"/security", "/charge"}), ("charge-",)),
    "POST /commands/charge-port/close": (frozenset({"/security", "/charge"}), ("charge-",)),
    # a destination changes nothing a read returns
    "POST /navigation/destination": (frozenset(), ()),
    "POST /commands/navigation/set-destination": (frozenset(), ()),
}
_NOTHING: Final = (frozenset[str](), ())

Source = Literal["read", "webhook"]
_Tag = Literal["v2", "signal"]


@attrs.frozen
class Reading:
    """A stored answer a read could reuse: the model it would return, its age, where it came from.

    ``source`` is ``"read"`` (an earlier read's answer) or ``"webhook"`` (a
    delivery given to :meth:`Client.ingest_webhook`). Added in 0.2.0.
    """

    value: Any
    age: float
    source: Source


class _Entry:
    """One stored answer: the value, how old it was on arrival, when it arrived (monotonic)."""

    __slots__ = ("lead", "rank", "received", "value")

    def __init__(
        self, value: Any, lead: float, received: float, rank: tuple[float, float] | None = None
    ) -> None:
        self.value = value
        self.lead = lead
        self.received = received
        # Webhook readings only: the data's own (data time, fetch time), for ordering.
        self.rank = rank


def _epoch(when: datetime | None) -> float | None:
    """Seconds since the epoch, or None for none, and for 1970-01-01 itself.

    Smartcar sends epoch 0 as the time of static values (the VIN): it
    means "unknown", not "56 years old".
    """
    if when is None:
        return None
    try:
        seconds = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return seconds if seconds > 0 else None


def _fetched_at(value: object) -> datetime | None:
    meta = getattr(value, "meta", None)
    if isinstance(meta, Meta | SignalsMeta):
        return meta.fetched_at
    if isinstance(value, Signal):
        return value.retrieved_at
    return None


def _as_reused(value: T, age: float) -> T:
    """A copy of ``value`` saying it was reused and how old it is (models are frozen)."""
    if isinstance(value, Signals):
        again = attrs.evolve(value.meta, reused=True, age=age)
        return Signals(value, again, value.vehicle)  # type: ignore[return-value]
    meta = getattr(value, "meta", None)
    if isinstance(meta, Meta) and attrs.has(type(value)):
        return attrs.evolve(value, meta=attrs.evolve(meta, reused=True, age=age))  # type: ignore[misc]
    if isinstance(value, Signal):
        return attrs.evolve(value, reused=True, age=age)
    return value


def scope_of(key: QueueKey) -> tuple[object, ...]:
    """What, beside the vehicle and path, makes two answers interchangeable.

    A token string is kept as a digest (the cache must hold no secret, even
    unprinted); a token source by identity, as the coalescer does.
    """
    auth: object = key.auth
    if isinstance(auth, str):
        auth = hashlib.blake2b(auth.encode(), digest_size=16).digest()
    return (auth, key.unit_system, key.flags, key.api_version, key.user_id)


class ReadingCache:
    """The answers a client keeps for handles with ``max_age``, and its webhook readings.

    One per client (``client.readings``). A poller asks it whether a read
    would be answered without a request (:meth:`is_fresh`, :meth:`lookup`)
    before it spends one. ``monotonic`` and ``wall`` are the clocks it ages
    entries by (``time.monotonic``, ``time.time``); a simulation may replace
    both. Added in 0.2.0.
    """

    __slots__ = (
        "_count",
        "_counters",
        "_epoch",
        "_floor",
        "_forgot",
        "_max",
        "_vehicles",
        "monotonic",
        "used",
        "wall",
    )

    #: Vehicles whose last write time is remembered, for reads in flight across a write.
    _FORGOTTEN: Final = 4096

    def __init__(self, max_entries: int, counters: Counters) -> None:
        self._max = max_entries
        self._counters = counters
        self._vehicles: OrderedDict[str, dict[tuple[Any, ...], _Entry]] = OrderedDict()
        self._count = 0
        self._epoch = 0  # bumped by every write's invalidation
        self._forgot: OrderedDict[str, int] = OrderedDict()
        self._floor = 0  # the epoch of the newest record dropped from _forgot
        # Set once a handle with max_age or a webhook used the cache: until then
        # writes need not tell it anything.
        self.used = False
        # The clocks (replaceable by tests): age runs on the monotonic one.
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time

    @property
    def max_entries(self) -> int:
        """The bound (``Client(cache_size=...)``); 0 keeps nothing."""
        return self._max

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f"<ReadingCache entries={self._count} max_entries={self._max}>"

    def clear(self) -> None:
        """Drop every stored answer and reading."""
        self._vehicles.clear()
        self._count = 0

    def forget(self, vehicle_id: str) -> None:
        """Drop everything stored for one vehicle."""
        self._drop(vehicle_id, None)

    # ----------------------------------------------------------- public asks

    def lookup(
        self, vehicle: Vehicle, path: str, *, max_age: float | None = None
    ) -> Reading | None:
        """The answer ``vehicle.<read>()`` of ``path`` would reuse now, or None.

        ``path`` is a read path (``"/odometer"``), or for a v3 handle a signal
        code or ``"*"`` (``get_signals()``). ``max_age`` defaults to the
        handle's; one of the two must be given. Looking does not count as a
        read nor refresh the entry's place in the LRU order.
        """
        limit = max_age if max_age is not None else vehicle.max_age
        if limit is None:
            raise ValueError("lookup() needs max_age= for a handle made without max_age")
        limit = check_bound("max_age", limit)
        assert limit is not None
        key = vehicle._key
        clean = _clean_path(path, v3=key.api_version != API_VERSION)
        found = self._find(key, scope_of(key), clean, _model_for(clean), limit, touch=False)
        if found is None:
            return None
        value, age, source = found
        return Reading(_as_reused(value, age), age, source)

    def is_fresh(self, vehicle: Vehicle, path: str, *, max_age: float | None = None) -> bool:
        """Whether a read of ``path`` on ``vehicle`` would be answered without a request."""
        return self.lookup(vehicle, path, max_age=max_age) is not None

    # -------------------------------------------------------------- reading

    def reuse(
        self, key: QueueKey, scope: tuple[object, ...], path: str, model: type[T], max_age: float
    ) -> T | None:
        """The stored answer for this read, marked reused, or None (counted when found)."""
        if not self._count:
            return None
        found = self._find(key, scope, path, model, max_age, touch=True)
        if found is None:
            return None
        value, age, source = found
        counters = self._counters
        counters.logical_reads += 1
        counters.reused_reads += 1
        if source == "webhook":
            counters.webhook_reused_reads += 1
        result: T = _as_reused(value, age)
        return result

    def _find(
        self,
        key: QueueKey,
        scope: tuple[object, ...],
        path: str,
        model: type[Any],
        max_age: float,
        *,
        touch: bool,
    ) -> tuple[Any, float, Source] | None:
        vehicle_id = key.vehicle_id
        bucket = self._vehicles.get(vehicle_id)
        if bucket is None:
            return None
        now = self.monotonic()
        best: tuple[Any, float, Source] | None = None
        entry = bucket.get((scope, path))
        if entry is not None and type(entry.value) is model:
            age = entry.lead + (now - entry.received)
            if age <= max_age:
                best = (entry.value, age, "read")
        if not key.flags:
            heard = self._from_webhooks(bucket, key.unit_system, path, model, now, max_age)
            if heard is not None and (best is None or heard[1] < best[1]):
                best = heard
        if best is not None and touch:
            self._vehicles.move_to_end(vehicle_id)
        return best

    def _from_webhooks(
        self,
        bucket: dict[tuple[Any, ...], _Entry],
        unit_system: str,
        path: str,
        model: type[Any],
        now: float,
        max_age: float,
    ) -> tuple[Any, float, Source] | None:
        if not path.startswith("/"):
            if model is not Signal:
                return None
            entry = bucket.get(("signal", path))
            if entry is None:
                return None
            age = entry.lead + (now - entry.received)
            return (entry.value, age, "webhook") if age <= max_age else None
        best: tuple[Any, float, Source] | None = None
        entry = bucket.get(("v2", unit_system, path))
        if entry is not None:
            age = entry.lead + (now - entry.received)
            if age <= max_age:
                body, meta = entry.value
                try:
                    best = (structure(model, body, meta), age, "webhook")
                except SmartcarError:
                    best = None
        built = self._from_signals(bucket, unit_system, path, model, now, max_age)
        if built is not None and (best is None or built[1] < best[1]):
            best = built
        return best

    def _from_signals(
        self,
        bucket: dict[tuple[Any, ...], _Entry],
        unit_system: str,
        path: str,
        model: type[Any],
        now: float,
        max_age: float,
    ) -> tuple[Any, float, Source] | None:
        """A v2 read built from v4 signals, as a v3 handle builds it from polled ones.

        Every required signal must be there; every signal used (optional
        ones included) must be within ``max_age``, so no answer mixes fresh
        and stale parts. The age is the oldest part's.
        """
        read = V2_READS.get(path)
        if read is None or not read.required:
            return None
        found: dict[str, Signal] = {}
        oldest = 0.0
        for code in read.codes:
            entry = bucket.get(("signal", code))
            if entry is None:
                if code in read.required:
                    return None
                continue
            age = entry.lead + (now - entry.received)
            if age > max_age:
                return None
            oldest = max(oldest, age)
            found[code] = entry.value
        first = found[read.required[0]]
        meta = Meta(
            data_age=first.oem_updated_at,
            fetched_at=first.retrieved_at,
            unit_system=unit_system,
        )
        try:
            return (structure(model, read.build(found, unit_system), meta), oldest, "webhook")
        except (Mismatch, SmartcarError):  # a body the builder cannot read: no answer
            return None

    # -------------------------------------------------------------- storing

    def epoch(self) -> int:
        """A mark to take when a read starts; `store` refuses answers older than a write."""
        return self._epoch

    def store(
        self, key: QueueKey, scope: tuple[object, ...], path: str, value: object, since: int
    ) -> None:
        """Keep a read's successful answer (``since``: the `epoch` its read started at)."""
        if not self._max:
            return
        vehicle_id = key.vehicle_id
        if since != self._epoch:
            last = self._forgot.get(vehicle_id)
            if (last is not None and last > since) or (last is None and self._floor > since):
                return  # a write went out while this answer was on its way
        fetched = _epoch(_fetched_at(value))
        self._put(vehicle_id, (scope, path), _Entry(value, self._lead(fetched), self.monotonic()))

    def _lead(self, fetched: float | None) -> float:
        return 0.0 if fetched is None else max(0.0, self.wall() - fetched)

    def _put(self, vehicle_id: str, subkey: tuple[Any, ...], entry: _Entry) -> None:
        vehicles = self._vehicles
        bucket = vehicles.get(vehicle_id)
        if bucket is None:
            bucket = vehicles[vehicle_id] = {}
        else:
            vehicles.move_to_end(vehicle_id)
            if bucket.pop(subkey, None) is not None:
                self._count -= 1
        bucket[subkey] = entry
        self._count += 1
        while self._count > self._max:
            oldest_id, oldest = next(iter(vehicles.items()))
            del oldest[next(iter(oldest))]
            self._count -= 1
            if not oldest:
                del vehicles[oldest_id]

    # ------------------------------------------------------------ dropping

    def drop_for_write(self, vehicle_id: str, method: str, path: str) -> None:
        """Drop what a write may change (called before it is sent and after it finished)."""
        effect = (
            _NOTHING
            if path.startswith("/webhooks/")
            else WRITE_EFFECTS.get(f"{method} {path}", _EVERYTHING)
        )
        if effect == _NOTHING:
            return
        self._epoch += 1
        forgot = self._forgot
        forgot[vehicle_id] = self._epoch
        forgot.move_to_end(vehicle_id)
        if len(forgot) > self._FORGOTTEN:
            _, self._floor = forgot.popitem(last=False)
        self._drop(vehicle_id, effect)

    def _drop(self, vehicle_id: str, effect: tuple[frozenset[str], tuple[str, ...]] | None) -> None:
        bucket = self._vehicles.get(vehicle_id)
        if bucket is None:
            return
        if effect is None:
            self._count -= len(bucket)
            del self._vehicles[vehicle_id]
            return
        paths, prefixes = effect
        doomed = [
            subkey
            for subkey in bucket
            if subkey[-1] == _ALL
            or subkey[-1] in paths
            or (prefixes and subkey[-1].startswith(prefixes))
        ]
        for subkey in doomed:
            del bucket[subkey]
        self._count -= len(doomed)
        if not bucket:
            del self._vehicles[vehicle_id]

    # ------------------------------------------------------------- webhooks

    def ingest(self, payload: WebhookPayload, unit_system: str) -> int:
        """Store a delivery's readings; the number stored (older or repeated ones are not)."""
        if not isinstance(payload, WebhookPayload):
            raise TypeError(
                "ingest_webhook() takes a parsed webhook (parse_webhook(raw_body)), "
                f"not {type(payload).__name__}"
            )
        self.used = True
        if not self._max or payload.is_verify:
            return 0
        delivered = _epoch(payload.delivered_at)
        if payload.signals or "eventType" in payload.raw:
            stored = self._ingest_v4(payload, delivered)
        else:
            stored = self._ingest_v2(payload.data, unit_system)
        self._counters.webhook_readings_ingested += stored
        return stored

    def _ingest_v4(self, payload: WebhookPayload, delivered: float | None) -> int:
        data = payload.data
        vehicle = data.get("vehicle")
        vehicle_id = vehicle.get("id") if isinstance(vehicle, Mapping) else None
        if not isinstance(vehicle_id, str):
            vehicle_id = payload.raw.get("vehicleId")
        if not isinstance(vehicle_id, str) or not vehicle_id:
            return 0
        stored = 0
        for raw in payload.signals:
            signal = _signal(raw)
            if signal is None:
                continue
            fetched = _epoch(signal.retrieved_at) or delivered
            rank = (_epoch(signal.oem_updated_at) or 0.0, fetched or 0.0)
            stored += self._heard(vehicle_id, ("signal", signal.code), signal, fetched, rank)
        if isinstance(vehicle, Mapping):
            make, name, year = vehicle.get("make"), vehicle.get("model"), vehicle.get("year")
            if isinstance(make, str) and isinstance(name, str) and type(year) is int:
                body = {"id": vehicle_id, "make": make, "model": name, "year": year}
                rank = (delivered or 0.0, delivered or 0.0)
                for units in ("metric", "imperial"):
                    meta = Meta(unit_system=units)
                    subkey = ("v2", units, "/")
                    self._heard(vehicle_id, subkey, (body, meta), delivered, rank)
        return stored

    def _ingest_v2(self, data: Mapping[str, Any], unit_system: str) -> int:
        vehicles = data.get("vehicles")
        if not isinstance(vehicles, list):
            return 0
        stored = 0
        for vehicle in vehicles:
            if not isinstance(vehicle, Mapping):
                continue
            vehicle_id = vehicle.get("vehicleId")
            items = vehicle.get("data")
            if not isinstance(vehicle_id, str) or not vehicle_id or not isinstance(items, list):
                continue
            for item in items:
                stored += self._v2_item(vehicle_id, item, unit_system)
        return stored

    def _v2_item(self, vehicle_id: str, item: object, unit_system: str) -> int:
        if not isinstance(item, Mapping) or item.get("code") != 200:
            return 0  # errors are never stored
        path, body, headers = item.get("path"), item.get("body"), item.get("headers")
        if not isinstance(path, str) or not isinstance(body, dict):
            return 0
        try:
            path = normalize_path(check_request_path(path))
        except (TypeError, ValueError):
            return 0
        meta = Meta.from_headers(headers if isinstance(headers, Mapping) else {})
        units = meta.unit_system if meta.unit_system in ("metric", "imperial") else unit_system
        meta = attrs.evolve(meta, unit_system=units)
        try:
            structure(model_for_path(path), body, meta)  # a reading no read could return: skip
        except SmartcarError:
            return 0
        fetched = _epoch(meta.fetched_at)
        rank = (_epoch(meta.data_age) or 0.0, fetched or 0.0)
        return self._heard(vehicle_id, ("v2", units, path), (body, meta), fetched, rank)

    def _heard(
        self,
        vehicle_id: str,
        subkey: tuple[Any, ...],
        value: object,
        fetched: float | None,
        rank: tuple[float, float],
    ) -> int:
        """Store one webhook reading unless what is stored is as new or newer (1 if stored)."""
        bucket = self._vehicles.get(vehicle_id)
        held = bucket.get(subkey) if bucket is not None else None
        if held is not None and held.rank is not None and rank != (0.0, 0.0) and rank <= held.rank:
            return 0  # a repeat, or an older reading delivered late
        self._put(vehicle_id, subkey, _Entry(value, self._lead(fetched), self.monotonic(), rank))
        return 1


def _signal(raw: WebhookSignal) -> Signal | None:
    """A delivered signal as the `Signal` a read returns; None for failed or unusable ones."""
    if raw.status not in (None, "SUCCESS") or raw.code is None or raw.body is None:
        return None
    body = freeze(dict(raw.body))
    unit = body.get("unit")
    return Signal(
        code=raw.code,
        name=raw.name,
        group=raw.group,
        status="SUCCESS",
        body=body,
        value=body.get("value"),
        unit=unit if isinstance(unit, str) else None,
        oem_updated_at=raw.oem_updated_at,
        retrieved_at=raw.retrieved_at,
    )


def _clean_path(path: object, *, v3: bool) -> str:
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, got {type(path).__name__}")
    if v3 and (path == _ALL or (path and not path.startswith("/") and "/" not in path)):
        return path  # "*" or a v3 signal code
    return normalize_path(check_request_path(path))


def _model_for(path: str) -> type[Any]:
    if path == _ALL:
        return Signals
    if not path.startswith("/"):
        return Signal
    return model_for_path(path)
