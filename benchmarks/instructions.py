"""Client instructions per read, counted by valgrind: the figure that does not jitter.

    python benchmarks/instructions.py                 # k = 1 and k = 5, 300 vehicles
    python benchmarks/instructions.py --trees base=/path/to/checkout \\
        --contenders aiohttp,sca,sca@base            # before and after, same run

On a shared 2-core machine the CPU time of the same burst moves by 20 to 40%
from one fresh process to the next (`lean_floor.py` shows it: its minimum of
five rounds still jumps by 10% between runs), which hides any change of a
few percent. This counts the instructions the client executes in user space
instead, with ``valgrind --tool=callgrind``: the same burst gives the same
count to within 0.1%, run after run.

Each contender is `lean_floor.py`'s child, run twice under valgrind (one and
three measured bursts after the same warm-up); the difference over two bursts
is one burst's count, free of start-up and imports. The emulator runs in its
own process, uncounted.

What it does not count: time in the kernel (sockets, epoll), which every
contender pays alike for the same requests, so instruction ratios are a
little *harsher* than CPU-time ratios; and cache misses. Needs ``valgrind``
(``apt-get install valgrind``); about 35 s per contender and k, two at a time.
Results go to ``results/instructions.json`` unless ``--out`` names a directory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import HERE, EmulatorProcess, child_env
from lean_floor import log, parse_contenders

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
#: Contenders measured by default (``floor_tasks`` and ``sca_tasks`` are run.py's shapes).
DEFAULT = ("lean", "lean_flight", "aiohttp", "sca", "sca_batch", "caller")


def _count(argv: list[str], env: dict[str, str]) -> int:
    """Instructions a child executed (valgrind's ``I refs``)."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    found = _REFS.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"{argv} failed:\n{proc.stdout}\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_read(
    name: str, k: int, url: str, ids_file: Path, reads: int, trees: dict[str, str]
) -> float:
    """One burst's instructions per read: (three bursts - one burst) / two."""
    contender, _, tree = name.partition("@")
    env = child_env()
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([trees[tree], env["PYTHONPATH"]])
    base = [sys.executable, str(HERE / "lean_floor.py"), "--child", contender]
    base += ["--url", url, "--ids", str(ids_file), "--k", str(k)]
    with ThreadPoolExecutor(2) as pool:
        one, three = pool.map(lambda n: _count([*base, "--bursts", str(n)], env), (1, 3))
    return (three - one) / 2 / reads


def measure(
    emu: EmulatorProcess, ids: Sequence[str], names: Sequence[str], k: int, trees: dict[str, str]
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ids_file = Path(tmp) / "ids.json"
        ids_file.write_text(json.dumps(list(ids)))
        out: dict[str, float] = {}
        for name in names:
            out[name] = round(per_read(name, k, emu.url, ids_file, len(ids) * k, trees))
            log(
                f"  k={k} {len(ids):>5,} vehicles  {name:<16} {out[name]:>10,.0f} instructions/read"
            )
    return out


def ratios(k: int, figures: dict[str, float]) -> dict[str, float]:
    pairs = {
        "sca / aiohttp": ("sca", "aiohttp"),
        "sca / lean": ("sca", "lean"),
        "sca_batch / lean": ("sca_batch", "lean"),
        "lean_flight / lean": ("lean_flight", "lean"),
        "sca / lean_flight": ("sca", "lean_flight"),
        "sca_batch / lean_flight": ("sca_batch", "lean_flight"),
    }
    out = {
        label: figures[top] / figures[bottom]
        for label, (top, bottom) in pairs.items()
        if top in figures and bottom in figures and (k > 1 or "batch" not in label)
    }
    if {"sca", "caller", "lean"} <= figures.keys():
        out["(sca - caller) / lean"] = (figures["sca"] - figures["caller"]) / figures["lean"]
    for name in figures:
        contender, _, tree = name.partition("@")
        if tree and contender in figures:
            out[f"{contender} / {name}"] = figures[contender] / figures[name]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=300)
    parser.add_argument("--ks", default="1,5", help="reads per vehicle, e.g. 1,5")
    parser.add_argument("--contenders", default=",".join(DEFAULT))
    parser.add_argument(
        "--trees", default="", help="NAME=PATH,...: contender@NAME runs PATH's smartcar_async"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (for tests)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    names, trees = parse_contenders(args.contenders, args.trees)
    if args.smoke:
        args.vehicles = 5
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": sys.version.split()[0],
        "vehicles": args.vehicles,
        "by_k": {},
    }
    emu = EmulatorProcess(vehicles=args.vehicles)
    try:
        ids = [vid for vid, _ in emu.fleet()]
        for k in (int(x) for x in args.ks.split(",")):
            figures = measure(emu, ids, names, k, trees)
            found = ratios(k, figures)
            for label, value in found.items():
                log(f"  k={k} {label:<28} {value:.3f}x")
            info["by_k"][str(k)] = {"instructions_per_read": figures, "ratios": found}
    finally:
        emu.close()
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    (args.out / "instructions.json").write_text(json.dumps(info, indent=1) + "\n")
    log(f"done in {info['elapsed_s']:.0f} s: {args.out / 'instructions.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
