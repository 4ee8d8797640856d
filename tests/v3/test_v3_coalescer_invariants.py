"""Property test of the v3 coalescer: every awaiter resolves exactly once, with its own answer.

The v2 `Coalescer` runs with the real v3 executor (`_v3.execute_signals`)
over an in-memory policy whose answers Hypothesis picks: per-signal SUCCESS,
ERROR or absence, whole-request failures, delays, and cancellations. The
loopback tests beside this file cover the same rules over real HTTP.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartcar_async._coalescer import Coalescer, QueueKey
from smartcar_async._exceptions import (
    APIConnectionError,
    ClientClosedError,
    InvalidResponseError,
    ResourceNotFoundError,
    ServerError,
    SmartcarError,
    VehicleStateError,
)
from smartcar_async._observability import Counters, Hooks
from smartcar_async._v3 import ALL, execute_signals
from smartcar_async._v3_models import Signal, Signals

CODES = ("odometer-traveleddistance", "closure-islocked", "vehicleidentification-vin")
PATHS = (*CODES, ALL)
KEYS = tuple(
    QueueKey(f"vehicle-{i}", "token", "metric", None, api_version="3", user_id=f"user-{i}")
    for i in range(2)
)


@attrs.frozen
class Call:
    key: int
    path: str
    start: float
    cancel_after: float | None


calls_strategy = st.lists(
    st.builds(
        Call,
        key=st.integers(0, len(KEYS) - 1),
        path=st.sampled_from(PATHS),
        start=st.sampled_from([0.0, 0.0, 0.001, 0.004]),
        cancel_after=st.none() | st.sampled_from([0.0, 0.001, 0.004]),
    ),
    min_size=1,
    max_size=20,
)


@attrs.frozen
class Resp:
    body: Any
    request_id: str | None = "req-1"


def resource(vehicle: str, code: str, error: bool) -> dict[str, Any]:
    status: dict[str, Any] = {"value": "ERROR" if error else "SUCCESS"}
    if error:
        status["error"] = {"type": "VEHICLE_STATE", "code": "ASLEEP", "detail": "asleep"}
    attributes = {"code": code, "status": status, "body": {"value": f"{vehicle}:{code}"}}
    return {"id": code, "type": "signal", "attributes": attributes}


class FakePolicy:
    """Answers `SendPolicy.send` as Hypothesis chose, per vehicle and signal."""

    def __init__(self, items: dict[tuple[int, str], str], flights: list[str], delays: list[float]):
        self.items, self.flights, self.delays = items, flights, delays
        self.sent: list[tuple[str, str, str | None]] = []
        self.cancelled = 0

    async def send(self, method: str, key: QueueKey, path: str, **_: Any) -> Resp:
        n = len(self.sent)
        self.sent.append((key.vehicle_id, path, key.user_id))
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
        vehicle = KEYS.index(key)
        kinds = {code: self.items.get((vehicle, code), "ok") for code in CODES}
        if path == "/signals":
            data = [
                resource(key.vehicle_id, c, k == "error")
                for c, k in kinds.items()
                if k != "missing"
            ]
            return Resp({"data": data, "meta": {"totalCount": len(data)}})
        code = path.rsplit("/", 1)[1]
        if kinds[code] == "missing":
            raise ResourceNotFoundError("404", type="RESOURCE_NOT_FOUND", status_code=404)
        return Resp({"data": resource(key.vehicle_id, code, kinds[code] == "error")})


async def run_scenario(
    calls: list[Call], policy: FakePolicy, window: float, join: bool
) -> list[Any]:
    counters = Counters()
    coalescer = Coalescer(
        executor=functools.partial(execute_signals, policy),  # type: ignore[arg-type]
        window=window,
        max_batch_size=25,
        max_flights_per_queue=1,
        join_inflight=join,
        counters=counters,
        hooks=Hooks((), ()),
    )
    outcomes: list[Any] = [None] * len(calls)
    resolved = Counter[int]()

    async def caller(i: int, call: Call) -> None:
        await asyncio.sleep(call.start)
        model = Signals if call.path == ALL else Signal
        task = asyncio.ensure_future(coalescer.read(KEYS[call.key], call.path, model))
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
    for _ in range(3):
        await asyncio.sleep(0)
    assert coalescer.queue_count == coalescer.task_count == coalescer.window_count == 0
    assert counters.logical_reads == len(calls)
    return outcomes


def check(call: Call, outcome: Any, items: dict[tuple[int, str], str]) -> None:
    vehicle = KEYS[call.key].vehicle_id
    if outcome == "cancelled":
        assert call.cancel_after is not None, "a caller nobody cancelled saw CancelledError"
        return
    if isinstance(outcome, Signals):
        assert call.path == ALL
        for code, sig in outcome.items():
            assert sig.value == f"{vehicle}:{code}"  # never another vehicle's signals
        return
    if isinstance(outcome, Signal):
        assert outcome.code == call.path
        assert outcome.value == f"{vehicle}:{call.path}"
        assert items.get((call.key, call.path), "ok") == "ok"
        return
    assert isinstance(outcome, SmartcarError)
    assert not isinstance(outcome, ClientClosedError)
    if isinstance(outcome, VehicleStateError):  # a per-signal ERROR reaches its own callers only
        assert items.get((call.key, call.path)) == "error"
    else:
        assert isinstance(
            outcome, ServerError | APIConnectionError | ResourceNotFoundError | InvalidResponseError
        )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    calls=calls_strategy,
    items=st.dictionaries(
        st.tuples(st.integers(0, len(KEYS) - 1), st.sampled_from(CODES)),
        st.sampled_from(["ok", "ok", "error", "missing"]),
    ),
    flights=st.lists(
        st.sampled_from(["ok", "ok", "ok", "server_error", "network"]), min_size=1, max_size=4
    ),
    delays=st.lists(st.sampled_from([0.0, 0.001, 0.003]), min_size=1, max_size=3),
    window=st.sampled_from([0.0, 0.002]),
    join=st.booleans(),
)
def test_every_v3_awaiter_resolves_exactly_once(
    calls: list[Call],
    items: dict[tuple[int, str], str],
    flights: list[str],
    delays: list[float],
    window: float,
    join: bool,
) -> None:
    policy = FakePolicy(items, flights, delays)
    outcomes = asyncio.run(run_scenario(calls, policy, window, join))
    for call, outcome in zip(calls, outcomes, strict=True):
        check(call, outcome, items)
    for vehicle_id, path, user_id in policy.sent:
        # One request per flight: a lone code by its route, anything more as the list.
        assert path == "/signals" or path.startswith("/signals/")
        assert user_id == "user-" + vehicle_id.rsplit("-", 1)[1]


def test_a_flight_whose_callers_all_left_is_cancelled() -> None:
    async def scenario() -> None:
        policy = FakePolicy({}, ["ok"], [0.5])
        coalescer = Coalescer(
            executor=functools.partial(execute_signals, policy),  # type: ignore[arg-type]
            window=0,
            max_batch_size=10,
            max_flights_per_queue=1,
            join_inflight=True,
            counters=Counters(),
            hooks=Hooks((), ()),
        )
        tasks = [asyncio.ensure_future(coalescer.read(KEYS[0], c, Signal)) for c in CODES]
        await asyncio.sleep(0.01)
        assert [p for _, p, _ in policy.sent] == ["/signals"]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(3):
            await asyncio.sleep(0)
        assert policy.cancelled == 1
        assert coalescer.task_count == coalescer.queue_count == 0

    asyncio.run(scenario())
