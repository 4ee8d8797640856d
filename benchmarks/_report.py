"""RESULTS.md and the PNG plots, from the results dictionary that run.py builds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONTENDERS = ("official_sdk", "aiohttp", "smartcar_async")
LABELS = {
    "official_sdk": "official SDK",
    "aiohttp": "plain aiohttp",
    "smartcar_async": "smartcar_async",
}
COLORS = {"official_sdk": "#c0504d", "aiohttp": "#4f81bd", "smartcar_async": "#2e8b57"}
SHORT = {"official_sdk": "SDK", "aiohttp": "aiohttp", "smartcar_async": "sca"}
KEEP_BEGIN = "<!-- BEGIN HAND-WRITTEN: kept by run.py when it rewrites this file -->"
KEEP_END = "<!-- END HAND-WRITTEN -->"

TARGETS = {
    "s2_vs_sdk": 10.0,
    "s2_vs_aiohttp": 3.0,
    "s4_cpu_ratio": 0.3,
    "s5_us": 15.0,
    "s6_mb": 50.0,
}


# ---------------------------------------------------------------- formatting


def _present(by_name: dict[str, Any]) -> list[str]:
    """The contenders that ran, in the canonical order."""
    return [name for name in CONTENDERS if name in by_name]


def _f(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def _x(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.2f}x"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# ------------------------------------------------------------------- targets


def targets(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, margin) rows for whatever scenarios ran."""
    scenarios = results["scenarios"]
    rows: list[tuple[str, str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**MISSED**"

    if "2" in scenarios and {"official_sdk", "aiohttp"} <= scenarios["2"]["ratios"].keys():
        r = scenarios["2"]["ratios"]
        sdk, aio = r["official_sdk"]["wall_s"], r["aiohttp"]["wall_s"]
        t = TARGETS["s2_vs_sdk"]
        rows.append(
            (
                f"S2 wall time: smartcar_async >= {t:g}x faster than the official SDK",
                f"{sdk:.1f}x",
                verdict(sdk >= t),
                f"{(sdk / t - 1) * 100:+.0f}% vs target",
            )
        )
        t = TARGETS["s2_vs_aiohttp"]
        rows.append(
            (
                f"S2 wall time: smartcar_async >= {t:g}x faster than plain aiohttp",
                f"{aio:.1f}x",
                verdict(aio >= t),
                f"{(aio / t - 1) * 100:+.0f}% vs target",
            )
        )
    if (
        "4" in scenarios
        and "5" in scenarios["4"]["by_k"]
        and "aiohttp" in scenarios["4"]["by_k"]["5"]["contenders"]
    ):
        c = scenarios["4"]["by_k"]["5"]["contenders"]
        ratio = c["smartcar_async"]["cpu_per_read_us"] / c["aiohttp"]["cpu_per_read_us"]
        t = TARGETS["s4_cpu_ratio"]
        rows.append(
            (
                f"S4 client CPU per read at k = 5: <= {t:g}x plain aiohttp",
                f"{ratio:.2f}x ({c['smartcar_async']['cpu_per_read_us']:.0f} vs "
                f"{c['aiohttp']['cpu_per_read_us']:.0f} us)",
                verdict(ratio <= t),
                f"{(ratio / t - 1) * 100:+.0f}% vs target",
            )
        )
    if "5" in scenarios:
        worst = max(s["net_us"] for s in scenarios["5"].values())
        t = TARGETS["s5_us"]
        each = ", ".join(f"{s['net_us']:.1f} ({label})" for label, s in scenarios["5"].items())
        rows.append(
            (
                f"S5 coalescer overhead <= {t:g} us per call",
                f"worst {worst:.1f} us; all: {each}",
                verdict(worst <= t),
                f"{(worst / t - 1) * 100:+.0f}% vs target",
            )
        )
    if "6" in scenarios:
        s = scenarios["6"]["smartcar_async"]
        scale = 100_000 / s["handles"]
        mb = max(s["tracemalloc_bytes"], s["rss_bytes"]) * scale / 1e6
        t = TARGETS["s6_mb"]
        rows.append(
            (
                f"S6 100,000 idle handles <= {t:g} MB",
                f"{mb:.1f} MB" + ("" if scale == 1 else f" (scaled from {s['handles']:,})"),
                verdict(mb <= t),
                f"{(mb / t - 1) * 100:+.0f}% vs target",
            )
        )
    return rows


# --------------------------------------------------------------------- plots


def plots(results: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the PNGs; returns their file names (empty without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plots skipped (pip install -e '.[bench]')")
        return []
    scenarios = results["scenarios"]
    written: list[str] = []

    if "1" in scenarios:
        by_k = scenarios["1"]["by_k"]
        ks = sorted(int(k) for k in by_k)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
        for name in _present(by_k[str(ks[0])]):
            # The SDK and aiohttp send the same number of requests: dash one so both show.
            style: dict[str, Any] = {
                "label": LABELS[name],
                "color": COLORS[name],
                "marker": "s" if name == "official_sdk" else "o",
                "markersize": 7 if name == "official_sdk" else 4,
                "linestyle": "--" if name == "official_sdk" else "-",
            }
            ax1.plot(ks, [by_k[str(k)][name]["requests"] for k in ks], **style)
            ax2.plot(ks, [by_k[str(k)][name]["added_p50_ms"] for k in ks], **style)
        ax1.set(xlabel="k concurrent reads on one vehicle", ylabel="HTTP requests")
        ax1.set_title("Scenario 1: requests sent vs k", fontsize=10)
        ax2.set(xlabel="k concurrent reads on one vehicle", ylabel="added latency p50 (ms)")
        ax2.set_title("Scenario 1: added latency vs k", fontsize=10)
        for ax in (ax1, ax2):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "requests_vs_k.png", dpi=90)
        plt.close(fig)
        written.append("requests_vs_k.png")

    bars: list[tuple[str, dict[str, float]]] = []
    if "1" in scenarios:
        kmax = str(max(int(k) for k in scenarios["1"]["by_k"]))
        row = scenarios["1"]["by_k"][kmax]
        bars.append((f"S1 k={kmax}", {n: row[n]["wall_s"] for n in _present(row)}))
    for key, label in (("2", "S2 fleet"), ("3", "S3 fleet+dups")):
        if key in scenarios:
            c = scenarios[key]["contenders"]
            bars.append((label, {n: c[n]["wall_s"] for n in _present(c)}))
    if "4" in scenarios:
        for k, entry in scenarios["4"]["by_k"].items():
            c = entry["contenders"]
            bars.append((f"S4 k={k} (0 ms)", {n: c[n]["wall_s"] for n in _present(c)}))
    if bars:
        fig, ax = plt.subplots(figsize=(9, 3.8))
        width = 0.27
        for i, name in enumerate(CONTENDERS):
            if any(name not in b[1] for b in bars):
                continue
            xs = [j + (i - 1) * width for j in range(len(bars))]
            ys = [b[1][name] for b in bars]
            ax.bar(xs, ys, width, label=LABELS[name], color=COLORS[name])
            for x, y in zip(xs, ys, strict=True):
                ax.text(x, y, f"{y:.2f}", ha="center", va="bottom", fontsize=6.5)
        ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("wall time, s (log scale, median)")
        ax.set_title("Wall time per scenario (lower is better)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "wall_time.png", dpi=90)
        plt.close(fig)
        written.append("wall_time.png")

    curves = results.get("latency_quantiles_ms", {})
    if curves:
        keys = sorted(curves)
        fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.6), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            for name in CONTENDERS:
                values = curves[key].get(name) or []
                if not values:
                    continue
                ys = [i / (len(values) - 1) for i in range(len(values))]
                ax.plot([max(v, 0.01) for v in values], ys, label=LABELS[name], color=COLORS[name])
            ax.set_xscale("log")
            ax.set(xlabel="added latency per read (ms, log)", ylabel="fraction of reads")
            title = {"2": "S2: fleet x 5 reads", "3": "S3: fleet x 5 reads, duplicates"}
            ax.set_title(f"Latency CDF, {title.get(key, key)}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        fig.savefig(out_dir / "latency_cdf.png", dpi=90)
        plt.close(fig)
        written.append("latency_cdf.png")
    return written


# ------------------------------------------------------------------ markdown


def _machine(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    return [
        f"- Date: {results['date']}; command: `{results['command']}` "
        f"(profile `{results['profile']['name']}`, {results['elapsed_s']:.0f} s).",
        f"- Machine: {m.get('cpu', '?')}, {m.get('cpus')} CPUs, {m.get('memory_gb', '?')} GB; "
        f"{m.get('platform')}; load average at start {m.get('load_average')} "
        "(the machine was shared with other engineers' test suites).",
        f"- Software: {m.get('implementation')} {m.get('python')}, aiohttp {m.get('aiohttp')}, "
        f"smartcar {m.get('smartcar')} (requests {m.get('requests')}), "
        f"smartcar_async {m.get('smartcar_async')}.",
        f"- Official SDK thread pool: {results['sdk_threads']} threads. aiohttp and "
        "smartcar_async: default settings (100 connections; smartcar_async's 5 ms batch window).",
    ]


def _fleet_table(entry: dict[str, Any]) -> list[str]:
    rows = []
    c, r = entry["contenders"], entry["ratios"]
    for name in _present(c):
        s = c[name]
        rows.append(
            [
                LABELS[name],
                _f(s["requests"], 0),
                _f(s["wall_s"], 3),
                _f(s["cpu_per_read_us"], 1),
                _f(s["added_p50_ms"], 1),
                _f(s["added_p99_ms"], 1),
                _f(s["emulator_cpu_s"], 2),
                _x(r[name]["requests"]),
                _x(r[name]["wall_s"]),
                _x(r[name]["cpu_per_read_us"]),
                _x(r[name]["added_p50_ms"]),
                _x(r[name]["added_p99_ms"]),
                f"{s['ok']:.0f}/{s['reads']:.0f}",
            ]
        )
    return _table(
        [
            "contender",
            "HTTP requests",
            "wall s",
            "client CPU / read us",
            "added p50 ms",
            "added p99 ms",
            "emulator CPU s",
            "requests ratio",
            "wall ratio",
            "CPU ratio",
            "p50 ratio",
            "p99 ratio",
            "reads ok",
        ],
        rows,
    )


def write_markdown(
    results: dict[str, Any], path: Path, data_dir: Path, images: Sequence[str]
) -> None:
    s = results["scenarios"]
    prof = results["profile"]
    rel = _relative(data_dir, path.parent)
    lines = [
        "# smartcar_async benchmark results",
        "",
        "Generated by `benchmarks/run.py` (see [README.md](README.md) for the method). Every",
        "figure is the median of interleaved repetitions; ratios are *contender / smartcar_async*,",
        "so a ratio above 1 means smartcar_async sent fewer requests, finished sooner or spent",
        "less. Raw numbers: " + f"[`{rel}results.json`]({rel}results.json).",
        "",
        *_machine(results),
        "",
    ]
    rows = targets(results)
    if rows:
        lines += ["## Targets", ""]
        lines += _table(["target", "measured", "verdict", "margin"], [list(r) for r in rows])
        lines.append("")

    if "1" in s:
        e = s["1"]
        lines += [
            f"## Scenario 1: one vehicle, k concurrent distinct reads ({e['latency_s'] * 1e3:.0f} "
            f"ms emulator latency, {prof['s1_reps']} reps)",
            "",
        ]
        rows1 = []
        names = _present(next(iter(e["by_k"].values())))
        for k in sorted(e["by_k"], key=int):
            c = e["by_k"][k]
            rows1.append(
                [
                    k,
                    *[_f(c[n]["requests"], 0) for n in names],
                    *[_f(c[n]["wall_s"] * 1e3, 1) for n in names],
                    *[_f(c[n]["added_p50_ms"], 1) for n in names],
                    *[_f(c[n]["cpu_per_read_us"], 0) for n in names],
                ]
            )
        short = [SHORT[n] for n in names]
        lines += _table(
            [
                "k",
                *[f"requests {n}" for n in short],
                *[f"wall ms {n}" for n in short],
                *[f"added p50 ms {n}" for n in short],
                *[f"CPU/read us {n}" for n in short],
            ],
            rows1,
        )
        lines += [
            "",
            "smartcar_async sends one request whatever k (a plain GET for k = 1, a batch above);",
            "its added latency includes the 5 ms batch window it waits for more reads to join.",
            "",
        ]

    for key, title in (
        ("2", "Scenario 2: fleet, 5 reads per vehicle"),
        ("3", "Scenario 3: fleet, 5 reads per vehicle, each asked by several tasks"),
    ):
        if key in s:
            e = s[key]
            lines += [
                f"## {title}",
                "",
                f"{e['vehicles']:,} vehicles x {len(e['paths'])} paths x "
                f"{e['callers_per_path']} caller(s) = {e['logical_reads']:,} logical reads, "
                f"all issued at once; {e['latency_s'] * 1e3:.0f} ms emulator latency; "
                f"{e['contenders']['smartcar_async']['reps']} reps.",
                "",
                *_fleet_table(e),
                "",
            ]
    if "4" in s:
        lines += ["## Scenario 4: client CPU per logical read, zero latency", ""]
        for k, e in s["4"]["by_k"].items():
            lines += [
                f"k = {k} read(s) per vehicle, {e['vehicles']:,} vehicles "
                f"({e['logical_reads']:,} reads):",
                "",
                *_fleet_table(e),
                "",
            ]
        lines += [
            f"The benchmark's own caller (a task, a wrapper and a gather per read, no client) "
            f"costs {s['4']['harness_cpu_per_read_us']:.1f} us of CPU per read; it is included in",
            "both async contenders' figures above (a real caller pays it too).",
            "",
        ]
        if "hand_batch_cpu_per_read_us" in s["4"]:
            k = str(s["4"]["hand_batch_k"])
            floor = s["4"]["hand_batch_cpu_per_read_us"]
            plain = s["4"]["by_k"][k]["contenders"].get("aiohttp", {}).get("cpu_per_read_us")

            def versus(value: float) -> str:
                return f" = {value / plain:.2f}x plain aiohttp" if plain else ""

            lines += [
                f"References at k = {k} (not contenders): one coroutine and one POST per "
                "vehicle, a future per read resolved with the raw item body, no task per read; "
                "no models, no dedupe, no error handling ([`_floors.py`](_floors.py)). The "
                "contenders' figures include the harness's task per read (above); the floors' "
                "do not.",
                "",
                f"* over one aiohttp session: {floor:.1f} us per read{versus(floor)}. The floor "
                "any batching client on aiohttp starts from.",
            ]
            if "raw_batch_cpu_per_read_us" in s["4"]:
                raw = s["4"]["raw_batch_cpu_per_read_us"]
                lines.append(
                    f"* over bare asyncio protocols, no aiohttp (kept-alive loopback "
                    "connections, a pre-formatted request, Content-Length parsing only; not a "
                    f"usable HTTP client): {raw:.1f} us per read{versus(raw)}. The gap between "
                    "the two is aiohttp's own request machinery."
                )
            lines.append("")
    if "5" in s:
        lines += [
            "## Scenario 5: the coalescer's own overhead (in-memory executor)",
            "",
        ]
        rows5 = []
        for label, e in s["5"].items():
            rows5.append(
                [
                    label,
                    f"{e['vehicles']:,} x {e['paths']} x {e['callers_per_path']}",
                    _f(e["gross_us"], 2),
                    _f(e["harness_us"], 2),
                    f"**{_f(e['net_us'], 2)}**",
                    _f(e["models_us"], 2),
                    _f(e["net_without_models_us"], 2),
                ]
            )
        lines += _table(
            [
                "variant",
                "vehicles x paths x callers",
                "gross us/call",
                "bare harness us/call",
                "net us/call",
                "of which model building",
                "net without models",
            ],
            rows5,
        )
        lines += [
            "",
            "CPU time per call. *Gross*: a task per call awaiting `Coalescer.read` with an "
            "executor that answers at once from items recorded from the emulator (window 0, so "
            "no timer wait). *Bare harness*: the same tasks awaiting a future resolved on the "
            "next loop turn. *Net* = gross - bare: enqueue, flush, flight task, routing and "
            "model building, per call, garbage collection included (garbage is collected "
            "before each burst, so a burst pays for what its own objects cost the collector).",
            "",
        ]
    if "6" in s:
        lines += ["## Scenario 6: memory of idle vehicle handles", ""]
        rows6 = []
        for name in CONTENDERS:
            e = s["6"][name]
            rows6.append(
                [
                    LABELS[name] + (" (an (id, token) tuple)" if name == "aiohttp" else ""),
                    f"{e['handles']:,}",
                    _f(e["tracemalloc_bytes"] / 1e6, 1),
                    _f(e["rss_bytes"] / 1e6, 1),
                    _f(e["tracemalloc_bytes"] / e["handles"], 0),
                ]
            )
        lines += _table(
            ["contender", "handles", "tracemalloc MB", "RSS delta MB", "bytes per handle"], rows6
        )
        lines += [
            "",
            "Fresh interpreter per figure; ids and tokens (36-character strings, one token per "
            "vehicle) exist before",
            "the measurement, so only the handles (and the list holding them) are counted.",
            "",
        ]
    if "7" in s:
        e = s["7"]
        lines += [
            "## Scenario 7: reads delivered under the application rate limit",
            "",
            f"Emulator bucket: capacity {e['capacity']}, refill {e['refill_per_minute']:g}/minute "
            f"(Smartcar's documented default), with time compressed {e['time_scale']:g}x: a budget "
            f"minute lasts {60 / e['time_scale']:g} s, so a {e['seconds']:g} s window is "
            f"{e['seconds'] * e['time_scale'] / 60:g} budget minutes and "
            f"{e['capacity'] + e['refill_per_minute'] * e['seconds'] * e['time_scale'] / 60:g} "
            "tokens, starting from a full bucket.",
            f"Demand far above the budget: every {e['tick_s'] * 1e3:.0f} ms, 2 vehicles x 5 "
            "paths x callers. The emulator charges one token per HTTP request, **a batch "
            "included whatever its size** (Smartcar bills each path, but its bucket counts "
            "requests: smartcar-api.md, Batch), answers 429 `RATE_LIMIT:SMARTCAR_API` + "
            "Retry-After when the bucket is empty, and a rejected request costs nothing. So a "
            "batch of five reads costs one token where five GETs cost five, and deduplication "
            "saves the rest.",
            "",
        ]
        rows7 = []
        for label, v in e["variants"].items():
            for name in _present(v["contenders"]):
                c = v["contenders"][name]
                rows7.append(
                    [
                        f"{label} ({v['callers_per_path']} caller(s)/path)",
                        LABELS[name],
                        _f(c["demand"], 0),
                        _f(c["delivered"], 0),
                        _f(c["reads_per_budget_minute"], 2),
                        f"{_f(c['tokens_spent'], 0)} / {_f(c['budget_tokens'], 0)}",
                        _f(c["reads_per_token_spent"], 2),
                        _f(c["failed"], 0),
                        _f(c["abandoned"], 0),
                        _f(c["requests"], 0),
                        _x(v["advantage"][name]),
                    ]
                )
        lines += _table(
            [
                "variant",
                "contender",
                "reads asked",
                "reads delivered",
                "per budget minute",
                "tokens spent / available",
                "reads per token spent",
                "failed",
                "still waiting at window end",
                "HTTP requests",
                "smartcar_async advantage",
            ],
            rows7,
        )
        lines += [
            "",
            "*Reads per token spent* is the efficiency that holds at any time scale: Smartcar's "
            "budget is tokens, and every contender that keeps asking spends all it is given. "
            "*Still waiting*: reads that had neither an answer nor an error when the window "
            "closed; smartcar_async holds reads behind its own rate-limit gate (it honours "
            "Retry-After, in whole seconds, which is 10 budget minutes at this compression) "
            "instead of sending requests that would be refused, so a few tokens refilled during "
            "its last wait are still unspent at the end. The other two fail each refused read at "
            "once. *Advantage*: smartcar_async's reads per budget minute over the contender's.",
            "",
        ]
    if images:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({rel}{name})" for name in images]
        lines.append("")

    kept = _kept_section(path)
    lines += [KEEP_BEGIN, kept.strip("\n"), KEEP_END, ""]
    path.write_text("\n".join(lines))


def _kept_section(path: Path) -> str:
    if path.exists():
        text = path.read_text()
        if KEEP_BEGIN in text and KEEP_END in text:
            return text.split(KEEP_BEGIN, 1)[1].split(KEEP_END, 1)[0]
    return (
        "\n## Profile\n\n(Run `python benchmarks/profile_hot_path.py` and record findings here.)\n"
    )


def _relative(data_dir: Path, md_dir: Path) -> str:
    try:
        rel = data_dir.resolve().relative_to(md_dir.resolve())
    except ValueError:
        return str(data_dir.resolve()) + "/"
    text = str(rel)
    return "" if text == "." else text + "/"
