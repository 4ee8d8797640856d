"""Scenario 6 child: memory of N idle vehicle handles, in a fresh interpreter.

    python benchmarks/_memory_child.py {smartcar_async|official_sdk|aiohttp} {tracemalloc|rss} N

Vehicle ids and tokens (36-character UUID strings, one token per vehicle, as
for a fleet of different users) are built BEFORE the measurement starts: an
application holds them whatever client it uses. Only the handles are measured.
``aiohttp`` has no handle object; its row measures the ``(id, token)`` tuple
an application would keep instead. Prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _factory(who: str) -> Callable[[str, str], Any]:
    if who == "smartcar_async":
        import smartcar_async

        client = smartcar_async.Client(api_origin="http://127.0.0.1:9")

        def make(vid: str, token: str) -> Any:
            return client.vehicle(vid, access_token=token, unit_system="metric")

        return make
    if who == "official_sdk":
        import smartcar

        def make_sdk(vid: str, token: str) -> Any:
            return smartcar.Vehicle(vid, token, {"unit_system": "metric"})

        return make_sdk
    if who == "aiohttp":
        return lambda vid, token: (vid, token)
    raise SystemExit(f"unknown contender {who!r}")


def main() -> int:
    who, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    make = _factory(who)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(count)]
    tokens = [str(uuid.UUID(int=(i + 1) << 64)) for i in range(count)]
    make(ids[0], tokens[0])  # first-use costs (imports, caches) are not per handle
    gc.collect()
    result: dict[str, Any] = {}
    if mode == "tracemalloc":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        handles = [make(vid, tok) for vid, tok in zip(ids, tokens, strict=True)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        result["tracemalloc_bytes"] = after - before
    else:
        before = _rss()
        handles = [make(vid, tok) for vid, tok in zip(ids, tokens, strict=True)]
        gc.collect()
        result["rss_bytes"] = _rss() - before
    assert len(handles) == count
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
