"""Profile smartcar_async's hot path with pyinstrument (scenarios 4 and 5).

    python benchmarks/profile_hot_path.py [--bursts 5] [--out benchmarks/results]

* ``s4``: a default Client reading 5 paths from each of 1,000 vehicles of an
  emulator in another process (zero latency), the workload of scenario 4.
* ``s4_k1``: the same with one read per vehicle (the lone read: a plain GET).
* ``s5``: the coalescer alone over an in-memory executor (scenario 5).

For each it writes the call tree and a flat self-time list
(``profile_s4.txt``, ``profile_s5.txt``) and prints the flat top entries.
Point PYTHONPATH at another checkout to profile a patched tree.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _contenders import SmartcarAsync
from _harness import HERE, EmulatorProcess

PATHS = ("/odometer", "/location", "/tires/pressure", "/security", "/vin")


def _profile(label: str, work: Callable[[], Any], bursts: int, out: Path, top: int) -> None:
    from pyinstrument import Profiler

    work()  # warm-up
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    cpu0 = time.process_time()
    for _ in range(bursts):
        work()
    cpu = time.process_time() - cpu0
    profiler.stop()
    tree = profiler.output_text(unicode=False, color=False)
    flat = profiler.output_text(unicode=False, color=False, flat=True)
    (out / f"profile_{label}.txt").write_text(
        f"# {label}: {bursts} bursts, {cpu:.2f} s CPU\n\n## flat (self time)\n\n{flat}\n"
        f"## call tree\n\n{tree}"
    )
    print(f"== {label}: {bursts} bursts, {cpu:.2f} s CPU; top {top} by self time")
    body = [ln for ln in flat.splitlines() if ln.strip() and ln.lstrip()[:1].isdigit()]
    for line in body[:top]:
        print("  " + line.strip())


def profile_s4(bursts: int, out: Path, top: int, k: int = 5) -> None:
    emu = EmulatorProcess(vehicles=1000, latency=0.0)
    label = "s4" if k == 5 else f"s4_k{k}"
    try:
        ids = [vid for vid, _ in emu.fleet()]
        reads = [(vid, p) for p in PATHS[:k] for vid in ids]
        contender = SmartcarAsync()
        with asyncio.Runner() as runner:
            contender.start(emu.url, runner)
            try:
                contender.run(reads)
                samples = [contender.run(reads).cpu / len(reads) * 1e6 for _ in range(3)]
                print(f"s4 k={k} CPU per read before profiling: {sorted(samples)[1]:.1f} us")
                _profile(label, lambda: contender.run(reads), bursts, out, 25)
            finally:
                contender.close()
    finally:
        emu.close()


def profile_s5(bursts: int, out: Path, top: int) -> None:
    from _micro import build_coalescer, recorded_items

    from smartcar_async import _batch, _coalescer
    from smartcar_async._endpoints import model_for_path

    emu = EmulatorProcess(vehicles=2, latency=0.0)
    try:
        items = recorded_items(emu.url, emu.fleet()[0][0], PATHS)
    finally:
        emu.close()
    raw = {p: _batch.RawItem(*items[p]) for p in PATHS}

    async def execute(key: Any, flight_paths: tuple[str, ...], *rest: Any) -> Any:
        return _batch.Answer({p: raw[p] for p in flight_paths}, "req")

    async def burst() -> None:
        coalescer = build_coalescer(execute)
        keys = [_coalescer.QueueKey(f"v{i}", "token", "metric", None) for i in range(2000)]
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(coalescer.read(k, p, model_for_path(p))) for k in keys for p in PATHS
        ]
        await asyncio.gather(*tasks)

    _profile("s5", lambda: asyncio.run(burst()), bursts, out, top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--only", choices=("s4", "s4_k1", "s5"), default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "s4"):
        profile_s4(args.bursts, args.out, args.top)
    if args.only in (None, "s4_k1"):
        profile_s4(args.bursts, args.out, args.top, k=1)
    if args.only in (None, "s5"):
        profile_s5(args.bursts, args.out, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
