"""The reuse benchmarks run in their tiny modes and write what they promise (no figure asserted
but the deterministic billed-request counts, which depend on no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks_support import run_script


@pytest.mark.timeout(120)
def test_billed_requests_smoke_halves_with_webhooks_and_max_age(tmp_path: Path) -> None:
    pytest.importorskip("smartcar", reason="the official SDK is one of the contenders")
    run_script("billed_requests.py", "--smoke", "--out", str(tmp_path), timeout=110)
    rows = json.loads((tmp_path / "billed_requests.json").read_text())["rows"]
    per_day = {
        (
            r["contender"],
            r["max_age"] is not None,
            r["webhooks_half_fleet"],
            r["on_demand_reads"],
        ): r["billed_per_vehicle_per_day"]
        for r in rows
    }
    assert per_day[("official_sdk", False, False, False)] == 3 * 288
    assert per_day[("smartcar_async", False, False, False)] == 3 * 288
    assert per_day[("smartcar_async", True, True, False)] == 3 * 288 / 2
    assert per_day[("smartcar_async", True, False, True)] == 3 * 288
    assert per_day[("official_sdk", False, False, True)] == 2 * 3 * 288
    assert (tmp_path / "billed_requests.md").exists()


@pytest.mark.timeout(60)
def test_reuse_memory_runs_small(tmp_path: Path) -> None:
    run_script("reuse_memory.py", "--vehicles", "500", "--out", str(tmp_path), timeout=50)
    result = json.loads((tmp_path / "reuse_memory.json").read_text())
    assert result["entries"] == 2500
    assert 0 < result["cache_bytes_per_entry"] < 2000
