"""Hooks, events and counters: how users watch the client without us depending on their stack.

Hooks are plain callables typed as Protocols, so a Prometheus counter, an
OpenTelemetry span or a logging call all plug in the same way. A hook that
raises is logged and ignored: metrics must never break a request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from ._exceptions import SmartcarError

__all__ = [
    "BatchFlushed",
    "BatchHook",
    "ClientStats",
    "ResponseHook",
    "ResponseReceived",
]

logger = logging.getLogger("smartcar_async")


@attrs.frozen
class BatchFlushed:
    """A vehicle queue was flushed into one HTTP request.

    ``callers`` counts the awaiting calls the request serves; ``deduplicated``
    how many of them shared a path with another caller instead of adding one.
    """

    vehicle_id: str
    paths: tuple[str, ...]
    callers: int
    deduplicated: int
    as_batch: bool


@attrs.frozen
class ResponseReceived:
    """One HTTP exchange finished (success, API error or transport failure)."""

    method: str
    path: str
    vehicle_id: str | None
    status: int | None
    latency: float
    error: str | None


class BatchHook(Protocol):
    """Called synchronously each time a queue flushes."""

    def __call__(self, event: BatchFlushed, /) -> None: ...


class ResponseHook(Protocol):
    """Called synchronously after each HTTP exchange."""

    def __call__(self, event: ResponseReceived, /) -> None: ...


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
    ``rate_limited`` the 429s received (whole requests and batch items).
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

    @property
    def coalescing_ratio(self) -> float:
        """Logical reads served per read HTTP request (1.0 means no coalescing)."""
        read_requests = self.batches + self.single_gets
        return self.logical_reads / read_requests if read_requests else 0.0


class Counters:
    """The mutable counters behind :class:`ClientStats` (plain ints: cheap to bump)."""

    __slots__ = (
        "batches",
        "dedupe_hits",
        "errors",
        "failed_requests",
        "http_requests",
        "inflight_joins",
        "logical_reads",
        "rate_limited",
        "retries",
        "single_gets",
        "sub_requests",
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

    def snapshot(self) -> ClientStats:
        return ClientStats(**{name: getattr(self, name) for name in self.__slots__})


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
    """The hooks one client calls, with the exception boundary around each."""

    __slots__ = ("on_batch", "on_response")

    def __init__(self, on_batch: Sequence[BatchHook], on_response: Sequence[ResponseHook]) -> None:
        self.on_batch = tuple(on_batch)
        self.on_response = tuple(on_response)

    def batch_flushed(self, event: BatchFlushed) -> None:
        for hook in self.on_batch:
            try:
                hook(event)
            except Exception:
                logger.exception("on_batch hook %r raised; ignored", hook)

    def response_received(self, event: ResponseReceived) -> None:
        for hook in self.on_response:
            try:
                hook(event)
            except Exception:
                logger.exception("on_response hook %r raised; ignored", hook)
