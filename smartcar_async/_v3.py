"""The v3 signals wire format, and the executor that speaks it for the coalescer.

A v3 handle's reads go into a queue of their own (its `QueueKey` carries
``api_version="3"`` and the ``sc-user-id``), with three kinds of "path":

* a signal code (``"odometer-traveleddistance"``), from ``get_signal``;
* `ALL` (``"*"``), from ``get_signals``;
* a v2 read path (``"/odometer"``, ``"/"`` for the attributes), from the
  v2-named reads, each needing the signals `_v3_compat.V2_READS` lists.

`execute_signals` sends a flight as ONE request: ``GET /signals/{code}`` when
it needs a single signal, ``GET /vehicles/{id}`` when it needs only the
vehicle, else ``GET /signals`` (following its pages when the answer holds
only part of the signals). It returns an `Answer` keyed by path: a signal
whose status is ``ERROR`` becomes an item error (final: stored state is not
retried) for that path's callers only, as does a signal missing from the
answer (not yet ingested) or unreadable.

Paging: the 3.0.0 spec documents no paging parameter and live answers hold
every signal, but the envelope advertises ``meta.totalCount``/``pageSize``/
``pageNumber``; when fewer signals than ``totalCount`` arrived, the query of
``links.next`` is sent again to the same vehicle's ``/signals`` (never to the
link's host: a body must not choose where the token goes), else the next
``page[number]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, urlsplit

from ._batch import Answer, RawItem
from ._converter import invalid_response
from ._endpoints import model_for_path
from ._exceptions import (
    CompatibilityError,
    InvalidResponseError,
    ResourceNotFoundError,
    SmartcarError,
)
from ._json_checks import Mismatch, Path
from ._models import Attributes
from ._v3_compat import V2_READS
from ._v3_models import Signal, Signals, SignalsMeta, read_signal, read_vehicle

if TYPE_CHECKING:
    from ._coalescer import QueueKey
    from ._policy import SendPolicy

__all__ = ["ALL", "execute_signals"]

#: The "path" of ``get_signals()``: every signal.
ALL: Final = "*"
#: Pages followed at most for one ``/signals`` read.
MAX_PAGES: Final = 100
_INT_MAX: Final = 2**63 - 1

Outcome = Signal | SmartcarError


class _Fetched:
    """What one flight's request(s) brought back."""

    __slots__ = ("meta", "request_id", "signals", "vehicle", "wanted")

    def __init__(self, request_id: str | None, wanted: frozenset[str] | None = None) -> None:
        self.request_id = request_id
        #: The codes to build `Signal`s for (None: all); the rest are skipped unread.
        self.wanted = wanted
        self.signals: dict[str, Outcome] = {}
        self.vehicle: Attributes | SmartcarError | None = None
        self.meta = SignalsMeta(request_id=request_id, fetched_at=dt.datetime.now(dt.UTC))


async def execute_signals(
    policy: SendPolicy, key: QueueKey, paths: tuple[str, ...], spent: int = 0
) -> Answer:
    """The v3 coalescer's executor (bind ``policy`` with ``functools.partial``)."""
    codes: dict[str, None] = {}
    everything = ALL in paths
    for path in paths:
        if path.startswith("/"):
            read = V2_READS.get(path)
            codes.update(dict.fromkeys(read.codes if read is not None else ()))
        elif path != ALL:
            codes[path] = None
    params = {"flags": key.flags} if key.flags else None
    if everything or len(codes) > 1 or (codes and "/" in paths):
        # Only the signals someone waits on become models (building all ~30 was
        # most of a /signals read's client CPU); get_signals() wants them all.
        wanted = None if everything else frozenset(codes)
        fetched = await _fetch_all(policy, key, params, spent, len(paths) > 1, wanted)
    elif codes:
        fetched = await _fetch_one(policy, key, params, spent, next(iter(codes)))
    else:
        fetched = await _fetch_vehicle(policy, key, params, spent)
    return Answer({path: _item(path, fetched, key) for path in paths}, fetched.request_id)


# --- requests ------------------------------------------------------------------


async def _get(
    policy: SendPolicy,
    key: QueueKey,
    path: str,
    params: Mapping[str, str] | None,
    spent: int,
    batch: bool = False,
) -> tuple[Any, str | None]:
    resp = await policy.send(
        "GET",
        key,
        path,
        params=params,
        unit_system=None,
        retry=True,
        kind="batch" if batch else "get",
        spent=spent,
    )
    return resp.body, resp.request_id


async def _fetch_one(
    policy: SendPolicy, key: QueueKey, params: Mapping[str, str] | None, spent: int, code: str
) -> _Fetched:
    body, request_id = await _get(policy, key, f"/signals/{code}", params, spent)
    fetched = _Fetched(request_id)
    data = body.get("data") if type(body) is dict else None
    # Live answers wrap the signal in "data"; the docs' examples do not.
    resource, at = (data, (("attr", "data"),)) if type(data) is dict else (body, ())
    _add_signal(fetched, resource, at)
    return fetched


async def _fetch_vehicle(
    policy: SendPolicy, key: QueueKey, params: Mapping[str, str] | None, spent: int
) -> _Fetched:
    body, request_id = await _get(policy, key, "", params, spent)
    fetched = _Fetched(request_id)
    fetched.vehicle = _vehicle(body, (), request_id)
    return fetched


async def _fetch_all(
    policy: SendPolicy,
    key: QueueKey,
    params: Mapping[str, str] | None,
    spent: int,
    batch: bool,
    wanted: frozenset[str] | None,
) -> _Fetched:
    body, request_id = await _get(policy, key, "/signals", params, spent, batch)
    fetched = _Fetched(request_id, wanted)
    _read_page(fetched, body, request_id)
    fetched.meta = _signals_meta(body, fetched.meta)
    pages, offset = 1, _count(body)
    while (query := _next_page(body, offset)) is not None:
        if pages >= MAX_PAGES:
            raise InvalidResponseError(
                f"The /signals answer has more than {MAX_PAGES} pages", request_id=request_id
            )
        body, _ = await _get(policy, key, "/signals", {**(params or {}), **query}, spent)
        if not _count(body):
            break
        _read_page(fetched, body, request_id, offset)
        pages, offset = pages + 1, offset + _count(body)
    if pages > 1:
        meta = fetched.meta
        fetched.meta = SignalsMeta(
            request_id=meta.request_id,
            fetched_at=meta.fetched_at,
            total_count=meta.total_count,
            page_size=meta.page_size,
            pages=pages,
        )
    return fetched


def _count(body: Any) -> int:
    data = body.get("data") if type(body) is dict else None
    return len(data) if type(data) is list else 0


def _read_page(fetched: _Fetched, body: Any, request_id: str | None, offset: int = 0) -> None:
    data = body.get("data") if type(body) is dict else None
    if type(data) is not list:
        raise InvalidResponseError(
            "The /signals answer has no 'data' list", field="data", request_id=request_id
        )
    for index, resource in enumerate(data):
        _add_signal(fetched, resource, (("attr", "data"), ("index", offset + index)))
    included = body.get("included")
    if fetched.vehicle is None and type(included) is dict and "vehicle" in included:
        at: Path = (("attr", "included"), ("attr", "vehicle"))
        fetched.vehicle = _vehicle(included["vehicle"], at, request_id)


def _add_signal(fetched: _Fetched, resource: object, at: Path) -> None:
    code = _code_of(resource)
    if code is None or code in fetched.signals:
        return  # nothing to route it by, or a repeat: the first answer wins
    wanted = fetched.wanted
    if wanted is not None and code not in wanted:
        return
    try:
        fetched.signals[code] = read_signal(resource, fetched.request_id, at)
    except Mismatch as exc:
        fetched.signals[code] = invalid_response(Signal, exc, fetched.request_id)


def _code_of(resource: object) -> str | None:
    if type(resource) is not dict:
        return None
    attributes = resource.get("attributes")
    code = attributes.get("code") if type(attributes) is dict else resource.get("code")
    if type(code) is not str:
        code = resource.get("id")
    return code if type(code) is str and code else None


def _vehicle(raw: object, at: Path, request_id: str | None) -> Attributes | SmartcarError:
    try:
        return read_vehicle(raw, at)
    except Mismatch as exc:
        return invalid_response(Attributes, exc, request_id)


def _signals_meta(body: Any, meta: SignalsMeta) -> SignalsMeta:
    wire = body.get("meta") if type(body) is dict else None
    if type(wire) is not dict:
        return meta
    total, size = wire.get("totalCount"), wire.get("pageSize")
    return SignalsMeta(
        request_id=meta.request_id,
        fetched_at=meta.fetched_at,
        total_count=total if type(total) is int else None,
        page_size=size if type(size) is int else None,
    )


def _next_page(body: Any, received: int) -> dict[str, str] | None:
    """The query of the next page, or None when every signal has arrived."""
    meta = body.get("meta") if type(body) is dict else None
    meta = meta if type(meta) is dict else {}
    total = meta.get("totalCount")
    if type(total) is not int or received >= total:
        return None
    links = body.get("links")
    link = links.get("next") if type(links) is dict else None
    if type(link) is str and link:
        try:
            query = dict(parse_qsl(urlsplit(link).query))
        except ValueError:  # not a URL ("http://[x"): no page to follow
            return None
        return query or None
    number, size = meta.get("pageNumber", meta.get("page")), meta.get("pageSize")
    if type(number) is not int or type(size) is not int or size < 1:
        return None
    if not -_INT_MAX <= number < _INT_MAX:
        return None  # no real page number; and str(number + 1) fails past 4,300 digits
    if "pageNumber" in meta:
        return {"page[number]": str(number + 1), "page[size]": str(size)}
    return {"page": str(number + 1), "pageSize": str(size)}


# --- routing -----------------------------------------------------------------


def _failed(error: SmartcarError) -> RawItem:
    return RawItem(0, None, {}, error)


def _missing(code: str, request_id: str | None) -> SmartcarError:
    # Live: a signal not yet ingested is left out of /signals (a 404 on its own).
    return ResourceNotFoundError(
        f"RESOURCE_NOT_FOUND:SIGNAL_NOT_FOUND - The answer has no signal {code!r}",
        type="RESOURCE_NOT_FOUND",
        code="SIGNAL_NOT_FOUND",
        status_code=404,
        description=f"No signal {code!r} in the answer (not ingested, or not listed)",
        request_id=request_id,
    )


def _item(path: str, fetched: _Fetched, key: QueueKey) -> RawItem:
    if path == ALL:
        return _all_item(fetched)
    if path.startswith("/"):
        return _v2_item(path, fetched, key.unit_system)
    outcome = fetched.signals.get(path)
    if outcome is None:
        return _failed(_missing(path, fetched.request_id))
    if isinstance(outcome, SmartcarError):
        return _failed(outcome)
    if outcome.error is not None:
        return _failed(outcome.error)
    return RawItem(200, outcome, {})


def _all_item(fetched: _Fetched) -> RawItem:
    signals: dict[str, Signal] = {}
    for outcome in fetched.signals.values():
        if isinstance(outcome, SmartcarError):
            return _failed(outcome)
        signals[outcome.code] = outcome
    vehicle = fetched.vehicle if isinstance(fetched.vehicle, Attributes) else None
    return RawItem(200, Signals(signals, fetched.meta, vehicle), {})


def _v2_item(path: str, fetched: _Fetched, unit_system: str) -> RawItem:
    read = V2_READS.get(path)
    if read is None:
        # A v3 handle refuses these before queueing them; this is the backstop.
        return _failed(CompatibilityError(f"{path} has no Smartcar API v3 equivalent"))
    if path == "/":
        vehicle = fetched.vehicle
        if isinstance(vehicle, Attributes):
            body = {"id": vehicle.id, "make": vehicle.make, "model": vehicle.model}
            return RawItem(200, {**body, "year": vehicle.year}, {})
        return _failed(vehicle or InvalidResponseError("The answer has no vehicle"))
    found: dict[str, Signal] = {}
    for code in read.codes:
        outcome = fetched.signals.get(code)
        if isinstance(outcome, Signal) and outcome.error is None:
            found[code] = outcome
        elif code in read.required:
            if outcome is None:
                return _failed(_missing(code, fetched.request_id))
            error = outcome if isinstance(outcome, SmartcarError) else outcome.error
            assert error is not None
            return _failed(error)
    try:
        body = read.build(found, unit_system)
    except Mismatch as exc:
        return _failed(invalid_response(model_for_path(path), exc, fetched.request_id))
    return RawItem(200, body, _headers(found, read.required, unit_system, fetched.request_id))


def _headers(
    found: Mapping[str, Signal], required: tuple[str, ...], unit_system: str, rid: str | None
) -> dict[str, str]:
    """The v2 ``SC-*`` headers of a v2 read rebuilt from signals (its model's ``meta``)."""
    headers = {"sc-unit-system": unit_system}
    if rid is not None:
        headers["sc-request-id"] = rid
    first = found.get(required[0]) if required else None
    if first is not None:
        if first.oem_updated_at is not None:
            headers["sc-data-age"] = first.oem_updated_at.isoformat()
        if first.retrieved_at is not None:
            headers["sc-fetched-at"] = first.retrieved_at.isoformat()
    return headers
