"""Prometheus metrics for smartcar_async, on the client's hooks.

Install the extra (``pip install 'smartcar-async[metrics]'``), then::

    from prometheus_client import CollectorRegistry
    from smartcar_async.metrics import PrometheusHooks

    registry = CollectorRegistry()
    metrics = PrometheusHooks(registry=registry)
    async with smartcar_async.Client(hooks=metrics) as client:
        ...

and expose ``registry`` the way your service already does (or call
:func:`serve_metrics`). One :class:`PrometheusHooks` per registry; give the
same instance to every client whose figures it should add up.

Metrics (``smartcar_async`` is the default ``namespace``):

* ``smartcar_async_http_requests_total{kind, outcome}``: HTTP exchanges, each
  retry one of its own; ``kind`` is ``batch``, ``get`` or ``write``, ``outcome``
  is ``ok`` or the error class (``RateLimitError``, ``APITimeoutError``...).
* ``smartcar_async_request_duration_seconds{kind}``: histogram of the same
  exchanges, buckets from 50 ms to 300 s (:data:`DEFAULT_BUCKETS`).
* ``smartcar_async_logical_reads_total``, ``..._deduplicated_reads_total``,
  ``..._writes_total``: what callers asked for, and the reads that shared
  another caller's path (read from ``client.stats`` at each scrape).
* ``smartcar_async_shared_state_unavailable_total``: requests sent on local
  gates and pacing alone because the shared state (``Client(state=RedisState(...))``)
  could not be reached (read from ``client.stats`` at each scrape).
* ``smartcar_async_billed_requests_total``: what Smartcar bills for the
  requests sent (one per batch path, single GET and write, retries included;
  read from ``client.stats`` at each scrape).
* ``smartcar_async_reused_reads_total``, ``..._webhook_reused_reads_total``,
  ``..._webhook_readings_ingested_total``: reads answered without a request
  (``max_age``), those of them answered by webhook readings, and the readings
  ``client.ingest_webhook`` stored (read from ``client.stats`` at each scrape).
* ``smartcar_async_retries_total{error}``: reads sent again, by the failure
  that caused it (a whole request, or one batch item).
* ``smartcar_async_rate_limits_total{scope}``: 429s, ``scope`` ``vehicle`` or
  ``application`` (RATE_LIMIT:SMARTCAR_API).
* ``smartcar_async_errors_total{type, error}``: error answers and failures,
  one per failed exchange and one per failed batch item, retried or not;
  ``type`` is Smartcar's (``RATE_LIMIT``, ``COMPATIBILITY``..., empty for
  network errors), ``error`` the class.
* For the fleet poller (its runner calls the methods):
  ``smartcar_async_poll_results_total{outcome}`` (``ok``, ``error``,
  ``parked``, ``skipped``), the gauges ``smartcar_async_vehicles_gated`` and
  ``smartcar_async_reads_parked``, ``smartcar_async_vehicles_near_budget``
  (at or past 80% of ``monthly_budget``), and
  ``smartcar_async_token_refreshes_total{outcome}`` (``ok``, ``error``).

No label ever holds a vehicle id, a path, a token or any text the server
chose: every label value comes from a small fixed set, so the number of series
stays bounded whatever the fleet's size. (A per-vehicle series would be one
per car per label combination: watch single vehicles with the hooks or the
logs instead.)

The counters stay in step with ``client.stats``: ``http_requests_total`` sums to
``stats.http_requests``, ``retries_total`` to ``stats.retries``,
``rate_limits_total`` to ``stats.rate_limited``; the logical, deduplicated and
write counts are read from ``client.stats`` at each scrape, summed over the
clients this object was given to. (An exchange cancelled mid-flight, because its
callers left or the client closed, is counted in ``stats.http_requests`` but
reports no outcome, so it is in neither metric.)

Added in 0.1.0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final, Literal, get_args
from wsgiref.simple_server import WSGIServer

try:
    import prometheus_client
    from prometheus_client.metrics_core import CounterMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ModuleNotFoundError(
        "smartcar_async.metrics needs the prometheus-client package: "
        "pip install 'smartcar-async[metrics]'",
        name="prometheus_client",
    ) from exc

from ._exceptions import _BY_TYPE, SmartcarError
from ._observability import (
    ClientHooks,
    ClientStats,
    ItemFailed,
    RateLimited,
    ResponseReceived,
    RetryScheduled,
)

if TYPE_CHECKING:
    from ._poller import PollResult

__all__ = [
    "DEFAULT_BUCKETS",
    "MetricsServer",
    "PollOutcome",
    "PrometheusHooks",
    "poll_outcome",
    "serve_metrics",
]

#: Latency buckets in seconds: a loopback or cached answer takes tens of
#: milliseconds, Smartcar documents 3 to 45 s when the car must answer, and a
#: slow batch behind a Retry-After takes minutes.
DEFAULT_BUCKETS: Final[tuple[float, ...]] = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    45.0,
    60.0,
    120.0,
    300.0,
)

PollOutcome = Literal["ok", "error", "parked", "skipped"]
_POLL_OUTCOMES: Final = frozenset(get_args(PollOutcome))
_KINDS: Final = ("batch", "get", "write")

# Smartcar's v2 error type for each API error class (the upper-case keys are v2).
_TYPE_OF: Final = {cls.__name__: kind for kind, cls in _BY_TYPE.items() if kind.isupper()}


def _error_names() -> frozenset[str]:
    names: set[str] = set()
    pending: list[type[BaseException]] = [SmartcarError]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("smartcar_async") and cls.__name__ not in names:
            names.add(cls.__name__)
            pending.extend(cls.__subclasses__())
    return frozenset(names)


# Label values must come from a fixed set: a class name we do not know (a
# user's subclass, say) is counted as "other" rather than opening a new series.
_ERRORS: Final = _error_names()


def _error_label(name: str) -> str:
    return name if name in _ERRORS else "other"


def _kind(method: str, path: str) -> str:
    if method == "GET":
        return "get"
    return "batch" if method == "POST" and path == "/batch" else "write"


def poll_outcome(result: PollResult) -> PollOutcome:
    """How :meth:`PrometheusHooks.poll_result` files a poll result.

    ``skipped`` for a round the vehicle was not read in; ``error`` when a read
    failed; ``parked`` when nothing was requested because every read (or the
    vehicle) is parked; ``ok`` otherwise.

    Added in 0.1.0.
    """
    if result.skipped is not None:
        return "skipped"
    if result.errors:
        return "error"
    if not result.values and getattr(result, "parked", None):
        return "parked"
    return "ok"


class PrometheusHooks(ClientHooks):
    """Client hooks that keep Prometheus metrics (see the module's docstring for the list).

    Give it to clients as ``Client(hooks=metrics)``. ``registry`` defaults to
    prometheus_client's global ``REGISTRY``; ``namespace`` prefixes every
    metric name. Building a second instance on the same registry raises
    ``ValueError`` (duplicated series): share one.

    The poller's figures have methods for the code that runs it to call:
    :meth:`poll_result`, :meth:`set_vehicles_gated`, :meth:`set_reads_parked`
    and :meth:`token_refreshed`.

    Every method is quick and safe from any thread; a scrape reads the clients'
    counters without touching their event loop. The object keeps a reference
    to each attached client's counters (a few hundred bytes, not the client).

    Added in 0.1.0.
    """

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry | None = None,
        *,
        namespace: str = "smartcar_async",
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self.namespace = namespace
        reg = self.registry
        self._requests = prometheus_client.Counter(
            "http_requests",
            "HTTP exchanges with the Smartcar API, retries included, by kind and outcome.",
            ["kind", "outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._latency = prometheus_client.Histogram(
            "request_duration_seconds",
            "Duration of HTTP exchanges with the Smartcar API, by kind.",
            ["kind"],
            namespace=namespace,
            registry=reg,
            buckets=tuple(buckets),
        )
        self._retries = prometheus_client.Counter(
            "retries",
            "Reads sent again, by the error that caused it.",
            ["error"],
            namespace=namespace,
            registry=reg,
        )
        self._rate_limits = prometheus_client.Counter(
            "rate_limits",
            "429 answers (whole requests and batch items) by scope: vehicle or application.",
            ["scope"],
            namespace=namespace,
            registry=reg,
        )
        self._errors = prometheus_client.Counter(
            "errors",
            "Error answers and transport failures (per exchange and per batch item), by "
            "Smartcar error type and error class.",
            ["type", "error"],
            namespace=namespace,
            registry=reg,
        )
        self._polls = prometheus_client.Counter(
            "poll_results",
            "Fleet poller results by outcome: ok, error, parked, skipped.",
            ["outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._gated = prometheus_client.Gauge(
            "vehicles_gated",
            "Vehicles the poller holds back (rate limit, backoff).",
            namespace=namespace,
            registry=reg,
        )
        self._parked = prometheus_client.Gauge(
            "reads_parked",
            "Reads the poller does not request (COMPATIBILITY or PERMISSION answers).",
            namespace=namespace,
            registry=reg,
        )
        self._near_budget = prometheus_client.Gauge(
            "vehicles_near_budget",
            "Vehicles at or past 80% of the poller's monthly budget of billed requests.",
            namespace=namespace,
            registry=reg,
        )
        self._refreshes = prometheus_client.Counter(
            "token_refreshes",
            "Access token refreshes by outcome: ok, error.",
            ["outcome"],
            namespace=namespace,
            registry=reg,
        )
        self._stats: list[Callable[[], ClientStats]] = []
        self._stats_lock = threading.Lock()
        self._collector = _StatsCollector(namespace, self._snapshots)
        self.registry.register(self._collector)
        # Series that exist from the start, so rate() and alerts see a 0 before the first event.
        for kind in _KINDS:
            self._requests.labels(kind, "ok")
            self._latency.labels(kind)
        for scope in ("vehicle", "application"):
            self._rate_limits.labels(scope)
        for outcome in sorted(_POLL_OUTCOMES):
            self._polls.labels(outcome)
        for outcome in ("ok", "error"):
            self._refreshes.labels(outcome)

    # ---------------------------------------------------------- client hooks

    def attach(self, stats: Callable[[], ClientStats], /) -> None:
        with self._stats_lock:
            self._stats.append(stats)

    def on_response(self, event: ResponseReceived, /) -> None:
        kind = _kind(event.method, event.path)
        error = event.error
        if error is None:
            self._requests.labels(kind, "ok").inc()
        else:
            label = _error_label(error)
            self._requests.labels(kind, label).inc()
            self._errors.labels(_TYPE_OF.get(label, ""), label).inc()
        self._latency.labels(kind).observe(event.latency)

    def on_retry(self, event: RetryScheduled, /) -> None:
        self._retries.labels(_error_label(event.error)).inc()

    def on_rate_limit(self, event: RateLimited, /) -> None:
        self._rate_limits.labels(event.scope).inc()

    def on_item_error(self, event: ItemFailed, /) -> None:
        label = _error_label(event.error)
        self._errors.labels(_TYPE_OF.get(label, ""), label).inc()

    # ---------------------------------------------------------- poller figures

    def poll_result(self, result: PollResult) -> None:
        """Count one :class:`~smartcar_async.PollResult` by outcome (see :func:`poll_outcome`)."""
        self._polls.labels(poll_outcome(result)).inc()

    def count_poll(self, outcome: PollOutcome, amount: int = 1) -> None:
        """Count poll results whose outcome the caller already knows."""
        if outcome not in _POLL_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_POLL_OUTCOMES)}, not {outcome!r}")
        self._polls.labels(outcome).inc(amount)

    def set_vehicles_gated(self, count: int) -> None:
        """How many vehicles are held back right now (rate limit, backoff, parked vehicle)."""
        self._gated.set(count)

    def set_reads_parked(self, count: int) -> None:
        """How many (vehicle, read) pairs are parked right now."""
        self._parked.set(count)

    def set_vehicles_near_budget(self, count: int) -> None:
        """How many vehicles are at or past 80% of ``monthly_budget`` this month."""
        self._near_budget.set(count)

    def token_refreshed(self, *, ok: bool = True) -> None:
        """Count one access-token refresh (``ok=False`` for one that failed)."""
        self._refreshes.labels("ok" if ok else "error").inc()

    # -------------------------------------------------------------- internals

    def _snapshots(self) -> list[ClientStats]:
        with self._stats_lock:
            sources = list(self._stats)
        return [stats() for stats in sources]


class _StatsCollector(Collector):
    """The counters a client keeps anyway (per read, too hot for a hook), read at scrape time."""

    _FIELDS: Final = (
        ("logical_reads", "logical_reads", "Reads callers asked for."),
        (
            "deduplicated_reads",
            "dedupe_hits",
            "Reads that shared another caller's pending or in-flight path.",
        ),
        ("writes", "writes", "Writes callers asked for."),
        (
            "billed_requests",
            "billed_requests",
            "Billed requests sent: one per batch path, single GET and write, retries included.",
        ),
        (
            "reused_reads",
            "reused_reads",
            "Reads of handles with max_age answered from a stored answer, without a request.",
        ),
        (
            "webhook_reused_reads",
            "webhook_reused_reads",
            "Reused reads answered by a webhook reading (client.ingest_webhook).",
        ),
        (
            "webhook_readings_ingested",
            "webhook_readings_ingested",
            "Readings client.ingest_webhook stored.",
        ),
        (
            "shared_state_unavailable",
            "shared_state_unavailable",
            "Requests sent on local gates and pacing alone: the shared state was unreachable.",
        ),
    )

    def __init__(self, namespace: str, snapshots: Callable[[], list[ClientStats]]) -> None:
        self._namespace = namespace
        self._snapshots = snapshots

    def _families(self, values: Callable[[str], float] | None) -> Iterator[Metric]:
        for name, field, doc in self._FIELDS:
            full = f"{self._namespace}_{name}" if self._namespace else name
            yield CounterMetricFamily(full, doc, value=None if values is None else values(field))

    def describe(self) -> Iterator[Metric]:
        return self._families(None)

    def collect(self) -> Iterator[Metric]:
        snapshots = self._snapshots()
        return self._families(lambda field: sum(getattr(s, field) for s in snapshots))


class MetricsServer:
    """A running metrics endpoint (see :func:`serve_metrics`); close it when done.

    Added in 0.1.0.
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str, port: int) -> None:
        self._server: WSGIServer | None = server
        self._thread = thread
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and wait for the server's thread: idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"


def serve_metrics(
    port: int,
    *,
    host: str = "127.0.0.1",
    registry: prometheus_client.CollectorRegistry | None = None,
) -> MetricsServer:
    """Serve ``registry`` (default: the global one) as Prometheus text at ``http://host:port/metrics``.

    The server runs in a daemon thread; ``port=0`` picks a free port (read it
    from ``.port``). It listens on loopback unless ``host`` says otherwise.

    Added in 0.1.0.
    """
    server, thread = prometheus_client.start_http_server(
        port, addr=host, registry=registry if registry is not None else prometheus_client.REGISTRY
    )
    return MetricsServer(server, thread, host, server.server_port)
