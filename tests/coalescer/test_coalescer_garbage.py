"""A delivered read leaves no reference cycle behind: reference counting frees it all.

A flight and its slots point at each other while the flight runs. Left
linked, every flight became cyclic garbage (about ten objects for a lone
read), which only the garbage collector frees; in a burst over a fleet
those collections cost more than the coalescer's own work. These tests run
bursts with the collector off and check that it has nothing to find after.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from smartcar_async._batch import Answer, RawItem
from smartcar_async._coalescer import Coalescer, QueueKey
from smartcar_async._models import Response
from smartcar_async._observability import Counters, Hooks


async def answer_at_once(key: QueueKey, paths: tuple[str, ...], spent: int = 0) -> Answer:
    await asyncio.sleep(0)
    return Answer({p: RawItem(200, {"path": p}, {"SC-Request-Id": "r"}) for p in paths}, "r")


def make(window: float) -> Coalescer:
    return Coalescer(
        executor=answer_at_once,
        window=window,
        max_batch_size=25,
        max_flights_per_queue=1,
        join_inflight=True,
        counters=Counters(),
        hooks=Hooks((), ()),
    )


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_off")
@pytest.mark.parametrize(
    ("paths", "callers"),
    [
        pytest.param(("/odometer",), 1, id="lone read"),
        pytest.param(("/odometer", "/location", "/vin"), 1, id="batch"),
        pytest.param(("/odometer", "/location"), 3, id="duplicates"),
    ],
)
@pytest.mark.parametrize("window", [0.0, 0.002])
async def test_a_burst_leaves_nothing_for_the_garbage_collector(
    paths: tuple[str, ...], callers: int, window: float
) -> None:
    coalescer = make(window)
    keys = [QueueKey(f"vehicle-{i}", "token", "metric", None) for i in range(50)]
    reads = [coalescer.read(k, p, Response) for _ in range(callers) for k in keys for p in paths]
    results = await asyncio.gather(*reads)
    assert len(results) == len(keys) * len(paths) * callers
    assert (coalescer.queue_count, coalescer.task_count, coalescer.window_count) == (0, 0, 0)
    del results, reads
    await asyncio.sleep(0)  # the flights' done callbacks have run
    assert gc.collect() == 0
