"""The benchmark harness starts, runs every scenario in its tiny mode, and writes its report.

No timing is asserted: the benchmarks are not part of the suite's pass or fail;
this only guards the one command in benchmarks/README.md against bit rot.
Plots are drawn when matplotlib (the ``bench`` extra) is installed and
skipped otherwise, so the test needs only the ``dev`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks_support import ROOT, run_script


@pytest.mark.timeout(180)
def test_smoke_mode_runs_every_scenario_and_writes_its_report(tmp_path: Path) -> None:
    pytest.importorskip("smartcar", reason="the official SDK is one of the contenders")
    run_script("run.py", "--smoke", "--out", str(tmp_path))

    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results["scenarios"]) == ["1", "2", "3", "4", "5", "6", "7"]
    fleet = results["scenarios"]["2"]["contenders"]
    assert sorted(fleet) == ["aiohttp", "official_sdk", "smartcar_async"]
    # Every contender answered every read, and coalescing sent fewer requests.
    for summary in fleet.values():
        assert summary["ok"] == summary["reads"]
    assert fleet["smartcar_async"]["requests"] < fleet["aiohttp"]["requests"]

    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Scenario 7" in report
    # The harness wrote into --out only; the committed RESULTS.md is another file.
    assert (tmp_path / "RESULTS.md").resolve() != (ROOT / "benchmarks" / "RESULTS.md").resolve()


@pytest.mark.timeout(120)
def test_the_v3_script_runs_in_its_smoke_mode(tmp_path: Path) -> None:
    pytest.importorskip("smartcar", reason="the official SDK is one of the contenders")
    run_script("v3_signals.py", "--smoke", "--out", str(tmp_path), timeout=110)
    results = json.loads((tmp_path / "v3_signals.json").read_text())
    assert results["by_k"]
    assert (tmp_path / "v3_signals.md").exists()


@pytest.mark.timeout(60)
def test_emulator_throughput_reports_rates_and_the_servers_own_cpu() -> None:
    out = run_script(
        "emulator_throughput.py", "--seconds", "0.3", "--concurrency", "4", "--vehicles", "5",
        timeout=50,
    )  # fmt: skip
    assert "single GET /odometer" in out
    assert "5-path batch" in out
    if Path("/proc/self/stat").exists():
        # Measured on the server process, so a saturated client cannot hide its cost.
        assert out.count("server CPU") == 2, out


@pytest.mark.timeout(90)
def test_emulator_throughput_compares_stock_and_speedups_servers() -> None:
    pytest.importorskip("uvloop", reason="the speedups extra serves on uvloop")
    pytest.importorskip("orjson", reason="the speedups extra encodes with orjson")
    out = run_script(
        "emulator_throughput.py", "--compare", "1", "--seconds", "0.3", "--vehicles", "5",
        timeout=80,
    )  # fmt: skip
    assert "requests/s, speedups / stock: single" in out
    if Path("/proc/self/stat").exists():
        assert "server CPU per request, stock / speedups: single" in out
