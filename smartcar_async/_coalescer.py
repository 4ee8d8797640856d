"""Automatic request coalescing: per-vehicle queues, the batch window, dedupe, routing.

The flow of one read::

    car.odometer()                      # caller
      -> Coalescer.read(key, "/odometer", Odometer)
           joins the in-flight slot for "/odometer", or the pending one,
           or opens a pending slot (the first one puts the queue in a window)
           and awaits ITS OWN future
    the window's timer fires (or max_batch_size distinct paths are pending)
      -> flush: pending slots become one Flight, run by one task that the
         coalescer owns (never fire-and-forget)
      -> executor (`_batch.execute_reads`): one HTTP request for all the
         flight's paths, sent under the client's `SendPolicy`
      -> route each answer item by its path to the slot's waiters; the model
         (or the typed error) is built once per path and model type; an item
         the policy says to retry (a 429, a 5xx) is queued again instead

Invariants (tests and a Hypothesis model check them):

* every caller owns its future, so cancelling one caller never cancels a
  result another caller is waiting for, and a cancelled future is never
  reused or cached;
* delivery skips futures that are already done, so a caller that left can
  never break the delivery to the others;
* a path whose callers all left before the flush is dropped, a flight whose
  callers all left is cancelled (its HTTP request with it), and new callers
  never join a flight that is being cancelled;
* no task and no timer exists per vehicle: queues whose windows end in the
  same tick share one timer, an idle queue is in no window and has no task,
  and is removed from the map, so a vehicle handle costs nothing until used;
* nothing is cached after delivery.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import sys
from collections.abc import Awaitable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from ._batch import Answer, RawItem
from ._converter import structure
from ._endpoints import API_VERSION
from ._exceptions import (
    ClientClosedError,
    InvalidResponseError,
    SmartcarError,
    error_from_response,
)
from ._models import Meta
from ._observability import BatchFlushed, Counters, Hooks
from ._options import DEFAULT_OPTIONS, CallOptions
from ._policy import SendPolicy
from ._tokens import TokenSource

__all__ = ["Coalescer", "Executor", "QueueKey"]

T = TypeVar("T")
logger = logging.getLogger("smartcar_async")


class QueueKey:
    """Everything one batch request must share: vehicle, credentials, unit system, flags,
    API version and (v3) the ``sc-user-id`` the requests carry.

    The token is part of the identity (different users' tokens never share a
    batch) but never of the repr.
    """

    __slots__ = (
        "_hash",
        "api_version",
        "auth",
        "flags",
        "options",
        "unit_system",
        "user_id",
        "vehicle_id",
    )

    def __init__(
        self,
        vehicle_id: str,
        auth: str | TokenSource,
        unit_system: str,
        flags: str | None,
        options: CallOptions = DEFAULT_OPTIONS,
        *,
        api_version: str = API_VERSION,
        user_id: str | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.auth = auth
        self.unit_system = unit_system
        self.flags = flags
        self.options = options
        self.api_version = api_version
        self.user_id = user_id
        self._hash = hash((vehicle_id, auth, unit_system, flags, options, api_version, user_id))

    def with_options(self, options: CallOptions) -> QueueKey:
        """The same key with other call options."""
        return QueueKey(
            self.vehicle_id,
            self.auth,
            self.unit_system,
            self.flags,
            options,
            api_version=self.api_version,
            user_id=self.user_id,
        )

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueueKey):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.vehicle_id == other.vehicle_id
            and self.auth == other.auth
            and self.unit_system == other.unit_system
            and self.flags == other.flags
            and self.options == other.options
            and self.api_version == other.api_version
            and self.user_id == other.user_id
        )

    def __repr__(self) -> str:
        version = "" if self.api_version == API_VERSION else f", api_version={self.api_version!r}"
        units = f"unit_system={self.unit_system!r}"
        return f"QueueKey(vehicle_id={self.vehicle_id!r}, {units}{version})"


class Executor(Protocol):
    """Sends the paths of one flight as one HTTP request (a batch, or a GET for one path).

    ``spent`` is the number of retries its paths already used (after per-item
    429s), so that retries do not start over. It raises a SmartcarError when
    the whole request failed.
    """

    def __call__(
        self, key: QueueKey, paths: tuple[str, ...], spent: int, /
    ) -> Awaitable[Answer]: ...


class _Slot(dict["asyncio.Future[Any]", type[Any]]):
    """The callers waiting for one path of one queue: each future, and the model it wants.

    The slot is itself the mapping of its waiters (a dict subclass), which
    halves the objects a pending read keeps alive; each caller owns its future.
    """

    __slots__ = ("attempts", "flight", "path", "queue")

    def __init__(self, queue: _Queue, path: str) -> None:
        super().__init__()
        self.queue = queue
        self.path = path
        self.flight: _Flight | None = None
        # Retries already spent on this path after per-item 429s.
        self.attempts = 0


class _Flight:
    """One flushed batch: its slots and the task that runs it.

    The flight is its task's done callback (``__call__``), which spares a
    closure per flight.
    """

    __slots__ = ("abandoned", "coalescer", "queue", "slots", "task")

    def __init__(self, coalescer: Coalescer, queue: _Queue, slots: dict[str, _Slot]) -> None:
        self.coalescer = coalescer
        self.queue = queue
        self.slots = slots
        self.task: asyncio.Task[None] | None = None
        self.abandoned = False

    def has_waiters(self) -> bool:
        return any(self.slots.values())

    def __call__(self, task: asyncio.Task[None]) -> None:
        # Only for a task that never reached its coroutine's end (cancelled
        # before its first step): `_run` finishes every other flight itself.
        self.coalescer._finish(self.queue, self, task, task.cancelled())


class _Window:
    """The queues whose batch window ends in the same tick, and their one timer.

    A burst over a fleet arms thousands of queues within a millisecond or
    two; sharing a timer per tick keeps the loop's timer heap at a few
    entries instead of one per vehicle.
    """

    __slots__ = ("handle", "queues", "tick")

    def __init__(self, tick: int) -> None:
        self.tick = tick
        self.queues: dict[_Queue, None] = {}
        self.handle: asyncio.Handle | None = None


class _Queue:
    __slots__ = ("flights", "inflight", "key", "pending", "window")

    def __init__(self, key: QueueKey) -> None:
        self.key = key
        self.pending: dict[str, _Slot] = {}
        self.inflight: dict[str, _Slot] = {}
        self.flights: set[_Flight] = set()
        self.window: _Window | None = None

    def idle(self) -> bool:
        return not self.pending and not self.flights and self.window is None


class Coalescer:
    """Per-vehicle read queues for one client."""

    def __init__(
        self,
        *,
        executor: Executor,
        window: float,
        max_batch_size: int,
        max_flights_per_queue: int,
        join_inflight: bool,
        counters: Counters,
        hooks: Hooks,
        policy: SendPolicy | None = None,
    ) -> None:
        self._execute = executor
        self._window = window
        self._max_batch_size = max_batch_size
        self._max_flights = max_flights_per_queue
        self._join_inflight = join_inflight
        self._counters = counters
        self._hooks = hooks
        # Asked whether a read fails fast and whether a failed item goes again.
        self._policy = policy if policy is not None else SendPolicy(counters=counters, hooks=hooks)
        # Windows end on ticks of a fifth of the window: a queue's window lasts
        # between 1 and 1.2 times the configured one.
        self._tick = window / 5
        self._windows: dict[int, _Window] = {}
        self._queues: dict[QueueKey, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ reads

    async def read(self, key: QueueKey, path: str, model: type[T]) -> T:
        """Queue one read and wait for its own result."""
        if self._closed:
            raise ClientClosedError("The client is closed")
        # A vehicle rate-limited for longer than we would wait costs no API call.
        gated = self._policy.fail_fast(key.vehicle_id)
        if gated is not None:
            raise gated
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        slot = self._enqueue(key, path, model, fut)
        try:
            return await fut
        except BaseException:
            if fut.cancelled() or not fut.done():
                self._leave(slot, fut)
            raise

    async def read_many(self, key: QueueKey, wanted: Sequence[tuple[str, type[Any]]]) -> list[Any]:
        """Queue several reads of one vehicle and wait for them all, in one coroutine.

        Each path's outcome comes back in its place: the model, or the
        `SmartcarError` that path failed with (a fresh object per call).
        Unlike a gather of `read`, no task per read: what `Vehicle.batch`
        awaits, and the cheapest way to read k paths of one car.
        """
        if self._closed:
            return [ClientClosedError("The client is closed") for _ in wanted]
        gated = self._policy.fail_fast(key.vehicle_id)
        if gated is not None:
            return [_own_copy(gated) for _ in wanted]
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Any]] = []
        slots: list[_Slot] = []
        try:
            for path, model in wanted:
                fut = loop.create_future()
                slots.append(self._enqueue(key, path, model, fut))
                futs.append(fut)
            for fut in futs:
                # They are answered together, as a rule: after the first
                # wait the rest are done, and cost no wait at all.
                if not fut.done():
                    try:  # noqa: SIM105 (no context manager object on the hot path)
                        await fut
                    except SmartcarError:
                        pass  # this path's outcome, returned below
        except BaseException:
            for slot, fut in zip(slots, futs, strict=False):
                if fut.cancelled() or not fut.done():
                    self._leave(slot, fut)
                else:
                    fut.exception()  # retrieved: no "never retrieved" log for it
            raise
        return [fut.exception() or fut.result() for fut in futs]

    def _enqueue(
        self, key: QueueKey, path: str, model: type[Any], fut: asyncio.Future[Any]
    ) -> _Slot:
        counters = self._counters
        counters.logical_reads += 1
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(key)
        if self._join_inflight:
            slot = queue.inflight.get(path)
            if slot is not None:
                slot[fut] = model
                counters.dedupe_hits += 1
                counters.inflight_joins += 1
                return slot
        slot = queue.pending.get(path)
        if slot is not None:
            slot[fut] = model
            counters.dedupe_hits += 1
            return slot
        slot = _Slot(queue, path)
        slot[fut] = model
        queue.pending[path] = slot
        if len(queue.flights) < self._max_flights:
            if len(queue.pending) >= self._max_batch_size:
                self._flush(queue)
            elif queue.window is None:
                self._arm(queue)
        return slot

    # ---------------------------------------------------------------- windows

    def _arm(self, queue: _Queue) -> None:
        """Put the queue in the window that ends on its tick (a shared timer)."""
        loop = asyncio.get_running_loop()
        # Tick -1 is "the next loop turn", for a window of 0.
        tick = math.ceil((loop.time() + self._window) / self._tick) if self._window > 0 else -1
        window = self._windows.get(tick)
        if window is None:
            window = self._windows[tick] = _Window(tick)
            if tick < 0:
                window.handle = loop.call_soon(self._fire, window)
            else:
                window.handle = loop.call_at(tick * self._tick, self._fire, window)
        window.queues[queue] = None
        queue.window = window

    def _disarm(self, queue: _Queue) -> None:
        window = queue.window
        if window is None:
            return
        queue.window = None
        window.queues.pop(queue, None)
        if not window.queues and window.handle is not None:
            # Nobody left in this window: no timer may outlive its queues.
            window.handle.cancel()
            window.handle = None
            if self._windows.get(window.tick) is window:
                del self._windows[window.tick]

    def _fire(self, window: _Window) -> None:
        if self._windows.get(window.tick) is window:
            del self._windows[window.tick]
        window.handle = None
        queues, window.queues = window.queues, {}
        for queue in queues:
            # A queue flushed early (a full batch) or emptied by cancellations
            # has left this window already.
            if queue.window is window:
                try:
                    self._flush(queue)
                except Exception:
                    # A bug, but one vehicle's must not strand the others in this window.
                    logger.exception("Flushing vehicle %s failed", queue.key.vehicle_id)

    def _leave(self, slot: _Slot, fut: asyncio.Future[Any]) -> None:
        """A caller gave up (cancelled): forget its future, and what nobody needs any more."""
        if slot.pop(fut, None) is None:
            # A rate-limited path requeued into a newer pending slot took its
            # waiters along: look for the future there.
            moved = slot.queue.pending.get(slot.path)
            if moved is None or moved is slot or moved.pop(fut, None) is None:
                return
            slot = moved
        if slot:
            return
        queue = slot.queue
        flight = slot.flight
        if flight is None:
            if queue.pending.get(slot.path) is slot:
                del queue.pending[slot.path]
            if not queue.pending:
                self._disarm(queue)
        elif not flight.abandoned and not flight.has_waiters():
            self._abandon(queue, flight)
        self._maybe_drop(queue)

    def _abandon(self, queue: _Queue, flight: _Flight) -> None:
        # Detach first so that a caller arriving before the task notices its
        # cancellation opens a fresh slot instead of joining a dying request.
        flight.abandoned = True
        self._detach(queue, flight)
        if flight.task is not None:
            flight.task.cancel()

    # ----------------------------------------------------------------- flush

    def _flush(self, queue: _Queue) -> None:
        self._disarm(queue)
        while queue.pending and len(queue.flights) < self._max_flights:
            if len(queue.pending) <= self._max_batch_size:
                # The usual case: the whole queue is one batch; hand its dict over.
                slots, queue.pending = queue.pending, {}
            else:
                paths = list(queue.pending)[: self._max_batch_size]
                slots = {path: queue.pending.pop(path) for path in paths}
            self._launch(queue, slots)
        self._maybe_drop(queue)

    def _launch(self, queue: _Queue, slots: dict[str, _Slot]) -> None:
        flight = _Flight(self, queue, slots)
        callers = 0
        for path, slot in slots.items():
            slot.flight = flight
            queue.inflight[path] = slot
            callers += len(slot)
        queue.flights.add(flight)
        paths = tuple(slots)
        spent = max([slot.attempts for slot in slots.values()])
        as_batch = len(paths) > 1
        if self._hooks.on_batch:
            self._hooks.batch_flushed(
                BatchFlushed(
                    vehicle_id=queue.key.vehicle_id,
                    paths=paths,
                    callers=callers,
                    deduplicated=callers - len(paths),
                    as_batch=as_batch,
                )
            )
        task = _start(self._run(queue, flight, paths, spent))
        flight.task = task
        self._tasks.add(task)
        # A done callback as well as `_run`'s finally: a task cancelled before
        # its first step never runs its coroutine, but its callbacks always run.
        task.add_done_callback(flight)

    async def _run(
        self, queue: _Queue, flight: _Flight, paths: tuple[str, ...], spent: int
    ) -> None:
        # The exception boundary of a flight: whatever the executor does, every
        # waiter still attached is resolved before this task ends.
        cancelled = False
        try:
            answer = await self._execute(queue.key, paths, spent)
        except SmartcarError as exc:
            self._fail_all(flight, exc)
        except Exception as exc:
            logger.exception("Unexpected error in a batch for vehicle %s", queue.key.vehicle_id)
            err = SmartcarError(f"Unexpected error in smartcar_async: {type(exc).__name__}")
            err.__cause__ = exc
            self._fail_all(flight, err)
        except asyncio.CancelledError:
            cancelled = True
            raise
        else:
            self._route(flight, answer)
        finally:
            # Detach in the same step as delivery: a read arriving between now
            # and the end of the task must not join a slot that was already answered.
            self._detach(queue, flight)
            task = flight.task
            if task is not None and task.remove_done_callback(flight):
                # The task ends with this step: finish here rather than in its
                # done callback, one loop turn later (a handle and a turn per flight).
                self._finish(queue, flight, task, cancelled)

    def _detach(self, queue: _Queue, flight: _Flight) -> None:
        for path, slot in flight.slots.items():
            if queue.inflight.get(path) is slot:
                del queue.inflight[path]

    def _finish(
        self, queue: _Queue, flight: _Flight, task: asyncio.Task[None], cancelled: bool
    ) -> None:
        self._tasks.discard(task)
        if cancelled:
            # Abandoned flights have no waiters left; a close() past its grace
            # period cancels flights that still have some.
            self._fail_all(
                flight, ClientClosedError("The client was closed before the answer came")
            )
        queue.flights.discard(flight)
        self._detach(queue, flight)
        # A finished flight and its slots point at each other: unlink them so
        # that reference counting frees both now. Left linked, every flight
        # was a cycle of about ten objects that only the garbage collector
        # could free, and in a burst those collections cost more than the
        # rest of the coalescer's work.
        flight.task = None
        for slot in flight.slots.values():
            if slot.flight is flight:
                slot.flight = None
        if queue.pending and not self._closed:
            # These callers already waited at least one round trip: no window.
            self._flush(queue)
        self._maybe_drop(queue)

    def _maybe_drop(self, queue: _Queue) -> None:
        if queue.idle() and self._queues.get(queue.key) is queue:
            del self._queues[queue.key]

    # --------------------------------------------------------------- routing

    def _route(self, flight: _Flight, answer: Answer) -> None:
        # Items of one batch usually carry identical SC-* headers: one Meta for them all.
        metas: dict[Any, Meta] = {}
        for path, slot in flight.slots.items():
            if not slot:
                continue
            item = answer.items.get(path)
            try:
                if item is None:
                    missing = InvalidResponseError(
                        f"The batch response has no answer for {path!r}",
                        request_id=answer.request_id,
                    )
                    self._hooks.item_failed(slot.queue.key.vehicle_id, path, None, missing)
                    self._fail_slot(slot, missing)
                elif 200 <= item.code < 300:
                    self._deliver(slot, item, answer.request_id, metas)
                else:
                    error = item.error or error_from_response(
                        item.code, item.body, item.headers, request_id=answer.request_id
                    )
                    self._hooks.item_failed(slot.queue.key.vehicle_id, path, item.code, error)
                    # An error the executor set (an unreadable item, a failed v3
                    # signal: stored state, not a failed request) is final.
                    if item.error is None and self._requeue(slot, error):
                        continue
                    self._fail_slot(slot, error)
            except Exception as exc:
                # A bug reading one item must neither strand this path's callers
                # nor cost the other paths their answers.
                vehicle_id = slot.queue.key.vehicle_id
                logger.exception("Routing %r for vehicle %s failed", path, vehicle_id)
                err = SmartcarError(f"Unexpected error in smartcar_async: {type(exc).__name__}")
                err.__cause__ = exc
                self._fail_slot(slot, err)

    def _requeue(self, slot: _Slot, error: SmartcarError) -> bool:
        """Queue the path again if the policy says its error is worth a retry.

        Only that path's callers wait; the batch's other paths were
        delivered. Returns False when the error is final for its callers.
        """
        queue = slot.queue
        may_retry = not self._closed and slot.attempts < queue.key.options.max_retries
        wait = self._policy.retry_item(
            queue.key.vehicle_id, slot.path, error, slot.attempts, may_retry
        )
        if wait is None:
            return False
        # Not counted as a retry here: the request that carries it again is.
        slot.attempts += 1
        slot.flight = None
        waiting = queue.pending.get(slot.path)
        if waiting is None:
            queue.pending[slot.path] = slot
        else:
            # New callers queued this path meanwhile: one slot serves them all.
            waiting.update(slot)
            waiting.attempts = max(waiting.attempts, slot.attempts)
            slot.clear()
        return True

    def _deliver(
        self, slot: _Slot, item: RawItem, request_id: str | None, metas: dict[Any, Meta]
    ) -> None:
        headers = item.headers
        try:
            cache_key: Any = tuple(headers.items()) if type(headers) is dict else None
            meta = metas.get(cache_key) if cache_key is not None else None
        except TypeError:  # an unhashable header value
            cache_key, meta = None, None
        if meta is None:
            meta = Meta.from_headers(headers, request_id)
            if cache_key is not None:
                metas[cache_key] = meta
        if len(slot) == 1:
            # The usual case: one caller, nothing to share or copy.
            ((fut, model),) = slot.items()
            slot.clear()
            if not fut.done():
                outcome = _build(model, item.body, meta)
                if isinstance(outcome, SmartcarError):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)
            return
        # One frozen model per (path, model type), shared by every waiter.
        built: dict[type[Any], Any] = {}
        for fut, model in list(slot.items()):
            if fut.done():
                continue
            outcome = built.get(model)
            if outcome is None:
                outcome = built[model] = _build(model, item.body, meta)
            if isinstance(outcome, SmartcarError):
                fut.set_exception(_own_copy(outcome))
            else:
                fut.set_result(outcome)
        slot.clear()

    def _fail_slot(self, slot: _Slot, exc: SmartcarError) -> None:
        self._counters.errors += 1
        for fut in slot:
            if not fut.done():
                fut.set_exception(_own_copy(exc))
        slot.clear()

    def _fail_all(self, flight: _Flight, exc: SmartcarError) -> None:
        for slot in flight.slots.values():
            if slot:
                self._fail_slot(slot, exc)

    # ------------------------------------------------------------- lifecycle

    @property
    def queue_count(self) -> int:
        return len(self._queues)

    @property
    def task_count(self) -> int:
        return len(self._tasks)

    @property
    def window_count(self) -> int:
        """Armed batch windows, each with one timer."""
        return len(self._windows)

    async def close(self, *, grace: float) -> None:
        """Stop taking reads; fail queued callers; let flights finish for ``grace`` seconds."""
        self._closed = True
        for queue in list(self._queues.values()):
            self._disarm(queue)
            pending = list(queue.pending.values())
            queue.pending.clear()
            for slot in pending:
                self._fail_slot(
                    slot, ClientClosedError("The client was closed before this read was sent")
                )
            self._maybe_drop(queue)
        if self._tasks:
            _done, still_running = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in still_running:
                task.cancel()
            if still_running:
                await asyncio.wait(still_running)
        self._queues.clear()


if sys.version_info >= (3, 12):

    def _start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A flight's task, started here up to its first wait where Python allows it.

        By then its request is written: one handle and one loop turn fewer
        per flight. A flight that ends within this call (it failed before
        sending) finishes in its done callback. A loop with its own task
        factory gets its say, as with ``create_task``.
        """
        loop = asyncio.get_running_loop()
        if loop.get_task_factory() is None:
            return asyncio.Task(coro, loop=loop, eager_start=True)
        return loop.create_task(coro)

else:

    def _start(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coro)


def _build(model: type[Any], body: Any, meta: Meta) -> Any:
    """The model, or the typed error saying why the body does not fit it.

    The error carries ``meta.request_id``, which `Meta.from_headers` already
    fell back to the envelope's id for.
    """
    try:
        return structure(model, body, meta)
    except SmartcarError as exc:
        return exc


def _own_copy(exc: SmartcarError) -> SmartcarError:
    """A private copy per waiter: one exception object raised in many tasks would
    collect every task's traceback and chained context."""
    twin = copy.copy(exc)
    twin.__cause__ = exc.__cause__
    return twin
