"""benchmarks/lean_floor.py runs in its tiny mode: both sweeps, every contender answered.

No timing is asserted (the benchmarks are not part of the suite's pass or
fail); this guards the commands RESULTS.md quotes against bit rot.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks_support import run_script


def run(tmp_path: Path, *extra: str) -> None:
    run_script("lean_floor.py", "--smoke", "--out", str(tmp_path), *extra)


@pytest.mark.timeout(180)
def test_the_lean_floor_sweep_measures_every_contender_at_k_1_and_5(tmp_path: Path) -> None:
    run(tmp_path)
    results = json.loads((tmp_path / "lean_floor.json").read_text())
    assert sorted(results["by_k"]) == ["1", "5"]
    for figures in results["by_k"].values():
        assert sorted(figures["contenders"]) == sorted(
            [
                "lean",
                "lean_flight",
                "floor_tasks",
                "aiohttp",
                "sca",
                "sca_batch",
                "sca_tasks",
                "caller",
            ]
        )
        assert all(c["min_us"] > 0 for c in figures["contenders"].values())


@pytest.mark.timeout(180)
def test_the_scale_sweep_measures_each_fleet_size(tmp_path: Path) -> None:
    run(tmp_path, "--scale", "--contenders", "lean,sca")
    results = json.loads((tmp_path / "lean_floor_scale.json").read_text())
    assert sorted(results["by_fleet"], key=int) == ["20", "40"]
