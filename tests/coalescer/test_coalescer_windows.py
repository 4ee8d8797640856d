"""The batch window's timers: queues whose windows end in the same tick share one.

Driven directly with an in-memory executor, like the invariant tests. The
only time assertion is a lower bound (a window is never cut short), which
holds however slow the machine is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from smartcar_async._batch import Answer, RawItem
from smartcar_async._coalescer import Coalescer, QueueKey
from smartcar_async._exceptions import ClientClosedError
from smartcar_async._models import Response
from smartcar_async._observability import Counters, Hooks


class Recorder:
    """Answers every path at once and notes when each flight was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...], float]] = []

    async def __call__(self, key: QueueKey, paths: tuple[str, ...], spent: int = 0) -> Answer:
        self.sent.append((key.vehicle_id, paths, asyncio.get_running_loop().time()))
        return Answer({p: RawItem(200, {"path": p}, {}) for p in paths}, "req-1")


def make(api: Recorder, window: float, max_batch_size: int = 25) -> Coalescer:
    return Coalescer(
        executor=api,
        window=window,
        max_batch_size=max_batch_size,
        max_flights_per_queue=1,
        join_inflight=True,
        counters=Counters(),
        hooks=Hooks((), ()),
    )


def keys(n: int) -> list[QueueKey]:
    return [QueueKey(f"vehicle-{i}", "token", "metric", None) for i in range(n)]


def start(coalescer: Coalescer, key: QueueKey, path: str) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coalescer.read(key, path, Response))


async def test_a_burst_over_a_fleet_arms_a_few_timers_not_one_per_vehicle() -> None:
    api = Recorder()
    # Ticks of 100 ms: queueing the burst would have to take that long to span three.
    coalescer = make(api, window=0.5)
    tasks = [start(coalescer, k, p) for k in keys(300) for p in ("/odometer", "/location")]
    await asyncio.sleep(0)  # every read is queued, in one loop turn
    assert coalescer.queue_count == 300
    # One tick, or two when the burst straddles a tick boundary.
    assert 1 <= coalescer.window_count <= 2
    results = await asyncio.gather(*tasks)
    assert [r.body["path"] for r in results[:2]] == ["/odometer", "/location"]
    assert len(api.sent) == 300
    assert all(len(paths) == 2 for _, paths, _ in api.sent)
    assert (coalescer.window_count, coalescer.queue_count, coalescer.task_count) == (0, 0, 0)


async def test_a_window_of_zero_is_one_handle_for_the_next_loop_turn() -> None:
    api = Recorder()
    coalescer = make(api, window=0)
    tasks = [start(coalescer, k, "/vin") for k in keys(50)]
    await asyncio.sleep(0)
    assert coalescer.window_count == 1
    await asyncio.gather(*tasks)
    assert len(api.sent) == 50
    assert coalescer.window_count == 0


async def test_a_window_is_never_cut_short_by_sharing_a_timer() -> None:
    api = Recorder()
    window = 0.02
    coalescer = make(api, window=window)
    loop = asyncio.get_running_loop()
    first: list[float] = []
    tasks = []
    for key in keys(20):
        first.append(loop.time())
        tasks.append(start(coalescer, key, "/odometer"))
        await asyncio.sleep(0.001)  # spread the arming over several ticks
    await asyncio.gather(*tasks)
    sent_at = {vehicle: at for vehicle, _, at in api.sent}
    for key, armed in zip(keys(20), first, strict=True):
        # The loop may run a timer up to its clock resolution early.
        assert sent_at[key.vehicle_id] - armed >= window - 0.001


async def test_cancelling_every_caller_disarms_the_shared_timer() -> None:
    api = Recorder()
    coalescer = make(api, window=0.2)
    fleet = keys(3)
    tasks = {k.vehicle_id: start(coalescer, k, "/odometer") for k in fleet}
    await asyncio.sleep(0)
    assert 1 <= coalescer.window_count <= 2  # two if the reads straddle a tick
    tasks["vehicle-0"].cancel()
    await asyncio.sleep(0)
    # vehicle-0 left its window; the others keep theirs armed.
    assert coalescer.queue_count == 2
    assert coalescer.window_count >= 1
    for name in ("vehicle-1", "vehicle-2"):
        tasks[name].cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    assert (coalescer.window_count, coalescer.queue_count) == (0, 0)
    await asyncio.sleep(0.3)  # past the window: no timer was left to fire
    assert api.sent == []


async def test_a_full_batch_leaves_its_window_and_the_others_keep_theirs() -> None:
    api = Recorder()
    coalescer = make(api, window=0.05, max_batch_size=2)
    full, other = keys(2)
    tasks = [start(coalescer, other, "/odometer")]
    tasks += [start(coalescer, full, p) for p in ("/odometer", "/location")]
    for _ in range(2):  # the reads queue, then the flight's task takes its first step
        await asyncio.sleep(0)
    # The full queue was flushed at once, without waiting for the window.
    assert [vehicle for vehicle, _, _ in api.sent] == ["vehicle-0"]
    assert coalescer.window_count == 1
    await asyncio.gather(*tasks)
    assert [vehicle for vehicle, _, _ in api.sent] == ["vehicle-0", "vehicle-1"]
    assert coalescer.window_count == 0


async def test_close_disarms_every_window() -> None:
    api = Recorder()
    coalescer = make(api, window=0.05)
    tasks = [start(coalescer, k, "/vin") for k in keys(10)]
    await asyncio.sleep(0)
    assert coalescer.window_count >= 1
    await coalescer.close(grace=1.0)
    assert coalescer.window_count == 0
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(o, ClientClosedError) for o in outcomes)
    assert api.sent == []


async def test_one_queue_failing_to_flush_does_not_strand_its_window(
    monkeypatch: Any, caplog: Any
) -> None:
    # A bug in one vehicle's flush (simulated) must not keep the other
    # vehicles of the same window from being sent.
    api = Recorder()
    coalescer = make(api, window=0)  # one window for the whole loop turn, deterministically
    broken, *fine = keys(3)
    launch = coalescer._launch

    def launch_or_fail(queue: Any, slots: Any) -> None:
        if queue.key == broken:
            raise RuntimeError("simulated bug")
        launch(queue, slots)

    monkeypatch.setattr(coalescer, "_launch", launch_or_fail)
    stuck = start(coalescer, broken, "/odometer")
    tasks = [start(coalescer, k, "/odometer") for k in fine]
    await asyncio.sleep(0)
    assert coalescer.window_count == 1
    results = await asyncio.gather(*tasks)
    assert [r.body["path"] for r in results] == ["/odometer", "/odometer"]
    assert "Flushing vehicle vehicle-0 failed" in caplog.text
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
