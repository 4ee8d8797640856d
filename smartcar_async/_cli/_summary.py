"""What ``python -m smartcar_async poll`` counts and reports: the run's tally and its summary.

The tally only counts what the run measured: results as the pollers yield
them (per-read timings included) and the client's own counters. The summary
comes in two shapes from the same figures: rows for the renderers
(:mod:`._render`), and plain JSON data (:func:`summary_figures`), which is
also what ``--summary-json`` writes; :data:`SUMMARY_SCHEMA` numbers its shape.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from .._poller import PollResult
from .._version import __version__

if TYPE_CHECKING:
    from .._observability import ClientStats

__all__ = [
    "EXIT_STATUSES",
    "SUMMARY_SCHEMA",
    "RoundTally",
    "Tally",
    "requests_line",
    "summary_figures",
    "summary_rows",
]

#: The version of the ``--summary-json`` shape: raised only when a key changes
#: meaning or goes away (new keys may appear without it).
SUMMARY_SCHEMA: Final = 1

#: Every exit status of ``smartcar-async poll``, and what it means.
EXIT_STATUSES: Final = {
    0: "finished, and at least one read succeeded",
    1: "no read succeeded, or a fatal error",
    2: "bad arguments or a bad vehicles file (nothing was polled)",
    130: "stopped by SIGINT (Ctrl-C), after a clean stop",
    143: "stopped by SIGTERM, after a clean stop",
}

#: Latency samples kept exactly; past this a uniform sample of this size
#: stands for them, so a run of any length uses bounded memory.
MAX_SAMPLES: Final = 100_000


class Samples:
    """Per-read latencies: all of them up to ``capacity``, then a uniform reservoir sample."""

    __slots__ = ("_capacity", "_random", "count", "values")

    def __init__(self, capacity: int = MAX_SAMPLES) -> None:
        self._capacity = capacity
        self._random = random.Random(0)
        self.values: list[float] = []
        self.count = 0

    def add(self, value: float) -> None:
        self.count += 1
        if len(self.values) < self._capacity:
            self.values.append(value)
            return
        slot = self._random.randrange(self.count)
        if slot < self._capacity:
            self.values[slot] = value

    def percentile(self, p: float) -> float | None:
        """The nearest-rank percentile: always a latency that was actually measured."""
        if not self.values:
            return None
        ordered = sorted(self.values)
        rank = max(1, math.ceil(p / 100.0 * len(ordered)))
        return ordered[rank - 1]


class RoundTally:
    """Counts for one round of the main job."""

    __slots__ = (
        "done",
        "errored",
        "first_start",
        "last_end",
        "number",
        "ok",
        "parked",
        "skipped",
    )

    def __init__(self, number: int) -> None:
        self.number = number
        self.done = 0
        self.ok = 0
        self.errored = 0
        self.parked = 0
        self.skipped = 0
        self.first_start: dt.datetime | None = None
        self.last_end: dt.datetime | None = None

    @property
    def seconds(self) -> float:
        if self.first_start is None or self.last_end is None:
            return 0.0
        return max(0.0, (self.last_end - self.first_start).total_seconds())


class Tally:
    """Everything the summary says that comes from results rather than client counters."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.polls = 0
        self.ok = 0
        self.errored = 0
        # Polls in which every read was parked (nothing was sent).
        self.parked = 0
        self.skipped: Counter[str] = Counter()
        self.errors_by_type: Counter[str] = Counter()
        self.latencies = Samples()
        self.rounds_completed = 0
        self.rounds_seen = 0
        self._open: dict[int, RoundTally] = {}
        self.other_polls = 0
        # Reads of both jobs, by outcome.
        self.reads_ok = 0
        self.reads_failed = 0
        # Reads not requested because they are parked, by reason.
        self.reads_parked: Counter[str] = Counter()
        # Reads not requested because a webhook answered them within the interval.
        self.reads_fresh = 0

    def record(self, result: PollResult, *, main: bool = True) -> RoundTally | None:
        """Count one result; for the main job, return its round's tally."""
        self.reads_ok += len(result.values)
        self.reads_failed += len(result.errors)
        self.reads_parked.update(result.parked.values())
        self.reads_fresh += len(result.fresh)
        for error in result.errors.values():
            self.errors_by_type[type(error).__name__] += 1
        for seconds in result.timings.values():
            self.latencies.add(seconds)
        if not main:
            self.other_polls += 1
            return None
        self.polls += 1
        round_ = self._open.get(result.round)
        if round_ is None:
            round_ = self._open[result.round] = RoundTally(result.round)
            self.rounds_seen = max(self.rounds_seen, result.round)
        round_.done += 1
        outcome = result.outcome
        if result.skipped is not None:
            self.skipped[result.skipped] += 1
            round_.skipped += 1
        elif outcome == "error":
            self.errored += 1
            round_.errored += 1
        elif outcome == "parked":
            self.parked += 1
            round_.parked += 1
        else:
            self.ok += 1
            round_.ok += 1
        if outcome in ("ok", "error"):
            end = result.started_at + dt.timedelta(seconds=result.latency)
            if round_.first_start is None or result.started_at < round_.first_start:
                round_.first_start = result.started_at
            if round_.last_end is None or end > round_.last_end:
                round_.last_end = end
        if round_.done >= self.expected:
            # A finished round is forgotten, so the tally stays small however long the run.
            del self._open[result.round]
            self.rounds_completed += 1
        return round_

    @property
    def open_rounds(self) -> list[RoundTally]:
        return [self._open[n] for n in sorted(self._open)]


_SKIP_WORDS: Final = {
    "backoff": "backing off",
    "late": "late",
    "budget": "over the monthly budget",
    "make_limit": "held by a make limit",
    "fresh": "answered by webhooks",
}


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:,.0f} ms"


def _n(value: int) -> str:
    return f"{value:,}"


def summary_figures(
    tally: Tally,
    stats: ClientStats,
    *,
    vehicles: int,
    rounds: int | None,
    wall_seconds: float,
    results_written: int | None,
    stopped_by: str | None,
    error: str | None,
    exit_status: int,
) -> dict[str, Any]:
    """The run's figures as plain JSON data: what ``--summary-json`` writes.

    The shape is documented in the README (fleet polling) and versioned by
    ``schema``. HTTP requests add up: ``total == batches + single_gets +
    writes``, and ``retries`` counts requests among them, not extra ones.
    Polls add up too: ``total == ok + error + parked + skipped``; ``parked``
    polls sent nothing, every read of theirs being parked.
    """
    samples = tally.latencies
    return {
        "schema": SUMMARY_SCHEMA,
        "version": __version__,
        "exit_status": exit_status,
        "stopped_by": stopped_by,
        "error": error,
        "elapsed_seconds": round(wall_seconds, 3),
        "vehicles": vehicles,
        "rounds": {
            "planned": rounds,
            "completed": tally.rounds_completed,
            "started": tally.rounds_seen,
        },
        "polls": {
            "total": tally.polls,
            "ok": tally.ok,
            "error": tally.errored,
            "parked": tally.parked,
            "skipped": sum(tally.skipped.values()),
            "skipped_by_reason": dict(sorted(tally.skipped.items())),
            "second_job": tally.other_polls,
        },
        "reads": {
            "logical": stats.logical_reads,
            "ok": tally.reads_ok,
            "failed": tally.reads_failed,
            "parked": sum(tally.reads_parked.values()),
            "parked_by_reason": dict(sorted(tally.reads_parked.items())),
            "deduplicated": stats.dedupe_hits,
            "failed_by_type": dict(tally.errors_by_type.most_common()),
        },
        "http_requests": {
            "total": stats.http_requests,
            "batches": stats.batches,
            "single_gets": stats.single_gets,
            "writes": stats.writes,
            "retries": stats.retries,
            "failed": stats.failed_requests,
            "sub_requests": stats.sub_requests,
        },
        "billed_requests": billed_figures(tally, stats),
        "rate_limited": stats.rate_limited,
        "read_latency_seconds": {f"p{p}": _rounded(samples.percentile(p)) for p in (50, 95, 99)},
        "results_written": results_written,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def billed_figures(tally: Tally, stats: ClientStats) -> dict[str, int]:
    """Billed requests sent, and those saved, by what saved them.

    A saved read is a billed request not sent: answered from a stored answer
    (``--max-age``), from a webhook reading (reused, or a poll's read left out
    as fresh), by another caller's identical read, or not asked while parked.
    """
    by_webhooks = stats.webhook_reused_reads
    return {
        "sent": stats.billed_requests,
        "saved_by_reuse": stats.reused_reads - by_webhooks,
        "saved_by_webhooks": tally.reads_fresh + by_webhooks,
        "saved_by_deduplication": stats.dedupe_hits,
        "saved_by_parking": sum(tally.reads_parked.values()),
    }


def billed_line(tally: Tally, stats: ClientStats) -> str:
    """``N sent · saved: R by reuse, W by webhooks, D by deduplication, P by parking``."""
    f = billed_figures(tally, stats)
    return (
        f"{_n(f['sent'])} sent · saved: {_n(f['saved_by_reuse'])} by reuse, "
        f"{_n(f['saved_by_webhooks'])} by webhooks, "
        f"{_n(f['saved_by_deduplication'])} by deduplication, "
        f"{_n(f['saved_by_parking'])} by parking"
    )


def requests_line(stats: ClientStats) -> str:
    """``N = batches + single GETs (+ writes); of which R retries``: the parts add up."""
    parts = [
        _plural(stats.batches, "batch", "batches"),
        _plural(stats.single_gets, "single GET", "single GETs"),
    ]
    if stats.writes:
        parts.append(_plural(stats.writes, "write", "writes"))
    line = f"{_n(stats.http_requests)} = " + " + ".join(parts)
    return line + f"; of which {_plural(stats.retries, 'retry', 'retries')}"


def summary_rows(
    tally: Tally,
    stats: ClientStats,
    *,
    vehicles: str,
    jobs: str,
    schedule: str,
    wall_seconds: float,
    results: str,
    stopped_by: str | None,
    exit_status: int,
) -> list[tuple[str, str]]:
    """The summary, as (name, value) rows; both renderers show exactly these."""
    skipped = sum(tally.skipped.values())
    polls = f"{_n(tally.polls)}: {_n(tally.ok)} ok, {_n(tally.errored)} with errors"
    if tally.parked:
        polls += f", {_n(tally.parked)} all parked"
    if skipped:
        reasons = ", ".join(
            f"{n} {_SKIP_WORDS.get(reason, reason)}" for reason, n in sorted(tally.skipped.items())
        )
        polls += f", {_n(skipped)} skipped ({reasons})"
    if tally.other_polls:
        polls += f"; second job {_n(tally.other_polls)}"
    errors = ", ".join(f"{name} {_n(n)}" for name, n in tally.errors_by_type.most_common())
    samples = tally.latencies
    latency = (
        f"p50 {_ms(samples.percentile(50))} · p95 {_ms(samples.percentile(95))}"
        f" · p99 {_ms(samples.percentile(99))} ({_n(samples.count)} reads)"
    )
    rounds = f"{tally.rounds_completed} complete"
    if stopped_by is not None:
        rounds += f" (interrupted by {stopped_by} in round {tally.rounds_seen})"
    outcomes = f"{_n(tally.reads_ok)} ok, {_n(tally.reads_failed)} failed"
    parked = sum(tally.reads_parked.values())
    parked_line = "none"
    if parked:
        reasons = ", ".join(f"{reason} {_n(n)}" for reason, n in sorted(tally.reads_parked.items()))
        parked_line = f"{_n(parked)} not requested ({reasons})"
    return [
        ("Vehicles", vehicles),
        ("Reads", jobs),
        ("Schedule", schedule),
        ("Rounds", rounds),
        ("Polls (vehicle-rounds)", polls),
        ("Logical reads", f"{_n(stats.logical_reads)} ({outcomes})"),
        ("Parked reads", parked_line),
        ("HTTP requests sent", requests_line(stats)),
        ("Billed requests", billed_line(tally, stats)),
        ("Sub-requests (in batches)", _n(stats.sub_requests)),
        ("Dedupe hits", _n(stats.dedupe_hits)),
        ("Coalescing ratio", f"{stats.coalescing_ratio:.2f} reads per read request"),
        ("Rate limited (429)", _n(stats.rate_limited)),
        ("Errors by type", errors or "none"),
        ("Read latency", latency),
        ("Wall time", f"{wall_seconds:.1f} s"),
        ("Results", results),
        ("Exit status", f"{exit_status} ({EXIT_STATUSES.get(exit_status, 'unknown')})"),
    ]
