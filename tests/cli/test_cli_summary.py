"""The summary adds up, and says what the emulator saw; ``--summary-json`` says the same."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from cli_support import HANG_GUARD, against, json_lines, run_cli, summary_value, vehicle_requests
from support import TOKEN

from smartcar_async import Client
from smartcar_async.testing import Emulator


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_requests_add_up_and_match_what_the_api_received(emu: Emulator, tmp_path: Path) -> None:
    # Three whole batches fail once each (two 500s and a 429 with Retry-After,
    # retried as whole requests) and one batch item fails once (re-queued, and
    # sent again in a later request): four retries, all of them requests.
    emu.inject(status=500, path="/batch", times=2)
    emu.inject(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after=1, path="/batch")
    emu.inject(status=500, path="/location", in_batch=True)
    summary = tmp_path / "summary.json"
    done = run_cli(
        against(
            emu,
            "--token",
            TOKEN,
            *(arg for vid in emu.fleet.ids for arg in ("--vehicle", vid)),
            "--reads",
            "odometer,location",
            "--jitter",
            "0",
            "--summary-json",
            str(summary),
        )
    )
    assert done.returncode == 0, done.stderr
    sent = vehicle_requests(emu)
    batches = [r for r in sent if r.method == "POST" and r.path.endswith("/batch")]
    gets = [r for r in sent if r.method == "GET"]
    assert len(batches) + len(gets) == len(sent)

    figures = json.loads(summary.read_text())
    http = figures["http_requests"]
    assert http["total"] == len(sent)
    assert http["batches"] == len(batches)
    assert http["single_gets"] == len(gets)
    assert http["writes"] == 0
    assert http["total"] == http["batches"] + http["single_gets"]
    assert http["retries"] == 4
    assert http["failed"] == 3
    assert figures["rate_limited"] == 1
    assert http["sub_requests"] == sum(len(r.body["requests"]) for r in batches)
    # Every read got its answer in the end.
    assert figures["reads"] == {
        "logical": 6,
        "ok": 6,
        "failed": 0,
        "parked": 0,
        "parked_by_reason": {},
        "deduplicated": 0,
        "failed_by_type": {},
    }

    # The plain summary shows the same figures, as a sum that adds up.
    line = summary_value(done.stderr, "HTTP requests sent")
    match = re.fullmatch(
        r"([\d,]+) = ([\d,]+) batch(?:es)? \+ ([\d,]+) single GETs?;"
        r" of which ([\d,]+) retr(?:y|ies)",
        line,
    )
    assert match, line
    total, batch_count, get_count, retries = (_number(g) for g in match.groups())
    assert (total, batch_count, get_count, retries) == (
        len(sent),
        len(batches),
        len(gets),
        4,
    )
    assert total == batch_count + get_count
    assert summary_value(done.stderr, "Rate limited (429)") == "1"


def test_summary_json_has_the_documented_shape(emu: Emulator, tmp_path: Path) -> None:
    asleep = emu.fleet.ids[2]
    emu.inject(type="VEHICLE_STATE", code="ASLEEP", vehicle_id=asleep, in_batch=True, times=None)
    summary = tmp_path / "summary.json"
    output = tmp_path / "results.jsonl"
    done = run_cli(
        against(
            emu,
            "--token",
            TOKEN,
            *(arg for vid in emu.fleet.ids for arg in ("--vehicle", vid)),
            "--reads",
            "odometer,location",
            "--rounds",
            "2",
            "--interval",
            "0.3",
            "--output",
            str(output),
            "--summary-json",
            str(summary),
        )
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(summary.read_text())
    assert set(figures) == {
        "schema",
        "version",
        "exit_status",
        "stopped_by",
        "error",
        "elapsed_seconds",
        "vehicles",
        "rounds",
        "polls",
        "reads",
        "http_requests",
        "billed_requests",
        "rate_limited",
        "read_latency_seconds",
        "results_written",
    }
    assert figures["schema"] == 1
    assert (figures["exit_status"], figures["stopped_by"], figures["error"]) == (0, None, None)
    assert figures["vehicles"] == 3
    assert figures["rounds"] == {"planned": 2, "completed": 2, "started": 2}
    polls = figures["polls"]
    assert set(polls) == {
        "total",
        "ok",
        "error",
        "parked",
        "skipped",
        "skipped_by_reason",
        "second_job",
    }
    assert polls["total"] == polls["ok"] + polls["error"] + polls["parked"] + polls["skipped"] == 6
    assert polls["second_job"] == 0
    assert polls["skipped"] == sum(polls["skipped_by_reason"].values())
    reads = figures["reads"]
    assert reads["failed_by_type"] == {"VehicleStateError": reads["failed"]}
    assert reads["failed"] >= 2  # the asleep vehicle's two reads, at least once
    assert set(figures["http_requests"]) == {
        "total",
        "batches",
        "single_gets",
        "writes",
        "retries",
        "failed",
        "sub_requests",
    }
    assert figures["http_requests"]["total"] == len(vehicle_requests(emu))
    billed = figures["billed_requests"]
    assert (
        billed["sent"]
        == figures["http_requests"]["sub_requests"] + figures["http_requests"]["single_gets"]
    )
    assert billed["sent"] >= emu.billed_requests  # failed requests are free at Smartcar
    assert billed["saved_by_parking"] == reads["parked"]
    assert set(figures["read_latency_seconds"]) == {"p50", "p95", "p99"}
    assert all(v > 0 for v in figures["read_latency_seconds"].values())
    assert figures["elapsed_seconds"] > 0
    assert figures["results_written"] == len(json_lines(output.read_text())) == 6
    assert TOKEN not in summary.read_text()


async def test_client_stats_add_up_for_every_kind_of_request() -> None:
    """What the summary relies on, in the library: requests by kind sum to the total."""
    async with Emulator(vehicles=2, seed=3) as emu:
        one, two = emu.fleet.ids
        emu.inject(status=500, path="/batch", times=1)  # a whole batch retried
        emu.inject(status=500, path="/odometer", in_batch=True, vehicle_id=two)  # an item
        emu.inject(status=500, path="/vin", times=1)  # a single GET retried
        async with Client(api_origin=emu.url, timeout=HANG_GUARD) as client:
            car, other = (client.vehicle(v, access_token=TOKEN) for v in (one, two))
            await asyncio.gather(car.odometer(), car.location(), other.odometer(), other.location())
            await car.vin()
            await car.service_history()  # a direct read: a single GET
            await car.lock()  # a write
            stats = client.stats
        sent = vehicle_requests(emu)
    assert stats.http_requests == len(sent)
    assert stats.http_requests == stats.batches + stats.single_gets + stats.writes
    assert stats.batches == sum(r.path.endswith("/batch") for r in sent)
    assert stats.writes == 1
    assert stats.retries == 3
    assert stats.retries <= stats.http_requests
