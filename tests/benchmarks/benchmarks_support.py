"""Running a benchmark script of this checkout in a child process, as a smoke test does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str, timeout: float = 170) -> str:
    """Run ``benchmarks/<script>`` with ``args``; it must exit 0 (skip where there is none).

    Returns what it printed.
    """
    path = ROOT / "benchmarks" / script
    if not path.exists():
        pytest.skip("no benchmarks/ directory in this tree (e.g. an installed sdist)")
    proc = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout
