"""benchmarks/lean_floor.py runs in its tiny mode: both sweeps, every contender answered.

No timing is asserted (the benchmarks are not part of the suite's pass or
fail); this guards the commands RESULTS.md quotes against bit rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "lean_floor.py"


def run(tmp_path: Path, *extra: str) -> None:
    if not SCRIPT.exists():
        pytest.skip("no benchmarks/ directory in this tree (e.g. an installed sdist)")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


@pytest.mark.timeout(180)
def test_the_lean_floor_sweep_measures_every_contender_at_k_1_and_5(tmp_path: Path) -> None:
    run(tmp_path)
    results = json.loads((tmp_path / "lean_floor.json").read_text())
    assert sorted(results["by_k"]) == ["1", "5"]
    for figures in results["by_k"].values():
        assert sorted(figures["contenders"]) == sorted(
            ["lean", "floor_tasks", "aiohttp", "sca", "sca_tasks", "caller"]
        )
        assert all(c["min_us"] > 0 for c in figures["contenders"].values())


@pytest.mark.timeout(180)
def test_the_scale_sweep_measures_each_fleet_size(tmp_path: Path) -> None:
    run(tmp_path, "--scale", "--contenders", "lean,sca")
    results = json.loads((tmp_path / "lean_floor_scale.json").read_text())
    assert sorted(results["by_fleet"], key=int) == ["20", "40"]
