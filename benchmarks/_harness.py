"""Plumbing shared by the scenarios: the emulator process, statistics, measurements."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def child_env() -> dict[str, str]:
    """Environment for child Pythons: the repository importable, no proxies."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    return env


class EmulatorProcess:
    """The emulator in its own process (benchmarks/_emulator_proc.py), steered over stdin."""

    def __init__(self, *, vehicles: int, seed: int = 7, latency: float = 0.0) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_emulator_proc.py"),
                "--vehicles",
                str(vehicles),
                "--seed",
                str(seed),
                "--latency",
                str(latency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        line = self._readline()
        if not line.startswith("ready "):
            self.close()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.latency = latency

    def _readline(self) -> str:
        assert self._proc.stdout is not None
        return self._proc.stdout.readline().strip()

    def command(self, line: str) -> str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        reply = self._readline()
        if reply.startswith("error") or not reply:
            raise RuntimeError(f"emulator command {line!r} failed: {reply!r}")
        return reply

    def fleet(self) -> list[tuple[str, str]]:
        return [(vid, powertrain) for vid, powertrain in json.loads(self.command("fleet"))]

    def set_latency(self, seconds: float) -> None:
        self.command(f"latency {seconds!r}")
        self.latency = seconds

    def set_app_limit(self, capacity: int | None, refill_per_minute: float = 0.0) -> None:
        if capacity is None:
            self.command("ratelimit off")
        else:
            self.command(f"ratelimit {capacity} {refill_per_minute!r}")

    def reset_limits(self) -> None:
        self.command("reset")

    def stats(self) -> tuple[int, float]:
        """(HTTP requests served, emulator CPU seconds), both cumulative."""
        served, cpu, _ = self.command("stats").split()
        return int(served), float(cpu)

    def tokens(self) -> int:
        """Application-bucket tokens spent so far (-1 if the emulator cannot tell)."""
        return int(self.command("stats").split()[2])

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def quantile_curve(sorted_values: Sequence[float], points: int = 200) -> list[float]:
    """``points`` evenly spaced quantiles (0..1), enough to draw a CDF."""
    if not sorted_values:
        return []
    n = len(sorted_values)
    return [sorted_values[min(n - 1, int(i / (points - 1) * (n - 1)))] for i in range(points)]


def settle() -> None:
    """Collect garbage between measurements so one run does not pay for another."""
    gc.collect()


def machine_info() -> dict[str, Any]:
    import platform

    import aiohttp

    import smartcar_async

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "aiohttp": aiohttp.__version__,
        "smartcar_async": smartcar_async.__version__,
    }
    try:
        from importlib.metadata import version

        info["smartcar"] = version("smartcar")
        info["requests"] = version("requests")
    except Exception:  # pragma: no cover - metadata missing
        info["smartcar"] = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu"] = platform.processor() or "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    with contextlib.suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info
