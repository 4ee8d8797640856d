"""``poll --metrics-port``: the run's figures as Prometheus metrics, served while it runs.

The command keeps its own registry (never prometheus_client's global one), so
the exposition holds only ``smartcar_async_*`` series: the client's, through
:class:`~smartcar_async.metrics.PrometheusHooks`, and the poller's, fed here
from each result of the main job (the summary's "Polls" count the same ones).

Without ``--metrics-port`` the run reports to a :class:`RunMetrics` that does
nothing, so the command calls the same methods either way.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import AsyncIterator
from time import monotonic
from typing import TYPE_CHECKING, Final

import anyio

from .._observability import ClientHooks
from ._logs import CLI_LOGGER

if TYPE_CHECKING:
    from .._poller import FleetPoller, PollResult
    from ..metrics import MetricsServer, PrometheusHooks

__all__ = [
    "DEFAULT_METRICS_HOST",
    "INSTALL_HINT",
    "MetricsUnavailable",
    "RunMetrics",
    "add_metrics_arguments",
    "check_metrics_arguments",
    "start_run_metrics",
]

DEFAULT_METRICS_HOST: Final = "127.0.0.1"
INSTALL_HINT: Final = "pip install 'smartcar-async[metrics]'"
#: The gauges count over every vehicle: refreshed at most this often as
#: results arrive, and on this timer when none do (a back-off ends quietly).
GAUGE_PERIOD: Final = 1.0


class MetricsUnavailable(Exception):
    """The metrics endpoint cannot be served: ``exit_status`` says whether retrying may help.

    2 for what no retry fixes (prometheus-client missing), 1 for what the
    environment refused now (the port is in use: the previous instance may
    still hold it, and a restart a few seconds later succeeds).
    """

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics")
    group.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help=(
            "serve Prometheus metrics (smartcar_async_*) at http://HOST:PORT/metrics while "
            "the run lasts; needs the 'metrics' extra (prometheus-client); 0 picks a free "
            "port, logged at the start"
        ),
    )
    group.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        metavar="HOST",
        help=f"address the metrics endpoint listens on (default {DEFAULT_METRICS_HOST})",
    )


def check_metrics_arguments(args: argparse.Namespace) -> str | None:
    """A usage error in the metrics flags (prometheus-client missing among them), or None."""
    port = args.metrics_port
    if port is None:
        if args.metrics_host != DEFAULT_METRICS_HOST:
            return "--metrics-host needs --metrics-port"
        return None
    if not 0 <= port <= 65_535:
        return "--metrics-port must be within 0..65535"
    try:
        _load()
    except MetricsUnavailable as exc:
        return str(exc)
    return None


def _load() -> None:
    """Import what the endpoint needs, or say how to install it."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        # Missing, or installed but broken: either way, the same fix.
        raise MetricsUnavailable(
            f"--metrics-port needs the prometheus-client package: {INSTALL_HINT}", 2
        ) from None
    from .. import metrics  # noqa: F401


class RunMetrics:
    """What a run reports to; this one keeps nothing (no ``--metrics-port``)."""

    @property
    def hooks(self) -> tuple[ClientHooks, ...]:
        """The client hooks that count HTTP exchanges: for ``Client(hooks=...)``."""
        return ()

    def poll_result(self, result: PollResult, poller: FleetPoller) -> None:
        """Count one of ``poller``'s results; the gauges follow now and then."""

    def token_refreshed(self, *, ok: bool) -> None:
        """Count one access-token refresh: the token sources' code calls this."""

    @contextlib.asynccontextmanager
    async def watching(self, poller: FleetPoller) -> AsyncIterator[None]:
        """Keep the gauges of a running ``poller`` current while the block runs."""
        yield

    def close(self) -> None:
        """Stop serving: idempotent."""


class _PrometheusRunMetrics(RunMetrics):
    def __init__(self, hooks: PrometheusHooks, server: MetricsServer) -> None:
        self._hooks = hooks
        self._server = server
        self._gauges_at = -GAUGE_PERIOD

    @property
    def hooks(self) -> tuple[ClientHooks, ...]:
        return (self._hooks,)

    @property
    def url(self) -> str:
        return self._server.url

    def poll_result(self, result: PollResult, poller: FleetPoller) -> None:
        self._hooks.count_poll(result.outcome)
        if monotonic() - self._gauges_at >= GAUGE_PERIOD:
            self._gauges(poller)

    def token_refreshed(self, *, ok: bool) -> None:
        self._hooks.token_refreshed(ok=ok)

    @contextlib.asynccontextmanager
    async def watching(self, poller: FleetPoller) -> AsyncIterator[None]:
        async def refresh() -> None:
            while True:
                self._gauges(poller)
                await anyio.sleep(GAUGE_PERIOD)

        async with anyio.create_task_group() as tg:
            tg.start_soon(refresh)
            try:
                yield
            finally:
                # Last figures while the poller still runs (its gauges need its clock).
                self._gauges(poller)
                tg.cancel_scope.cancel()

    def _gauges(self, poller: FleetPoller) -> None:
        self._gauges_at = monotonic()
        self._hooks.set_vehicles_gated(poller.vehicles_gated)
        self._hooks.set_reads_parked(poller.reads_parked)
        self._hooks.set_vehicles_near_budget(poller.vehicles_near_budget)

    def close(self) -> None:
        self._server.close()


def start_run_metrics(args: argparse.Namespace) -> RunMetrics:
    """Serve the metrics if ``--metrics-port`` asks; :class:`MetricsUnavailable` if it cannot."""
    if args.metrics_port is None:
        return RunMetrics()
    _load()
    from prometheus_client import CollectorRegistry

    from ..metrics import PrometheusHooks, serve_metrics

    registry = CollectorRegistry(auto_describe=True)
    hooks = PrometheusHooks(registry=registry)
    host = args.metrics_host
    try:
        server = serve_metrics(args.metrics_port, host=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MetricsUnavailable(
            f"cannot serve metrics on {host}:{args.metrics_port}: {reason}", 1
        ) from None
    run = _PrometheusRunMetrics(hooks, server)
    logging.getLogger(CLI_LOGGER).info(
        "serving metrics at %s",
        run.url,
        extra={"event": "metrics_serving", "url": run.url, "port": server.port},
    )
    return run
