"""Hooks, events and counters: how users watch the client without us depending on their stack.

Hooks are plain callables typed as Protocols, so a Prometheus counter, an
OpenTelemetry span or a logging call all plug in the same way. A hook that
raises is logged and ignored: metrics must never break a request.

Hooks run synchronously, in the event loop, on the request path. An
``async def`` hook is refused with ``TypeError`` when the client is built:
nothing would ever await it, and awaiting it would put the user's metrics
backend on the critical path of every read (see :class:`Hooks`).

:class:`ClientHooks` bundles every hook kind in one object (the Prometheus
adapter in :mod:`smartcar_async.metrics` is one); its events for retries, rate
limits and failed batch items are only ever built when some hook wants them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import attrs

if TYPE_CHECKING:
    from ._exceptions import SmartcarError

__all__ = [
    "BatchFlushed",
    "BatchHook",
    "ClientHooks",
    "ClientStats",
    "ItemFailed",
    "RateLimitScope",
    "RateLimited",
    "ResponseHook",
    "ResponseReceived",
    "RetryScheduled",
]

logger = logging.getLogger("smartcar_async")
# A library should not print: with no handler on its logger, Python's last-resort
# handler writes our warnings (rate limits) to stderr of a script that configured no
# logging. The check keeps a reload of this module from adding a second one.
if not any(type(handler) is logging.NullHandler for handler in logger.handlers):
    logger.addHandler(logging.NullHandler())

RateLimitScope = Literal["vehicle", "application"]


@attrs.frozen
class BatchFlushed:
    """A vehicle queue was flushed into one HTTP request.

    ``callers`` counts the awaiting calls the request serves; ``deduplicated``
    how many of them shared a path with another caller instead of adding one.

    Added in 0.1.0.
    """

    vehicle_id: str
    paths: tuple[str, ...]
    callers: int
    deduplicated: int
    as_batch: bool


@attrs.frozen
class ResponseReceived:
    """One HTTP exchange finished (success, API error or transport failure). Added in 0.1.0."""

    method: str
    path: str
    vehicle_id: str | None
    status: int | None
    latency: float
    error: str | None


@attrs.frozen
class RetryScheduled:
    """A failed read will be sent again after ``delay`` seconds.

    ``path`` is the request's path (``"/batch"`` for a whole batch) or, when
    ``item`` is True, the one batch item that is queued again on its own (after
    a per-item 429 or 5xx; the batch's other items were delivered). ``attempt``
    numbers the retries of that read from 1; ``error`` is the failure's class
    name (``"RateLimitError"``, ``"APITimeoutError"``...).

    Added in 0.1.0.
    """

    vehicle_id: str | None
    path: str
    attempt: int
    error: str
    delay: float
    item: bool = False


@attrs.frozen
class RateLimited:
    """A 429 arrived, for a whole request or for one batch item.

    ``scope`` is ``"application"`` for RATE_LIMIT:SMARTCAR_API (every vehicle
    waits) and ``"vehicle"`` otherwise; ``retry_after`` is the server's
    ``Retry-After`` in seconds (None when it sent none) and ``wait`` how long
    the client now holds that scope back.

    Added in 0.1.0.
    """

    vehicle_id: str | None
    scope: RateLimitScope
    retry_after: float | None
    wait: float


@attrs.frozen
class ItemFailed:
    """One path of a batch came back as an error inside a successful (200) batch.

    ``status`` is the item's code (None when the batch had no answer for the
    path at all); ``error`` the class name of the error it became. A whole
    request that failed is a :class:`ResponseReceived` with ``error`` set.

    Added in 0.1.0.
    """

    vehicle_id: str
    path: str
    status: int | None
    error: str


class BatchHook(Protocol):
    """Called synchronously each time a queue flushes. Added in 0.1.0."""

    def __call__(self, event: BatchFlushed, /) -> None: ...


class ResponseHook(Protocol):
    """Called synchronously after each HTTP exchange. Added in 0.1.0."""

    def __call__(self, event: ResponseReceived, /) -> None: ...


class ClientHooks:
    """Every hook kind in one object: subclass it and override what you need.

    Give instances to ``Client(hooks=...)``. Only the methods a subclass
    overrides are ever called, so a hook kind nobody watches costs nothing.
    Like every hook, the methods run synchronously in the event loop (they
    must not block, and ``async def`` overrides are refused); an exception
    they raise is logged and ignored. One instance may serve several clients.

    Added in 0.1.0.
    """

    def attach(self, stats: Callable[[], ClientStats], /) -> None:
        """Called once by each client given this object, when it is built.

        ``stats`` returns a fresh :class:`ClientStats` snapshot of that client
        (cheap; it holds no reference to the client, only to its counters).
        """

    def on_batch(self, event: BatchFlushed, /) -> None:
        """A vehicle queue was flushed into one HTTP request."""

    def on_response(self, event: ResponseReceived, /) -> None:
        """One HTTP exchange finished (also each retry of it)."""

    def on_retry(self, event: RetryScheduled, /) -> None:
        """A failed read (a whole request, or one batch item) will be sent again."""

    def on_rate_limit(self, event: RateLimited, /) -> None:
        """A 429 arrived for a whole request or a batch item."""

    def on_item_error(self, event: ItemFailed, /) -> None:
        """One item of a successful batch was an error (or missing)."""


@attrs.frozen
class ClientStats:
    """A snapshot of a client's counters since it was created.

    ``logical_reads`` are read calls made by users; ``http_requests`` the
    requests that went over the wire, each attempt counted, and split by kind:
    ``batches`` (``POST /batch``), ``single_gets`` and ``writes``, so that
    ``http_requests == batches + single_gets + writes``. ``retries`` are the
    requests among them that the retry policy sent again: a request repeated
    after it failed, or one carrying reads re-queued after their batch items
    failed (so ``retries <= http_requests``). ``sub_requests`` are the paths
    sent inside batches; ``dedupe_hits`` the reads that joined another
    caller's pending or in-flight path instead of adding their own;
    ``errors`` the paths that failed (each shared path counted once);
    ``failed_requests`` the HTTP exchanges that ended in an error;
    ``rate_limited`` the 429s received (whole requests and batch items);
    ``shared_state_unavailable`` the requests a client with a shared state
    (``Client(state=RedisState(...))``) sent on its local gates and pacing
    alone because the shared store could not be reached (0 without one);
    ``billed_requests`` what Smartcar bills for the requests sent: one per
    batch path, single GET and write, each attempt counted as it is sent
    (an upper bound: see ``smartcar_async._quota``).
    ``reused_reads`` are the reads of handles with ``max_age`` answered from
    a stored answer without a request (counted in ``logical_reads`` too),
    ``webhook_reused_reads`` those of them answered by webhook readings, and
    ``webhook_readings_ingested`` the readings ``ingest_webhook`` stored.

    Added in 0.1.0. The reuse counters: 0.2.0.
    """

    logical_reads: int = 0
    writes: int = 0
    http_requests: int = 0
    batches: int = 0
    single_gets: int = 0
    sub_requests: int = 0
    dedupe_hits: int = 0
    inflight_joins: int = 0
    errors: int = 0
    failed_requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    shared_state_unavailable: int = 0
    reused_reads: int = 0
    webhook_reused_reads: int = 0
    webhook_readings_ingested: int = 0
    billed_requests: int = 0

    @property
    def coalescing_ratio(self) -> float:
        """Logical reads served per read HTTP request (1.0 means no coalescing)."""
        read_requests = self.batches + self.single_gets
        return self.logical_reads / read_requests if read_requests else 0.0


class Counters:
    """The mutable counters behind :class:`ClientStats` (plain ints: cheap to bump)."""

    __slots__ = (
        "batches",
        "billed_requests",
        "dedupe_hits",
        "errors",
        "failed_requests",
        "http_requests",
        "inflight_joins",
        "logical_reads",
        "rate_limited",
        "retries",
        "reused_reads",
        "shared_state_unavailable",
        "single_gets",
        "sub_requests",
        "webhook_readings_ingested",
        "webhook_reused_reads",
        "writes",
    )

    def __init__(self) -> None:
        self.logical_reads = 0
        self.writes = 0
        self.http_requests = 0
        self.batches = 0
        self.single_gets = 0
        self.sub_requests = 0
        self.dedupe_hits = 0
        self.inflight_joins = 0
        self.errors = 0
        self.failed_requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.shared_state_unavailable = 0
        self.reused_reads = 0
        self.webhook_reused_reads = 0
        self.webhook_readings_ingested = 0
        self.billed_requests = 0

    def snapshot(self) -> ClientStats:
        return ClientStats(**{name: getattr(self, name) for name in self.__slots__})


_HOOK_KINDS: Final = ("on_batch", "on_response", "on_retry", "on_rate_limit", "on_item_error")


def log_fields(event: str, vehicle_id: str, error: SmartcarError, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a log record about a request: for structured log handlers."""
    return {
        "event": event,
        "vehicle_id": vehicle_id,
        "error": type(error).__name__,
        "code": error.code,
        "request_id": error.request_id,
        **more,
    }


class Hooks:
    """The hooks one client calls, with the exception boundary around each.

    Each kind is a tuple, empty when nobody listens: the hot path tests it
    (``if hooks.on_response:``) before it builds an event, so an unwatched
    client pays one truth test per request and nothing per read.

    ``async def`` hooks are refused here, at construction, rather than run
    as tasks: a hook is called where the event happens (inside timer
    callbacks and the retry loop), so a task per event would be an unbounded
    pile of work behind a slow metrics backend, with ordering lost and a
    close that must wait for it. A hook that needs I/O should hand the event
    to its own queue or task.
    """

    __slots__ = _HOOK_KINDS

    def __init__(
        self,
        on_batch: Sequence[BatchHook] = (),
        on_response: Sequence[ResponseHook] = (),
        *,
        observers: ClientHooks | Sequence[ClientHooks] = (),
        stats: Callable[[], ClientStats] | None = None,
    ) -> None:
        found: dict[str, list[Callable[[Any], object]]] = {kind: [] for kind in _HOOK_KINDS}
        found["on_batch"] += _checked("on_batch", on_batch)
        found["on_response"] += _checked("on_response", on_response)
        if isinstance(observers, ClientHooks):
            observers = (observers,)
        elif not isinstance(observers, Sequence):
            raise TypeError(f"hooks must be a ClientHooks or a sequence of them, not {observers!r}")
        attachers: list[Callable[[Callable[[], ClientStats]], None]] = []
        for observer in observers:
            if not isinstance(observer, ClientHooks):
                raise TypeError(
                    f"hooks takes ClientHooks instances (subclass smartcar_async.ClientHooks), "
                    f"not {observer!r}"
                )
            if _overrides(observer, "attach"):
                attachers.append(_sync(f"{type(observer).__name__}.attach", observer.attach))
            for kind in _HOOK_KINDS:
                if _overrides(observer, kind):
                    found[kind].append(
                        _sync(f"{type(observer).__name__}.{kind}", getattr(observer, kind))
                    )
        self.on_batch = tuple(found["on_batch"])
        self.on_response = tuple(found["on_response"])
        self.on_retry = tuple(found["on_retry"])
        self.on_rate_limit = tuple(found["on_rate_limit"])
        self.on_item_error = tuple(found["on_item_error"])
        if stats is not None:
            for attach in attachers:
                attach(stats)

    def batch_flushed(self, event: BatchFlushed) -> None:
        _call("on_batch", self.on_batch, event)

    def response_received(self, event: ResponseReceived) -> None:
        _call("on_response", self.on_response, event)

    # The calls below sit on failure paths only; each builds its event only
    # when a hook listens.

    def retry_scheduled(
        self,
        vehicle_id: str | None,
        path: str,
        attempt: int,
        error: BaseException,
        delay: float,
        *,
        item: bool = False,
    ) -> None:
        if self.on_retry:
            event = RetryScheduled(vehicle_id, path, attempt, type(error).__name__, delay, item)
            _call("on_retry", self.on_retry, event)

    def rate_limited(
        self, vehicle_id: str | None, code: str | None, retry_after: float | None, wait: float
    ) -> None:
        if self.on_rate_limit:
            scope: RateLimitScope = "application" if code == "SMARTCAR_API" else "vehicle"
            _call(
                "on_rate_limit",
                self.on_rate_limit,
                RateLimited(vehicle_id, scope, retry_after, wait),
            )

    def item_failed(
        self, vehicle_id: str, path: str, status: int | None, error: BaseException
    ) -> None:
        if self.on_item_error:
            event = ItemFailed(vehicle_id, path, status, type(error).__name__)
            _call("on_item_error", self.on_item_error, event)


def _call(kind: str, hooks: tuple[Callable[[Any], object], ...], event: object) -> None:
    for hook in hooks:
        try:
            result = hook(event)
        except Exception:
            logger.exception("%s hook %r raised; ignored", kind, hook)
            continue
        if result is not None and inspect.isawaitable(result):
            # A sync callable that returns a coroutine (a lambda around an async
            # def) slips past the construction check: close it instead of
            # leaving a "never awaited" warning, and say so.
            close = getattr(result, "close", None)
            if close is not None:
                close()
            logger.error("%s hook %r returned an awaitable; hooks are not awaited", kind, hook)


def _checked(kind: str, hooks: Sequence[Callable[[Any], object]]) -> list[Callable[[Any], object]]:
    if callable(hooks) or isinstance(hooks, str | bytes):
        # The usual slip: on_batch=hook instead of on_batch=[hook].
        raise TypeError(f"{kind} takes a sequence of callables, e.g. [hook], not {hooks!r}")
    try:
        listed = list(hooks)
    except TypeError:
        raise TypeError(f"{kind} takes a sequence of callables, not {hooks!r}") from None
    return [_sync(kind, hook) for hook in listed]


def _sync(kind: str, hook: Any) -> Any:
    """The hook itself, if it is a plain (non-async) callable; TypeError otherwise."""
    if not callable(hook):
        raise TypeError(f"{kind} hooks must be callables, not {hook!r}")
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        type(hook).__call__  # an object whose __call__ is an async def
    ):
        raise TypeError(
            f"{kind} hook {hook!r} is an async def: hooks are called synchronously in the event "
            f"loop and are never awaited. Use a plain def (hand slow work to your own task or "
            f"queue)."
        )
    return hook


def _overrides(observer: ClientHooks, name: str) -> bool:
    return getattr(type(observer), name, None) is not getattr(ClientHooks, name)
