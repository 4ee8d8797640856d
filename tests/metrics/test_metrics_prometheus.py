"""smartcar_async.metrics.PrometheusHooks against the emulator, with a fresh registry per test."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiohttp
import pytest
from metrics_support import exposition, parse, total, value
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from support import TOKEN, make_client

import smartcar_async as sc
from smartcar_async.metrics import DEFAULT_BUCKETS, PrometheusHooks, poll_outcome, serve_metrics
from smartcar_async.testing import Emulator

NS = "smartcar_async"


async def mixed_run(emu: Emulator, client: sc.Client) -> None:
    """Batches, single GETs, dedupe, 429s (item and whole request, both scopes), errors, writes."""
    ev = emu.fleet.with_powertrain("EV")[0].id
    ice = emu.fleet.with_powertrain("ICE")[0].id
    car = client.vehicle(ev, access_token=TOKEN)
    other = client.vehicle(ice, access_token=TOKEN)

    # One batch of three paths for four callers (one deduplicated), one single GET.
    await asyncio.gather(car.odometer(), car.odometer(), car.location(), car.vin(), other.vin())
    # An error item: an EV has no fuel tank (COMPATIBILITY inside a 200 batch).
    fuel, battery = await asyncio.gather(car.fuel(), car.battery(), return_exceptions=True)
    assert isinstance(fuel, sc.CompatibilityError)
    assert isinstance(battery, sc.Battery)
    # A per-item 429 (the vehicle's limit), retried on its own as a single GET.
    emu.inject(type="RATE_LIMIT", code="VEHICLE", path="/odometer", in_batch=True, retry_after=0)
    await asyncio.gather(car.odometer(), car.location())
    # A per-item 429 of the application's limit, retried too.
    emu.inject(
        type="RATE_LIMIT", code="SMARTCAR_API", path="/location", in_batch=True, retry_after=0
    )
    await asyncio.gather(car.odometer(), car.location())
    # A whole-request 429 on a single GET, retried by the client's retry loop.
    emu.inject(type="RATE_LIMIT", code="VEHICLE", path="/vin", vehicle_id=ice, retry_after=0)
    assert isinstance(await other.vin(), sc.Vin)
    # Writes: one that works, one whose connection drops (never retried).
    assert isinstance(await car.lock(), sc.Action)
    emu.inject(fault="drop", path="/security")
    with pytest.raises(sc.APIConnectionError):
        await car.unlock()


async def test_counters_match_client_stats(emu: Emulator, registry: CollectorRegistry) -> None:
    metrics = PrometheusHooks(registry=registry)
    responses: list[sc.ResponseReceived] = []
    async with make_client(
        emu.url, max_retries=2, hooks=metrics, on_response=[responses.append]
    ) as client:
        await mixed_run(emu, client)
        stats = client.stats
    s = parse(exposition(registry))

    assert stats.http_requests == len(emu.requests) == len(responses) == 11
    assert total(s, f"{NS}_http_requests_total") == stats.http_requests
    assert (
        total(s, f"{NS}_http_requests_total") - total(s, f"{NS}_http_requests_total", outcome="ok")
        == stats.failed_requests
        == 2
    )
    # The client counts every request it sends, retries included, as the metric does.
    assert value(s, f"{NS}_http_requests_total", kind="batch", outcome="ok") == stats.batches == 4
    assert total(s, f"{NS}_http_requests_total", kind="get") == stats.single_gets == 5
    assert value(s, f"{NS}_http_requests_total", kind="get", outcome="RateLimitError") == 1
    assert value(s, f"{NS}_http_requests_total", kind="write", outcome="ok") == 1
    assert value(s, f"{NS}_http_requests_total", kind="write", outcome="APIConnectionError") == 1

    assert value(s, f"{NS}_logical_reads_total") == stats.logical_reads == 12
    assert value(s, f"{NS}_deduplicated_reads_total") == stats.dedupe_hits == 1
    assert value(s, f"{NS}_writes_total") == stats.writes == 2
    assert total(s, f"{NS}_retries_total") == stats.retries == 3
    assert value(s, f"{NS}_retries_total", error="RateLimitError") == 3
    assert total(s, f"{NS}_rate_limits_total") == stats.rate_limited == 3
    assert value(s, f"{NS}_rate_limits_total", scope="vehicle") == 2
    assert value(s, f"{NS}_rate_limits_total", scope="application") == 1

    # Errors: every failed exchange and every failed batch item, retried or not.
    errors = f"{NS}_errors_total"
    assert value(s, errors, type="COMPATIBILITY", error="CompatibilityError") == 1
    assert value(s, errors, type="RATE_LIMIT", error="RateLimitError") == 3
    assert value(s, errors, type="", error="APIConnectionError") == 1
    assert total(s, errors) == 5


async def test_latency_histogram_counts_every_request(
    emu: Emulator, registry: CollectorRegistry
) -> None:
    metrics = PrometheusHooks(registry=registry)
    responses: list[sc.ResponseReceived] = []
    async with make_client(
        emu.url, max_retries=2, hooks=metrics, on_response=[responses.append]
    ) as client:
        await mixed_run(emu, client)
        stats = client.stats
    s = parse(exposition(registry))
    hist = f"{NS}_request_duration_seconds"
    assert total(s, f"{hist}_count") == stats.http_requests == len(responses)
    for kind in ("batch", "get", "write"):
        count = value(s, f"{hist}_count", kind=kind)
        assert count == total(s, f"{NS}_http_requests_total", kind=kind)
        assert value(s, f"{hist}_bucket", kind=kind, le="+Inf") == count
        # Cumulative buckets: never decreasing, the last finite one 300 s.
        buckets = [value(s, f"{hist}_bucket", kind=kind, le=str(b)) for b in DEFAULT_BUCKETS]
        assert buckets == sorted(buckets)
    assert (DEFAULT_BUCKETS[0], DEFAULT_BUCKETS[-1]) == (0.05, 300.0)
    assert total(s, f"{hist}_sum") == pytest.approx(sum(e.latency for e in responses))


async def test_no_vehicle_id_or_token_in_any_label_or_sample(
    emu: Emulator, registry: CollectorRegistry
) -> None:
    metrics = PrometheusHooks(registry=registry)
    async with make_client(emu.url, max_retries=2, hooks=metrics) as client:
        await mixed_run(emu, client)
    text = exposition(registry)
    secrets = [TOKEN, *emu.fleet.ids]
    assert [secret for secret in secrets if secret in text] == []
    for (name, labels), _ in parse(text).items():
        assert name.startswith(f"{NS}_")
        for label, label_value in labels:
            assert not any(secret in label_value for secret in secrets), (name, label)
            assert label in {"kind", "outcome", "error", "type", "scope", "le"}


async def test_text_exposition_parses_and_names_every_metric(registry: CollectorRegistry) -> None:
    PrometheusHooks(registry=registry)
    families = {
        family.name: family
        for family in _families(exposition(registry))
        if not family.name.endswith("_created")  # counters' creation times, as gauges
    }
    assert set(families) == {
        f"{NS}_{name}"
        for name in (
            "http_requests",
            "request_duration_seconds",
            "logical_reads",
            "deduplicated_reads",
            "writes",
            "billed_requests",
            "reused_reads",
            "webhook_reused_reads",
            "webhook_readings_ingested",
            "shared_state_unavailable",
            "retries",
            "rate_limits",
            "errors",
            "poll_results",
            "vehicles_gated",
            "reads_parked",
            "vehicles_near_budget",
            "token_refreshes",
        )
    }
    assert families[f"{NS}_request_duration_seconds"].type == "histogram"
    assert families[f"{NS}_vehicles_gated"].type == "gauge"
    assert families[f"{NS}_logical_reads"].type == "counter"
    # Series that exist before the first event, so rate() starts from 0.
    s = parse(exposition(registry))
    assert (f"{NS}_rate_limits_total", (("scope", "application"),)) in s
    assert (f"{NS}_poll_results_total", (("outcome", "parked"),)) in s


def _families(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


async def test_one_hooks_object_sums_several_clients(
    emu: Emulator, registry: CollectorRegistry
) -> None:
    metrics = PrometheusHooks(registry=registry)
    ids = emu.fleet.ids
    async with (
        make_client(emu.url, hooks=metrics) as first,
        make_client(emu.url, hooks=[metrics]) as second,
    ):
        await first.vehicle(ids[0], access_token=TOKEN).odometer()
        await asyncio.gather(
            *(second.vehicle(ids[1], access_token=TOKEN).odometer() for _ in range(3))
        )
        expected = first.stats.logical_reads + second.stats.logical_reads
    s = parse(exposition(registry))
    assert value(s, f"{NS}_logical_reads_total") == expected == 4
    assert value(s, f"{NS}_deduplicated_reads_total") == 2
    assert total(s, f"{NS}_http_requests_total") == 2


async def test_billed_and_reused_reads_are_counted(
    emu: Emulator, registry: CollectorRegistry
) -> None:
    emu.reset_billed_requests()
    metrics = PrometheusHooks(registry=registry)
    async with make_client(emu.url, hooks=metrics) as client:
        car = client.vehicle(emu.fleet.ids[0], access_token=TOKEN, max_age=600)
        await car.odometer()
        assert (await car.odometer()).meta.reused
        stats = client.stats
    s = parse(exposition(registry))
    assert value(s, f"{NS}_billed_requests_total") == stats.billed_requests == 1
    assert emu.billed_requests == 1
    assert value(s, f"{NS}_reused_reads_total") == stats.reused_reads == 1
    assert value(s, f"{NS}_webhook_reused_reads_total") == 0
    assert value(s, f"{NS}_logical_reads_total") == 2


async def test_namespace_and_a_second_instance_on_one_registry(registry: CollectorRegistry) -> None:
    PrometheusHooks(registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusHooks(registry=registry)
    other = PrometheusHooks(registry=registry, namespace="fleet_a")
    other.set_vehicles_gated(3)
    s = parse(exposition(registry))
    assert value(s, "fleet_a_vehicles_gated") == 3
    assert value(s, f"{NS}_vehicles_gated") == 0


def _result(**fields: object) -> sc.PollResult:
    base: dict[str, object] = {
        "vehicle_id": "v-1",
        "round": 1,
        "started_at": dt.datetime.now(dt.UTC),
        "latency": 0.1,
    }
    return sc.PollResult(**{**base, **fields})  # type: ignore[arg-type]


async def test_poller_figures(registry: CollectorRegistry) -> None:
    metrics = PrometheusHooks(registry=registry)
    ok = _result(values={"odometer": object()})
    failed = _result(errors={"fuel": sc.CompatibilityError("no tank")})
    skipped = _result(skipped="backoff", latency=0.0)
    assert [poll_outcome(r) for r in (ok, failed, skipped)] == ["ok", "error", "skipped"]
    for result in (ok, ok, failed, skipped):
        metrics.poll_result(result)
    metrics.count_poll("parked", 2)
    with pytest.raises(ValueError, match="outcome"):
        metrics.count_poll("nope")  # type: ignore[arg-type]
    metrics.set_vehicles_gated(4)
    metrics.set_reads_parked(7)
    metrics.token_refreshed()
    metrics.token_refreshed(ok=False)
    s = parse(exposition(registry))
    polls = f"{NS}_poll_results_total"
    outcomes = ("ok", "error", "parked", "skipped")
    assert [value(s, polls, outcome=o) for o in outcomes] == [2, 1, 2, 1]
    assert value(s, f"{NS}_vehicles_gated") == 4
    assert value(s, f"{NS}_reads_parked") == 7
    assert value(s, f"{NS}_token_refreshes_total", outcome="ok") == 1
    assert value(s, f"{NS}_token_refreshes_total", outcome="error") == 1


async def test_serve_metrics_over_http(emu: Emulator, registry: CollectorRegistry) -> None:
    metrics = PrometheusHooks(registry=registry)
    with serve_metrics(0, registry=registry) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        async with make_client(emu.url, hooks=metrics) as client:
            await client.vehicle(emu.fleet.ids[0], access_token=TOKEN).odometer()
            logical = client.stats.logical_reads
        async with aiohttp.ClientSession() as session, session.get(server.url) as resp:
            assert resp.status == 200
            text = await resp.text()
    assert value(parse(text), f"{NS}_logical_reads_total") == logical == 1
    server.close()  # idempotent
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(server.url)
