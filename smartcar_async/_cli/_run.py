"""Running a poll: the client, the jobs and their results, a clean stop on a signal, the summary.

SIGINT and SIGTERM stop a run cleanly (the pollers finish what they started,
the summary is shown, the exit status names the signal); a second signal
stops it at once. :class:`_Outcome` holds what the run measured so far, so
the summary can be built however the run ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, cast

import anyio
import attrs

from .._client import Client
from .._names import ReadName
from .._observability import ClientStats
from .._poller import FleetPoller
from .._sqlite_state import SQLiteState
from .._state import StateStore
from ._defaults import SIGNAL_EXITS
from ._demo import _start_demo
from ._logs import CLI_LOGGER
from ._metrics import RunMetrics
from ._sources import _handle, _token_sources
from ._summary import Tally, summary_figures, summary_rows

if TYPE_CHECKING:
    from ._config import _Config
    from ._output import _Writer
    from ._render import Renderer


@attrs.define
class _Outcome:
    """What the run measured so far: the summary is built from it however the run ended."""

    #: "SIGINT" or "SIGTERM" once one asked for a clean stop.
    stopped_by: str | None = None
    tally: Tally | None = None
    client: Client | None = None
    vehicles: int = 0
    wall_seconds: float = 0.0
    exit_status: int = 0
    figures: dict[str, Any] = attrs.Factory(dict)
    #: Where the run's figures go as they happen (--metrics-port); nowhere by default.
    metrics: RunMetrics = attrs.Factory(RunMetrics)

    @property
    def stats(self) -> ClientStats:
        return self.client.stats if self.client is not None else ClientStats()

    def status(self, *, failed: bool = False) -> int:
        """The exit status: a signal first, then a fatal error, then whether any read succeeded."""
        if self.stopped_by is not None:
            return SIGNAL_EXITS[self.stopped_by]
        if failed or self.tally is None or self.tally.reads_ok == 0:
            return 1
        return 0

    def summary(
        self, cfg: _Config, writer: _Writer | None, *, error: str | None = None
    ) -> dict[str, Any]:
        self.exit_status = self.status(failed=error is not None)
        self.figures = summary_figures(
            self.tally or Tally(self.vehicles),
            self.stats,
            vehicles=self.vehicles,
            rounds=cfg.rounds,
            wall_seconds=self.wall_seconds,
            results_written=None if writer is None else writer.written,
            stopped_by=self.stopped_by,
            error=error,
            exit_status=self.exit_status,
        )
        return self.figures


def _stop_on_signals(outcome: _Outcome, scope: anyio.CancelScope) -> Callable[[], None]:
    """SIGINT and SIGTERM cancel ``scope`` for a clean stop; return the undo.

    The handlers live in the event loop (``loop.add_signal_handler``), and the
    undo puts back the ones there were before. A second signal does not wait
    for the clean stop: the previous handlers are put back and it is raised again.
    """
    loop = asyncio.get_running_loop()
    installed: dict[int, Any] = {}

    def restore() -> None:
        for signum, previous in installed.items():
            loop.remove_signal_handler(signum)
            if previous is not None:
                with contextlib.suppress(TypeError, ValueError, OSError):
                    signal.signal(signum, previous)
        installed.clear()

    def stop(signum: int) -> None:
        if outcome.stopped_by is None:
            outcome.stopped_by = signal.Signals(signum).name
            scope.cancel()
        else:
            restore()
            signal.raise_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop, signum)
            installed[signum] = previous
    return restore


async def _run(cfg: _Config, renderer: Renderer, writer: _Writer | None, outcome: _Outcome) -> None:
    # Before anything else, so that a signal while the emulator starts is a clean stop too.
    scope = anyio.CancelScope()
    restore_signals = _stop_on_signals(outcome, scope)
    try:
        await _poll(cfg, renderer, writer, outcome, scope)
    finally:
        restore_signals()


@attrs.frozen
class _Jobs:
    """The run's pollers, and how the summary names what they poll."""

    main: FleetPoller
    #: The second job (``--also``), on the same client and vehicles.
    second: FleetPoller | None
    #: The vehicles before sharding.
    listed: int
    #: Where they are: the API's origin, or the emulator (with its faults, for ``where``).
    label: str
    where: str


@attrs.frozen
class _Headline:
    """The run's plan in words: the first line says it, and the summary again."""

    count: str
    jobs: str
    schedule: str


async def _poll(
    cfg: _Config,
    renderer: Renderer,
    writer: _Writer | None,
    outcome: _Outcome,
    scope: anyio.CancelScope,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        jobs = await _start(stack, cfg, outcome)
        expected = outcome.vehicles = len(jobs.main)
        tally = outcome.tally = Tally(expected)
        plan = _headline(cfg, jobs, expected)
        renderer.start(
            f"Polling {plan.count} vehicles on {jobs.where}: {plan.jobs}; {plan.schedule}"
        )
        started = perf_counter()
        with scope:
            await _consume(jobs, cfg, renderer, writer, outcome, tally, scope)
        outcome.wall_seconds = perf_counter() - started
    _report(cfg, renderer, writer, outcome, tally, plan, jobs.label)


async def _start(stack: contextlib.AsyncExitStack, cfg: _Config, outcome: _Outcome) -> _Jobs:
    """The emulator (for the demo), the client, the state store and the jobs, on ``stack``."""
    origin = cfg.origin
    vehicles = list(cfg.vehicles)
    where = label = ""
    if cfg.demo:
        demo = await _start_demo(stack, cfg.fleet_size, cfg.seed)
        origin, vehicles, label, where = demo.origin, demo.vehicles, demo.label, demo.where
    store: StateStore | None = None
    if cfg.shared:
        store = await stack.enter_async_context(_redis_state(cfg))
    elif cfg.state is not None:
        # Closed after the client and the pollers: their last records are saved as they stop.
        store = await stack.enter_async_context(SQLiteState(cfg.state))
    client_options: dict[str, Any] = {"hooks": outcome.metrics.hooks}
    if cfg.max_retries is not None:
        client_options["max_retries"] = cfg.max_retries
    if cfg.shared:
        # Every worker takes from the application's one bucket and honours shared gates.
        client_options["state"] = store
    client = await stack.enter_async_context(Client(api_origin=origin, **client_options))
    outcome.client = client
    if not cfg.demo:
        where = label = client.api_origin
    sources = await _token_sources(stack, cfg, vehicles, store, outcome.metrics)
    reuse = _reuse_options(cfg)
    handles = [_handle(client, row, cfg.units, sources, **reuse) for row in vehicles]
    options = cfg.poll_options()
    # Names from the command line were checked by the poller in _config.
    reads = cast("tuple[ReadName, ...]", cfg.reads)
    also = cast("tuple[ReadName, ...]", cfg.also)
    # Records are written whole, one poller per vehicle and store: the
    # second job's parks last for the run only.
    if cfg.shared:
        options["lease"] = cfg.lease
    main_job = FleetPoller(reads=reads, vehicles=handles, state=store, **options)
    second = FleetPoller(reads=also, vehicles=handles, **options) if also else None
    return _Jobs(main_job, second, len(handles), label, where)


def _reuse_options(cfg: _Config) -> dict[str, Any]:
    """The ``client.vehicle(...)`` options of reuse: ``--max-age``, checked in _config."""
    return {} if cfg.max_age is None else {"max_age": cfg.max_age}


def _redis_state(cfg: _Config) -> StateStore:
    """The shared store of a Redis --state; entering it fails (exit 1) if Redis is unreachable."""
    from ..redis import RedisState  # the optional extra: imported only when asked for

    assert cfg.state is not None
    return RedisState(cfg.state, namespace=cfg.fleet_name, budget=cfg.budget)


def _headline(cfg: _Config, jobs: _Jobs, expected: int) -> _Headline:
    count = f"{expected:,}"
    if jobs.main.shared:
        count += f" (shared by lease with every worker of fleet {cfg.fleet_name!r})"
    if cfg.shard is not None:
        count += f" of {jobs.listed:,} (shard {cfg.shard[0]}/{cfg.shard[1]})"
    reads = ", ".join(cfg.reads) + (f" + second job: {', '.join(cfg.also)}" if cfg.also else "")
    schedule = (
        f"{cfg.rounds or 'unlimited'} round{'s' if cfg.rounds != 1 else ''}, "
        f"every {cfg.interval:g} s (jitter {cfg.jitter:.0%}), "
        f"{cfg.concurrency} vehicles at a time"
    )
    return _Headline(count, reads, schedule)


async def _consume(
    jobs: _Jobs,
    cfg: _Config,
    renderer: Renderer,
    writer: _Writer | None,
    outcome: _Outcome,
    tally: Tally,
    scope: anyio.CancelScope,
) -> None:
    """Run the jobs: write and count the main job's results, count the second's."""

    async def drain(job: FleetPoller) -> None:
        async for result in job.results():
            tally.record(result, main=False)

    async with (
        jobs.main,
        jobs.second or contextlib.nullcontext(),
        anyio.create_task_group() as tg,
        outcome.metrics.watching(jobs.main),
    ):
        if jobs.second is not None:
            tg.start_soon(drain, jobs.second)
        async for result in jobs.main.results():
            if writer is not None:
                writer.write(result)
                if writer.broken:
                    scope.cancel()
            round_ = tally.record(result)
            outcome.metrics.poll_result(result, jobs.main)
            if round_ is not None:
                renderer.update(round_, outcome.vehicles, cfg.rounds)


def _report(
    cfg: _Config,
    renderer: Renderer,
    writer: _Writer | None,
    outcome: _Outcome,
    tally: Tally,
    plan: _Headline,
    label: str,
) -> None:
    """The summary, once the client and the jobs are closed."""
    error = None
    if writer is not None and writer.failure is not None:
        error = f"cannot write --output: {writer.failure.strerror} ({writer.where})"
        logging.getLogger(CLI_LOGGER).error(error, extra={"event": "fatal_error"})
    figures = outcome.summary(cfg, writer, error=error)
    rows = summary_rows(
        tally,
        outcome.stats,
        vehicles=f"{plan.count} on {label}",
        jobs=plan.jobs,
        schedule=plan.schedule,
        wall_seconds=outcome.wall_seconds,
        results=_results_line(writer),
        stopped_by=outcome.stopped_by,
        exit_status=outcome.exit_status,
    )
    renderer.finish("smartcar-async poll: summary", rows, tally.open_rounds, figures)


def _results_line(writer: _Writer | None) -> str:
    if writer is None:
        return "not written (stdout is a terminal: use --output FILE, or --output -)"
    results = f"{writer.written:,} as {writer.format_name} to {writer.where}"
    if writer.failure is not None:
        results += f" (then writing failed: {writer.failure.strerror}, which stopped the run)"
    elif writer.broken:
        results += " (then the reader closed the pipe, which stopped the run)"
    return results
