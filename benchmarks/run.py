"""smartcar_async benchmark harness: three contenders, seven scenarios, one command.

    python benchmarks/run.py            # full run (~8 minutes on 2 cores), writes RESULTS.md
    python benchmarks/run.py --quick    # the same scenarios, smaller, under 2 minutes
    python benchmarks/run.py --smoke --out /tmp/x   # seconds; used by the test suite

See benchmarks/README.md for what each scenario measures and the fairness rules.
Results go to ``benchmarks/RESULTS.md`` and ``benchmarks/results/`` (JSON and
PNG plots) unless ``--out`` names another directory, which then receives all of
them. Plots need matplotlib (the ``bench`` extra); without it they are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _contenders import (
    SDK_THREADS,
    Contender,
    OfficialSDK,
    Outcome,
    PlainAiohttp,
    Read,
    SmartcarAsync,
)
from _floors import aiohttp_batch_cost, raw_batch_cost
from _harness import (
    HERE,
    EmulatorProcess,
    machine_info,
    median,
    percentile,
    quantile_curve,
    settle,
)

#: Five reads every vehicle in the fleet supports (the fleet mixes EV, ICE, PHEV).
FLEET_PATHS = ("/odometer", "/location", "/tires/pressure", "/security", "/vin")
#: Sixteen distinct reads a plug-in hybrid supports, for scenario 1 (k = 1..16).
ALL_PATHS = (
    *FLEET_PATHS,
    "/",
    "/permissions",
    "/diagnostics/system_status",
    "/diagnostics/dtcs",
    "/fuel",
    "/engine/oil",
    "/battery",
    "/battery/capacity",
    "/battery/nominal_capacity",
    "/charge",
    "/charge/limit",
)
LATENCY = 0.050  # seconds the emulator adds to every response in scenarios 1-3
#: Scenario 7: Smartcar's documented application bucket, with time compressed so a
#: budget minute passes in 0.1 s of wall time (refill 2/min -> 20 tokens/s).
APP_CAPACITY = 120
APP_REFILL_PER_MINUTE = 2.0
TIME_SCALE = 600.0
TICK = 0.050  # scenario 7: seconds between two waves of demand

CONTENDERS = ("official_sdk", "aiohttp", "smartcar_async")


@attrs.frozen
class Profile:
    name: str
    fleet: int
    s1_ks: tuple[int, ...]
    s1_reps: int
    s2_reps: int
    s3_reps: int
    dup: int
    s4_ks: tuple[int, ...]
    s4_reps: int
    s5_vehicles: tuple[int, ...]
    s5_reps: int
    s6_handles: int
    s7_seconds: float
    s7_reps: int
    warmup_fraction: float


PROFILES = {
    "full": Profile(
        name="full",
        fleet=1000,
        s1_ks=tuple(range(1, 17)),
        s1_reps=7,
        s2_reps=5,
        s3_reps=3,
        dup=3,
        s4_ks=(1, 5),
        s4_reps=5,
        s5_vehicles=(200, 2000),
        s5_reps=7,
        s6_handles=100_000,
        s7_seconds=4.0,
        s7_reps=3,
        warmup_fraction=0.2,
    ),
    "quick": Profile(
        name="quick",
        fleet=200,
        s1_ks=(1, 2, 4, 8, 16),
        s1_reps=3,
        s2_reps=3,
        s3_reps=2,
        dup=3,
        s4_ks=(1, 5),
        s4_reps=3,
        s5_vehicles=(200, 1000),
        s5_reps=5,
        s6_handles=100_000,
        s7_seconds=2.0,
        s7_reps=1,
        warmup_fraction=0.2,
    ),
    "smoke": Profile(
        name="smoke",
        fleet=20,
        s1_ks=(1, 4),
        s1_reps=1,
        s2_reps=1,
        s3_reps=1,
        dup=2,
        s4_ks=(5,),
        s4_reps=1,
        s5_vehicles=(50,),
        s5_reps=1,
        s6_handles=2_000,
        s7_seconds=0.5,
        s7_reps=1,
        warmup_fraction=0.2,
    ),
}


# The client logs its rate-limit waits at WARNING; the harness output is the report.
logging.getLogger("smartcar_async").setLevel(logging.ERROR)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------- measurements


def _record(
    out: Outcome, reads: int, served: int, emu_cpu: float, latency: float
) -> dict[str, Any]:
    lat = sorted(out.latencies)
    requests = served if served >= 0 else out.requests
    return {
        "reads": reads,
        "ok": out.ok,
        "errors": out.errors,
        "requests": requests,
        "requests_client": out.requests,
        "wall_s": out.wall,
        "cpu_s": out.cpu,
        "cpu_per_read_us": out.cpu / reads * 1e6 if reads else float("nan"),
        "emulator_cpu_s": emu_cpu,
        "p50_ms": percentile(lat, 50) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
        "added_p50_ms": (percentile(lat, 50) - latency) * 1e3,
        "added_p99_ms": (percentile(lat, 99) - latency) * 1e3,
    }


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repetitions of every numeric field."""
    keys = records[0].keys()
    summary: dict[str, Any] = {k: median([r[k] for r in records]) for k in keys}
    summary["reps"] = len(records)
    if "wall_s" in summary:
        summary["wall_s_all"] = [round(r["wall_s"], 4) for r in records]
    return summary


def burst(
    emu: EmulatorProcess,
    contenders: Sequence[Contender],
    reads: Sequence[Read],
    reps: int,
    warmup: Sequence[Read] | None,
    label: str,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[float]]]:
    """Warm up, then ``reps`` interleaved repetitions; medians and pooled latencies."""
    if warmup:
        for contender in contenders:
            contender.run(warmup)
    records: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    pooled: dict[str, list[float]] = {c.name: [] for c in contenders}
    for rep in range(reps):
        # Rotate who goes first, so no contender always runs on a cold or hot machine.
        order = [*contenders[rep % len(contenders) :], *contenders[: rep % len(contenders)]]
        for contender in order:
            settle()
            served0, cpu0 = emu.stats()
            out = contender.run(reads)
            served1, cpu1 = emu.stats()
            served = served1 - served0 if served0 >= 0 else -1
            rec = _record(out, len(reads), served, cpu1 - cpu0, emu.latency)
            records[contender.name].append(rec)
            pooled[contender.name].extend(out.latencies)
            if out.errors:
                log(f"  ! {label} {contender.name}: {out.errors} reads failed")
    summaries = {name: summarize(recs) for name, recs in records.items()}
    for name, summary in summaries.items():
        log(
            f"  {label:<22} {name:<15} wall {summary['wall_s']:7.3f} s  "
            f"requests {summary['requests']:7.0f}  cpu/read {summary['cpu_per_read_us']:7.1f} us  "
            f"added p50 {summary['added_p50_ms']:7.1f} ms  p99 {summary['added_p99_ms']:7.1f} ms"
        )
    return summaries, pooled


def fleet_reads(ids: Sequence[str], paths: Sequence[str], callers: int = 1) -> list[Read]:
    """Every vehicle x every path x ``callers`` tasks, interleaved across vehicles
    the way independent tasks of a fleet service would issue them."""
    return [(vid, p) for _ in range(callers) for p in paths for vid in ids]


def warmup_slice(reads: Sequence[Read], fraction: float) -> list[Read]:
    return list(reads[: max(1, int(len(reads) * fraction))])


def ratios(
    summaries: dict[str, dict[str, Any]], keys: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each contender's figure divided by smartcar_async's (>1: smartcar_async is better)."""
    base = summaries["smartcar_async"]
    out: dict[str, dict[str, float]] = {}
    for name, summary in summaries.items():
        out[name] = {}
        for key in keys:
            denominator = base[key]
            out[name][key] = summary[key] / denominator if denominator else float("nan")
    return out


# ------------------------------------------------------------------ scenarios


def scenario1(
    emu: EmulatorProcess, contenders: Sequence[Contender], vehicle: str, profile: Profile
) -> dict[str, Any]:
    log("scenario 1: one vehicle, k concurrent distinct reads, 50 ms latency")
    emu.set_latency(LATENCY)
    by_k: dict[str, Any] = {}
    for k in profile.s1_ks:
        reads = [(vehicle, p) for p in ALL_PATHS[:k]]
        summaries, _ = burst(emu, contenders, reads, profile.s1_reps, reads, f"s1 k={k}")
        by_k[str(k)] = summaries
    return {"latency_s": LATENCY, "vehicle": vehicle, "by_k": by_k}


def scenario_fleet(
    emu: EmulatorProcess,
    contenders: Sequence[Contender],
    ids: Sequence[str],
    *,
    callers: int,
    latency: float,
    reps: int,
    fraction: float,
    label: str,
    paths: Sequence[str] = FLEET_PATHS,
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    emu.set_latency(latency)
    reads = fleet_reads(ids, paths, callers)
    summaries, pooled = burst(emu, contenders, reads, reps, warmup_slice(reads, fraction), label)
    result = {
        "latency_s": latency,
        "vehicles": len(ids),
        "paths": list(paths),
        "callers_per_path": callers,
        "logical_reads": len(reads),
        "contenders": summaries,
        "ratios": ratios(
            summaries,
            ("wall_s", "requests", "cpu_per_read_us", "added_p50_ms", "added_p99_ms"),
        ),
    }
    return result, pooled


def scenario4(
    emu: EmulatorProcess, contenders: Sequence[Contender], ids: Sequence[str], profile: Profile
) -> dict[str, Any]:
    log("scenario 4: client CPU per logical read, zero latency")
    by_k: dict[str, Any] = {}
    for k in profile.s4_ks:
        result, _ = scenario_fleet(
            emu,
            contenders,
            ids,
            callers=1,
            latency=0.0,
            reps=profile.s4_reps,
            fraction=profile.warmup_fraction,
            label=f"s4 k={k}",
            paths=FLEET_PATHS[:k],
        )
        by_k[str(k)] = result
    # What the harness itself costs per read (a task, a wrapper, a gather) with
    # no client at all: part of every async contender's figure, shown apart.
    harness = _harness_cost(len(ids) * max(profile.s4_ks))
    k = max(profile.s4_ks)
    floor = aiohttp_batch_cost(emu.url, ids, FLEET_PATHS[:k], profile.s4_reps)
    log(f"  s4 k={k} reference: hand-written aiohttp batch {floor:.1f} us CPU per read")
    raw = raw_batch_cost(emu.url, ids, FLEET_PATHS[:k], profile.s4_reps)
    log(f"  s4 k={k} reference: hand-written raw-protocol batch {raw:.1f} us CPU per read")
    return {
        "by_k": by_k,
        "harness_cpu_per_read_us": harness,
        "hand_batch_k": k,
        "hand_batch_cpu_per_read_us": floor,
        "raw_batch_cpu_per_read_us": raw,
    }


def _harness_cost(n: int) -> float:
    class Null(PlainAiohttp):
        name = "null"

        def _call(self, read: Read) -> Callable[[], Any]:
            return _noop

    async def _noop_coro() -> None:
        await asyncio.sleep(0)

    def _noop() -> Any:
        return _noop_coro()

    null = Null()
    with asyncio.Runner() as runner:
        null._runner = runner
        reads = [("v", "/odometer")] * n
        null.run(reads)
        samples = [null.run(reads).cpu / n * 1e6 for _ in range(5)]
    return median(samples)


def scenario7(
    emu: EmulatorProcess,
    ids: Sequence[str],
    profile: Profile,
    sdk_threads: int,
    names: Sequence[str] = CONTENDERS,
) -> dict[str, Any]:
    log(
        f"scenario 7: application bucket {APP_CAPACITY} + {APP_REFILL_PER_MINUTE:g}/min, "
        f"time x{TIME_SCALE:g} ({60 / TIME_SCALE:g} s per budget minute)"
    )
    emu.set_latency(0.0)
    emu.set_app_limit(APP_CAPACITY, APP_REFILL_PER_MINUTE * TIME_SCALE)
    results: dict[str, Any] = {}
    try:
        for label, callers in (("unique", 1), ("duplicates", profile.dup)):
            waves = _demand_waves(ids, callers, profile.s7_seconds)
            records: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for rep in range(profile.s7_reps):
                order = [*names[rep % len(names) :], *names[: rep % len(names)]]
                for name in order:
                    settle()
                    # A fresh contender per run: no client carries a rate-limit
                    # back-off (or a warm pool) from one run into the next.
                    contender = _fresh(name, sdk_threads)
                    with asyncio.Runner() as runner:
                        contender.start(emu.url, runner)
                        emu.reset_limits()
                        served0, _ = emu.stats()
                        tokens0 = emu.tokens()
                        rec = _paced(contender, waves, profile.s7_seconds)
                        served1, _ = emu.stats()
                        tokens1 = emu.tokens()
                        contender.close()
                    rec["requests"] = served1 - served0 if served0 >= 0 else rec["requests"]
                    spent = tokens1 - tokens0 if tokens0 >= 0 else float("nan")
                    rec["tokens_spent"] = spent
                    rec["reads_per_token_spent"] = rec["delivered"] / spent if spent else 0.0
                    records[name].append(rec)
            summaries = {name: summarize(recs) for name, recs in records.items()}
            for name, s in summaries.items():
                log(
                    f"  s7 {label:<11} {name:<15} delivered {s['delivered']:6.0f} reads "
                    f"({s['reads_per_budget_minute']:6.2f} per budget minute, "
                    f"{s['reads_per_token_spent']:.2f} per token spent, "
                    f"{s['tokens_spent']:.0f}/{s['budget_tokens']:.0f} tokens), "
                    f"{s['failed']:5.0f} failed, "
                    f"{s['abandoned']:4.0f} abandoned, {s['requests']:5.0f} requests"
                )
            results[label] = {
                "callers_per_path": callers,
                "contenders": summaries,
                # smartcar_async's figure over each contender's: >1, it delivered more.
                "advantage": {
                    name: summaries["smartcar_async"]["reads_per_budget_minute"]
                    / s["reads_per_budget_minute"]
                    if s["reads_per_budget_minute"]
                    else float("nan")
                    for name, s in summaries.items()
                },
            }
    finally:
        emu.set_app_limit(None)
    return {
        "capacity": APP_CAPACITY,
        "refill_per_minute": APP_REFILL_PER_MINUTE,
        "time_scale": TIME_SCALE,
        "seconds": profile.s7_seconds,
        "tick_s": TICK,
        "variants": results,
    }


def _fresh(name: str, sdk_threads: int) -> Contender:
    if name == "official_sdk":
        return OfficialSDK(sdk_threads)
    if name == "aiohttp":
        return PlainAiohttp()
    return SmartcarAsync()


def _demand_waves(ids: Sequence[str], callers: int, seconds: float) -> list[list[Read]]:
    """Each wave: 2 vehicles x 5 paths x ``callers``, a wave every TICK seconds."""
    waves: list[list[Read]] = []
    for i in range(int(seconds / TICK)):
        pair = [ids[(2 * i) % len(ids)], ids[(2 * i + 1) % len(ids)]]
        waves.append(fleet_reads(pair, FLEET_PATHS, callers))
    return waves


def _paced(contender: Contender, waves: Sequence[Sequence[Read]], seconds: float) -> dict[str, Any]:
    """Fire one wave every TICK seconds without waiting for the last; count what is
    delivered before the window closes. Reads still pending then are abandoned."""
    results = contender.run_paced(waves, TICK, seconds)
    delivered, failed, late, sent, elapsed = results
    budget_minutes = elapsed * TIME_SCALE / 60.0
    tokens = APP_CAPACITY + APP_REFILL_PER_MINUTE * budget_minutes
    demand = sum(len(w) for w in waves)
    return {
        "demand": demand,
        "delivered": delivered,
        "failed": failed,
        "abandoned": late,
        "requests": sent,
        "elapsed_s": elapsed,
        "budget_minutes": budget_minutes,
        "budget_tokens": tokens,
        "reads_per_budget_minute": delivered / budget_minutes,
        "reads_per_token": delivered / tokens,
    }


# ----------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py", description=__doc__.splitlines()[0]
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, under 2 minutes")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes, seconds (for tests)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write RESULTS.md, results.json and plots here (default: benchmarks/)",
    )
    parser.add_argument(
        "--only", default="1,2,3,4,5,6,7", help="comma-separated scenario numbers to run"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--sdk-threads", type=int, default=SDK_THREADS, help="official SDK thread pool size"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma-separated subset of official_sdk,aiohttp,smartcar_async (scenarios 1-4; "
        "ratios need smartcar_async)",
    )
    parser.add_argument("--fleet", type=int, default=None, help="override the fleet size")
    parser.add_argument("--reps", type=int, default=None, help="override every repetition count")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop of every contender and floor in this process (default asyncio)",
    )
    parser.add_argument(
        "--speedups",
        type=int,
        metavar="ROUNDS",
        help="instead: scenarios 2, 4 and 5 stock (asyncio, json) and with the speedups extra "
        "(uvloop, orjson), each in a fresh process, ROUNDS interleaved rounds; plus the "
        "emulator's throughput both ways. Writes speedups.md and speedups.json",
    )
    return parser.parse_args(argv)


# ------------------------------------------------------------------ speedups side by side


def _use_loop(name: str) -> None:
    """``--loop uvloop``: every loop this process makes (asyncio.run, Runner) is uvloop's."""
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.speedups:
        from _speedups import side_by_side

        return side_by_side(args, Path(__file__), HERE / "results")
    _use_loop(args.loop)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    if args.fleet is not None:
        profile = attrs.evolve(profile, fleet=args.fleet)
    if args.reps is not None:
        reps = args.reps
        profile = attrs.evolve(
            profile,
            s1_reps=reps,
            s2_reps=reps,
            s3_reps=reps,
            s4_reps=reps,
            s5_reps=reps,
            s7_reps=reps,
        )
    wanted = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = set(wanted) - set(CONTENDERS)
    if unknown or "smartcar_async" not in wanted:
        raise SystemExit(f"--contenders must include smartcar_async; unknown: {sorted(unknown)}")
    only = {int(x) for x in args.only.split(",") if x.strip()}
    if args.out is None:
        md_path = HERE / "RESULTS.md"
        data_dir = HERE / "results"
    else:
        md_path = args.out / "RESULTS.md"
        data_dir = args.out
    data_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "profile": attrs.asdict(profile),
        "machine": machine_info(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run.py"
        + (f" --{profile.name}" if profile.name != "full" else ""),
        "sdk_threads": args.sdk_threads,
        "scenarios": {},
    }
    log(
        f"profile {profile.name}: fleet {profile.fleet}, SDK pool {args.sdk_threads} threads, "
        f"{os.cpu_count()} CPUs, load {results['machine'].get('load_average')}"
    )
    scenarios = results["scenarios"]
    pooled_latencies: dict[str, dict[str, list[float]]] = {}

    needs_emulator = bool(only & {1, 2, 3, 4, 5, 7})
    emu = EmulatorProcess(vehicles=profile.fleet) if needs_emulator else None
    try:
        if emu is not None:
            fleet = emu.fleet()
            ids = [vid for vid, _ in fleet]
            phev = next((vid for vid, pt in fleet if pt == "PHEV"), ids[0])
            contenders = [_fresh(name, args.sdk_threads) for name in CONTENDERS if name in wanted]
            with asyncio.Runner() as runner:
                for contender in contenders:
                    contender.start(emu.url, runner)
                try:
                    if 1 in only:
                        scenarios["1"] = scenario1(emu, contenders, phev, profile)
                    if 2 in only:
                        log("scenario 2: fleet x 5 reads, 50 ms latency")
                        scenarios["2"], pooled_latencies["2"] = scenario_fleet(
                            emu,
                            contenders,
                            ids,
                            callers=1,
                            latency=LATENCY,
                            reps=profile.s2_reps,
                            fraction=profile.warmup_fraction,
                            label="s2",
                        )
                    if 3 in only:
                        log(f"scenario 3: fleet x 5 reads x {profile.dup} callers, 50 ms latency")
                        scenarios["3"], pooled_latencies["3"] = scenario_fleet(
                            emu,
                            contenders,
                            ids,
                            callers=profile.dup,
                            latency=LATENCY,
                            reps=profile.s3_reps,
                            fraction=profile.warmup_fraction,
                            label="s3",
                        )
                    if 4 in only:
                        scenarios["4"] = scenario4(emu, contenders, ids, profile)
                finally:
                    for contender in contenders:
                        contender.close()
            if 5 in only:
                from _micro import recorded_items, scenario5

                log("scenario 5: coalescer overhead, in-memory executor")
                items = recorded_items(emu.url, ids[0], FLEET_PATHS)
                scenarios["5"] = scenario5(items, profile.s5_vehicles, profile.s5_reps, profile.dup)
                for label, s in scenarios["5"].items():
                    log(
                        f"  s5 {label:<28} net {s['net_us']:6.2f} us/call "
                        f"(gross {s['gross_us']:.2f}, harness {s['harness_us']:.2f}, "
                        f"models {s['models_us']:.2f})"
                    )
            if 7 in only:
                scenarios["7"] = scenario7(emu, ids, profile, args.sdk_threads, wanted)
        if 6 in only:
            from _micro import scenario6

            log(f"scenario 6: memory of {profile.s6_handles:,} idle handles")
            scenarios["6"] = scenario6(profile.s6_handles)
            for name, s in scenarios["6"].items():
                log(
                    f"  s6 {name:<15} tracemalloc {s['tracemalloc_bytes'] / 1e6:6.1f} MB, "
                    f"RSS {s['rss_bytes'] / 1e6:6.1f} MB"
                )
    finally:
        if emu is not None:
            emu.close()

    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    curves = {
        key: {name: quantile_curve(sorted(lat)) for name, lat in per.items()}
        for key, per in pooled_latencies.items()
    }
    results["latency_quantiles_ms"] = {
        key: {name: [round((v - LATENCY) * 1e3, 3) for v in curve] for name, curve in per.items()}
        for key, per in curves.items()
    }
    (data_dir / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")

    from _report import plots, write_markdown

    images: list[str] = []
    if not args.no_plots:
        images = plots(results, data_dir)
    write_markdown(results, md_path, data_dir, images)
    log(f"done in {results['elapsed_s']:.0f} s: {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
