"""``run.py --speedups N``: the speedups extra against stock, side by side.

Scenarios 2, 4 and 5 run in a fresh ``run.py`` process per configuration
(stock: ``--loop asyncio`` and ``SMARTCAR_ASYNC_JSON=stdlib``; speedups:
``--loop uvloop`` and ``SMARTCAR_ASYNC_JSON=orjson``), the configurations taking
turns for N rounds so that a change in the machine's load hits both; each
figure is the best of its rounds. The emulator's throughput is measured both
ways by ``emulator_throughput.compare``. The issue's targets are printed as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from emulator_throughput import compare


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


SPEEDUPS_CONFIGS = {"stock": ("asyncio", "stdlib"), "speedups": ("uvloop", "orjson")}


def _speedup_figures(results: dict[str, Any]) -> dict[str, float]:
    """Client CPU per read (us) of the figures the speedups targets are about."""
    scenarios = results["scenarios"]
    figures: dict[str, float] = {}
    for name, summary in scenarios["2"]["contenders"].items():
        figures[f"s2 {name}"] = summary["cpu_per_read_us"]
    s4 = scenarios["4"]
    for k, result in s4["by_k"].items():
        for name, summary in result["contenders"].items():
            figures[f"s4 k={k} {name}"] = summary["cpu_per_read_us"]
    figures[f"s4 k={s4['hand_batch_k']} hand-written aiohttp batch"] = s4[
        "hand_batch_cpu_per_read_us"
    ]
    figures[f"s4 k={s4['hand_batch_k']} raw-protocol batch"] = s4["raw_batch_cpu_per_read_us"]
    for label, summary in scenarios["5"].items():
        figures[f"s5 {label} (net us/call)"] = summary["net_us"]
    return figures


def side_by_side(args: argparse.Namespace, script: Path, default_out: Path) -> int:
    """Stock against speedups: fresh processes, interleaved rounds, the best of each figure."""
    passthrough = ["--only", "2,4,5", "--no-plots", "--contenders", "aiohttp,smartcar_async"]
    passthrough += ["--quick"] if args.quick else ["--smoke"] if args.smoke else []
    if args.fleet is not None:
        passthrough += ["--fleet", str(args.fleet)]
    if args.reps is not None:
        passthrough += ["--reps", str(args.reps)]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in SPEEDUPS_CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.speedups):
            for name, (loop, codec) in SPEEDUPS_CONFIGS.items():
                log(f"speedups round {round_ + 1}/{args.speedups}: {name} ({loop}, {codec})")
                out = Path(tmp) / f"{name}-{round_}"
                subprocess.run(
                    [sys.executable, str(script), *passthrough, "--loop", loop, "--out", str(out)],
                    env={**os.environ, "SMARTCAR_ASYNC_JSON": codec},
                    check=True,
                )
                runs[name].append(_speedup_figures(json.loads((out / "results.json").read_text())))
    best = {name: {k: min(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    seconds = 1.0 if args.smoke else 3.0
    emulator = compare(seconds, 64, 200, max(1, args.speedups))
    stock, fast = best["stock"], best["speedups"]
    targets = {
        "coalesced read, k=5: speedups / stock smartcar_async (target <= 0.75)": fast[
            "s4 k=5 smartcar_async"
        ]
        / stock["s4 k=5 smartcar_async"],
        "emulator 5-path batches/s: speedups / stock (target >= 1.5)": emulator["ratio"][
            "batch_rps"
        ],
    }
    if "batch_cpu_us" in emulator["ratio"]:
        # The same target measured on the server alone: on two cores the
        # hammering client can be the one that runs out of CPU.
        targets["emulator server CPU per 5-path batch: stock / speedups (target >= 1.5)"] = (
            emulator["ratio"]["batch_cpu_us"]
        )
    if "s4 k=1 smartcar_async" in fast:
        targets["lone read, k=1: speedups smartcar_async / stock plain aiohttp (target <= 0.8)"] = (
            fast["s4 k=1 smartcar_async"] / stock["s4 k=1 aiohttp"]
        )
    lines = [
        f"Best of {args.speedups} interleaved rounds, each configuration in a fresh process "
        f"({' '.join(passthrough)}); client CPU per read in us.",
        "",
        "| figure | stock (asyncio, json) | speedups (uvloop, orjson) | speedups / stock |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k} | {stock[k]:.1f} | {fast[k]:.1f} | {fast[k] / stock[k]:.2f}x |" for k in stock
    ]
    lines += [
        f"| emulator {k.removesuffix('_rps').removesuffix('_cpu_us')} "
        f"({'server CPU, us per request' if k.endswith('_cpu_us') else 'per s'}) | "
        f"{emulator['stock'][k]:,.0f} | {emulator['speedups'][k]:,.0f} | "
        f"{emulator['speedups'][k] / emulator['stock'][k]:.2f}x |"
        for k in emulator["ratio"]
    ]
    lines += ["", "| target | measured |", "|---|---|"]
    lines += [f"| {k} | {v:.2f}x |" for k, v in targets.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    out_dir = args.out if args.out is not None else default_out
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "speedups.md").write_text(text)
    report = {"runs": runs, "best": best, "emulator": emulator, "targets": targets}
    (out_dir / "speedups.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0
