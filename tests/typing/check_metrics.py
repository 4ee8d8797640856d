"""The metrics adapter's and hooks' types: mypy --strict checks this file in CI (never executed)."""

from __future__ import annotations

from typing import assert_type

from prometheus_client import CollectorRegistry

import smartcar_async as sc
from smartcar_async.metrics import (
    MetricsServer,
    PollOutcome,
    PrometheusHooks,
    poll_outcome,
    serve_metrics,
)


class Counting(sc.ClientHooks):
    def on_retry(self, event: sc.RetryScheduled, /) -> None:
        assert_type(event.attempt, int)
        assert_type(event.item, bool)

    def on_rate_limit(self, event: sc.RateLimited, /) -> None:
        if event.scope == "application":
            assert_type(event.retry_after, float | None)

    def on_item_error(self, event: sc.ItemFailed, /) -> None:
        assert_type(event.status, int | None)


async def metrics(registry: CollectorRegistry, result: sc.PollResult) -> None:
    hooks = PrometheusHooks(registry=registry, namespace="fleet")
    async with sc.Client(hooks=[hooks, Counting()]) as client:
        assert_type(client.stats, sc.ClientStats)
    hooks.poll_result(result)
    hooks.count_poll("parked")
    hooks.count_poll("parkd")  # type: ignore[arg-type]  # a typo fails in mypy
    hooks.token_refreshed(ok=False)
    assert_type(poll_outcome(result), PollOutcome)
    with serve_metrics(0, registry=registry) as server:
        assert_type(server, MetricsServer)
        assert_type(server.url, str)
