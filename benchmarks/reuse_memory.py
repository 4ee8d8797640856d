"""Memory of the reuse cache at 100,000 vehicles x 5 paths (tracemalloc; no network).

    python benchmarks/reuse_memory.py               # 100,000 vehicles x 5 paths
    python benchmarks/reuse_memory.py --vehicles 2000 --out /tmp/x   # seconds

Each vehicle has its own token (the worst case: one credentials scope per
vehicle) and five answers built as a read builds them (the model from a JSON
body, its ``Meta`` from ``SC-*`` headers with a request id and two times).
Reported: the bytes the answers themselves take (what a caller holding them
would pay anyway), the bytes the cache adds on top of them (keys, entries,
per-vehicle maps, the LRU order), and both per entry. Written to
``results/reuse_memory.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

from smartcar_async import _models as m
from smartcar_async._coalescer import QueueKey
from smartcar_async._converter import structure
from smartcar_async._observability import Counters
from smartcar_async._reuse import ReadingCache, scope_of

HERE = Path(__file__).resolve().parent

#: (path, model, body) of the five reads.
READS: tuple[tuple[str, type[Any], dict[str, Any]], ...] = (
    ("/odometer", m.Odometer, {"distance": 29110.0}),
    ("/location", m.Location, {"latitude": 37.7749, "longitude": -122.4194}),
    ("/battery", m.Battery, {"percentRemaining": 0.78, "range": 303.42}),
    ("/charge", m.Charge, {"isPluggedIn": True, "state": "CHARGING"}),
    ("/security", m.LockStatus, {"isLocked": True, "doors": [], "windows": []}),
)


def _answers(vehicles: int) -> list[tuple[QueueKey, list[tuple[str, Any]]]]:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for i in range(vehicles):
        key = QueueKey(f"{uuid.UUID(int=i)}", f"token-{i:08d}-{'x' * 24}", "metric", None)
        when = base + dt.timedelta(seconds=i)
        models = []
        for path, model, body in READS:
            headers = {
                "sc-data-age": when.isoformat(),
                "sc-fetched-at": (when + dt.timedelta(seconds=1)).isoformat(),
                "sc-unit-system": "metric",
                "sc-request-id": str(uuid.uuid4()),
            }
            models.append((path, structure(model, body, m.Meta.from_headers(headers))))
        out.append((key, models))
    return out


def measure(vehicles: int) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    start = tracemalloc.take_snapshot()
    start_bytes = sum(s.size for s in start.statistics("filename"))
    answers = _answers(vehicles)
    gc.collect()
    models_bytes = tracemalloc.get_traced_memory()[0]
    entries = vehicles * len(READS)
    cache = ReadingCache(entries, Counters())
    for key, models in answers:
        scope = scope_of(key)
        for path, value in models:
            cache.store(key, scope, path, value, cache.epoch())
    assert len(cache) == entries
    gc.collect()
    total = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del start, start_bytes
    added = total - models_bytes
    return {
        "vehicles": vehicles,
        "paths": len(READS),
        "entries": entries,
        "answers_bytes": models_bytes,
        "cache_bytes": added,
        "answers_bytes_per_entry": round(models_bytes / entries, 1),
        "cache_bytes_per_entry": round(added / entries, 1),
        "total_mib": round(total / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    result = measure(args.vehicles)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reuse_memory.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
