"""Helpers for the metrics tests: read a registry the way a Prometheus server would."""

from __future__ import annotations

from typing import Any

from leftovers import assert_no_leftover_tasks as assert_no_leftover_tasks
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smartcar_async import Client

TOKEN = "tok-SECRET-3f9a7c1e"  # distinctive, so a leak is easy to grep for

# Guards against hangs only; no assertion is ever made about elapsed time.
HANG_GUARD = 10.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def make_client(origin: str, **kwargs: Any) -> Client:
    """A client for loopback tests: quick retries, bounded timeouts unless overridden."""
    params: dict[str, Any] = {
        "timeout": HANG_GUARD,
        "close_timeout": 5.0,
        "retry_backoff": 0.01,
        "max_backoff": 0.05,
    }
    params.update(kwargs)
    return Client(api_origin=origin, **params)


def exposition(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode("utf-8")


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    return sum(
        v
        for (n, sample_labels), v in samples.items()
        if n == name and set(labels.items()) <= set(sample_labels)
    )
