"""benchmarks/instructions.py: counting by valgrind, and the ratios it reports.

The smoke run needs valgrind (CI installs it); the arithmetic does not.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks_support import ROOT, run_script


@pytest.fixture
def instructions() -> Any:
    path = ROOT / "benchmarks" / "instructions.py"
    if not path.exists():
        pytest.skip("no benchmarks/ directory in this tree (e.g. an installed sdist)")
    sys.path.insert(0, str(path.parent))  # its own imports: _harness, lean_floor
    try:
        spec = importlib.util.spec_from_file_location("instructions_under_test", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_valgrinds_count_is_read_from_its_summary_line(instructions: Any) -> None:
    summary = "==12== Collected : 1\n==12==\n==12== I   refs:      2,834,996,984\n"
    found = instructions._REFS.search(summary)
    assert found is not None
    assert found.group(1) == "2,834,996,984"


def test_ratios_compare_like_with_like(instructions: Any) -> None:
    figures = {"lean": 100.0, "aiohttp": 200.0, "sca": 150.0, "caller": 20.0, "sca@base": 160.0}
    found = instructions.ratios(1, figures)
    assert found["sca / aiohttp"] == pytest.approx(0.75)
    assert found["(sca - caller) / lean"] == pytest.approx(1.3)
    assert found["sca / sca@base"] == pytest.approx(150 / 160)
    assert "sca_batch / lean" not in found
    five = instructions.ratios(5, {"lean": 100.0, "sca_batch": 120.0})
    assert five == {"sca_batch / lean": pytest.approx(1.2)}


@pytest.mark.timeout(240)
def test_a_smoke_run_counts_a_contender(tmp_path: Path) -> None:
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    run_script(
        "instructions.py",
        "--smoke",
        "--ks",
        "1",
        "--contenders",
        "sca",
        "--out",
        str(tmp_path),
        timeout=230,
    )
    results = json.loads((tmp_path / "instructions.json").read_text())
    assert results["by_k"]["1"]["instructions_per_read"]["sca"] > 0
