"""Property test of the coalescer: every awaiter resolves exactly once.

The coalescer is driven directly with an in-memory executor (no HTTP), so
Hypothesis can try hundreds of interleavings of calls, cancellations,
per-path errors, whole-batch failures and delays in a few seconds. The
loopback tests in test_coalescing.py cover the same rules over real HTTP.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcar_async._batch import Answer, RawItem
from smartcar_async._coalescer import Coalescer, QueueKey
from smartcar_async._exceptions import (
    APIConnectionError,
    ClientClosedError,
    ServerError,
    SmartcarError,
    VehicleStateError,
)
from smartcar_async._models import Response
from smartcar_async._observability import Counters, Hooks

PATHS = ("/odometer", "/location", "/battery", "/fuel", "/vin")
KEYS = tuple(QueueKey(f"vehicle-{i}", "token", "metric", None) for i in range(3))

# What the fake API answers for a path: a body, a per-path 409, or nothing at all.
item_outcome = st.sampled_from(["ok", "ok", "ok", "error", "missing"])
# What happens to a whole request.
flight_outcome = st.sampled_from(["ok", "ok", "ok", "server_error", "network", "unexpected"])


@attrs.frozen
class Call:
    key: int
    path: str
    start: float  # seconds after the scenario starts
    cancel_after: float | None


calls_strategy = st.lists(
    st.builds(
        Call,
        key=st.integers(0, len(KEYS) - 1),
        path=st.sampled_from(PATHS),
        start=st.sampled_from([0.0, 0.0, 0.001, 0.003, 0.006]),
        cancel_after=st.none() | st.sampled_from([0.0, 0.001, 0.004, 0.008]),
    ),
    min_size=1,
    max_size=25,
)


class FakeApi:
    """An executor whose answers Hypothesis chose up front, per vehicle and path."""

    def __init__(
        self,
        items: dict[tuple[int, str], str],
        flights: list[str],
        delays: list[float],
    ) -> None:
        self.items = items
        self.flights = flights
        self.delays = delays
        self.sent: list[tuple[str, tuple[str, ...]]] = []
        self.cancelled = 0

    async def __call__(self, key: QueueKey, paths: tuple[str, ...], spent: int = 0) -> Answer:
        n = len(self.sent)
        self.sent.append((key.vehicle_id, paths))
        assert len(set(paths)) == len(paths), "a path was sent twice in one batch"
        try:
            await asyncio.sleep(self.delays[n % len(self.delays)])
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        outcome = self.flights[n % len(self.flights)]
        if outcome == "server_error":
            raise ServerError("SERVER:INTERNAL - boom", type="SERVER", status_code=500)
        if outcome == "network":
            raise APIConnectionError("connection reset")
        if outcome == "unexpected":
            raise RuntimeError("a bug in the executor")
        vehicle = KEYS.index(key)
        items: dict[str, RawItem] = {}
        for path in paths:
            kind = self.items.get((vehicle, path), "ok")
            if kind == "ok":
                items[path] = RawItem(200, {"vehicle": key.vehicle_id, "path": path}, {})
            elif kind == "error":
                body = {"type": "VEHICLE_STATE", "code": "ASLEEP", "statusCode": 409}
                items[path] = RawItem(409, body, {})
        return Answer(items, "req-1")


async def run_scenario(
    calls: list[Call], api: FakeApi, window: float, max_batch: int, join: bool
) -> tuple[list[Any], Coalescer, Counters]:
    counters = Counters()
    coalescer = Coalescer(
        executor=api,
        window=window,
        max_batch_size=max_batch,
        max_flights_per_queue=1,
        join_inflight=join,
        counters=counters,
        hooks=Hooks((), ()),
    )
    outcomes: list[Any] = [None] * len(calls)
    resolved = Counter[int]()

    async def caller(i: int, call: Call) -> None:
        await asyncio.sleep(call.start)
        task = asyncio.ensure_future(coalescer.read(KEYS[call.key], call.path, Response))
        if call.cancel_after is not None:
            asyncio.get_running_loop().call_later(call.cancel_after, task.cancel)
        try:
            outcomes[i] = await task
        except asyncio.CancelledError:
            outcomes[i] = "cancelled"
        except SmartcarError as exc:
            outcomes[i] = exc
        resolved[i] += 1

    async with asyncio.timeout(5):
        await asyncio.gather(*(caller(i, c) for i, c in enumerate(calls)))
    assert all(resolved[i] == 1 for i in range(len(calls)))
    # Abandoned flights need a loop turn to process their cancellation.
    for _ in range(3):
        await asyncio.sleep(0)
    # Nothing left behind: no queue, no task, no timer.
    assert coalescer.queue_count == 0
    assert coalescer.task_count == 0
    assert coalescer.window_count == 0
    return outcomes, coalescer, counters


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    calls=calls_strategy,
    items=st.dictionaries(
        st.tuples(st.integers(0, len(KEYS) - 1), st.sampled_from(PATHS)), item_outcome
    ),
    flights=st.lists(flight_outcome, min_size=1, max_size=4),
    delays=st.lists(st.sampled_from([0.0, 0.001, 0.005]), min_size=1, max_size=3),
    window=st.sampled_from([0.0, 0.002]),
    max_batch=st.integers(1, 4),
    join=st.booleans(),
)
def test_every_awaiter_resolves_exactly_once(
    calls: list[Call],
    items: dict[tuple[int, str], str],
    flights: list[str],
    delays: list[float],
    window: float,
    max_batch: int,
    join: bool,
) -> None:
    api = FakeApi(items, flights, delays)
    outcomes, _coalescer, counters = asyncio.run(run_scenario(calls, api, window, max_batch, join))
    for call, outcome in zip(calls, outcomes, strict=True):
        if outcome == "cancelled":
            assert call.cancel_after is not None, "a caller nobody cancelled saw CancelledError"
            continue
        if isinstance(outcome, Response):
            # Routed by path to the right vehicle: never another caller's answer.
            assert outcome.body == {"vehicle": KEYS[call.key].vehicle_id, "path": call.path}
        else:
            assert isinstance(outcome, SmartcarError)
            assert not isinstance(outcome, ClientClosedError)
            assert isinstance(outcome, ServerError | APIConnectionError | VehicleStateError) or (
                "no answer" in str(outcome) or "Unexpected" in str(outcome)
            )
    assert counters.logical_reads == len(calls)
    for _vehicle, paths in api.sent:
        assert 1 <= len(paths) <= max_batch


def test_cancelled_waiter_never_poisons_the_path() -> None:
    """A caller cancelled while its path is in flight: the others still get the
    answer, and the next call for that path starts fresh."""

    async def scenario() -> None:
        api = FakeApi({}, ["ok"], [0.01])
        counters = Counters()
        coalescer = Coalescer(
            executor=api,
            window=0,
            max_batch_size=10,
            max_flights_per_queue=1,
            join_inflight=True,
            counters=counters,
            hooks=Hooks((), ()),
        )
        first = asyncio.ensure_future(coalescer.read(KEYS[0], "/odometer", Response))
        second = asyncio.ensure_future(coalescer.read(KEYS[0], "/odometer", Response))
        await asyncio.sleep(0.002)
        first.cancel()
        assert (await second).body["path"] == "/odometer"
        with pytest.raises(asyncio.CancelledError):
            await first
        third = await coalescer.read(KEYS[0], "/odometer", Response)
        assert third.body["path"] == "/odometer"
        assert len(api.sent) == 2
        await asyncio.sleep(0)  # the flight's done callback runs one turn after delivery
        assert coalescer.task_count == 0

    asyncio.run(scenario())


def test_flight_whose_callers_all_left_is_cancelled() -> None:
    async def scenario() -> None:
        api = FakeApi({}, ["ok"], [0.5])
        coalescer = Coalescer(
            executor=api,
            window=0,
            max_batch_size=10,
            max_flights_per_queue=1,
            join_inflight=True,
            counters=Counters(),
            hooks=Hooks((), ()),
        )
        tasks = [asyncio.ensure_future(coalescer.read(KEYS[0], p, Response)) for p in PATHS[:3]]
        await asyncio.sleep(0.01)
        assert len(api.sent) == 1
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert api.cancelled == 1
        assert coalescer.task_count == 0
        assert coalescer.queue_count == 0
        # The vehicle works normally afterwards.
        api.delays = [0.0]
        result = await coalescer.read(KEYS[0], "/odometer", Response)
        assert result.body["path"] == "/odometer"

    asyncio.run(scenario())


def test_callers_that_all_leave_before_the_flush_send_nothing() -> None:
    async def scenario() -> None:
        api = FakeApi({}, ["ok"], [0.0])
        coalescer = Coalescer(
            executor=api,
            window=0.05,
            max_batch_size=10,
            max_flights_per_queue=1,
            join_inflight=True,
            counters=Counters(),
            hooks=Hooks((), ()),
        )
        tasks = [asyncio.ensure_future(coalescer.read(KEYS[0], p, Response)) for p in PATHS]
        await asyncio.sleep(0.005)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert coalescer.queue_count == 0  # the timer was disarmed with the queue
        await asyncio.sleep(0.08)
        assert api.sent == []

    asyncio.run(scenario())
