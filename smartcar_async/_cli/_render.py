"""What ``python -m smartcar_async poll`` shows while it runs: three renderers of one tally.

The rich renderer (a progress bar per round, a summary table) is used on a
terminal when rich is installed; it is imported lazily, and the plain
renderer (one line per round, then ``name: value`` lines) stands in
everywhere else. With ``--log-format json`` the JSON renderer logs the same
as events instead. What they show comes from :mod:`._summary`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any, Protocol

from ._logs import CLI_LOGGER
from ._summary import RoundTally

__all__ = [
    "JsonRenderer",
    "PlainRenderer",
    "Renderer",
    "RichRenderer",
    "make_renderer",
    "round_line",
]

Rows = Sequence[tuple[str, str]]


def round_line(round_: RoundTally, expected: int, rounds: int | None) -> str:
    of = f"/{rounds}" if rounds else ""
    parked = f"{round_.parked} all parked · " if round_.parked else ""
    return (
        f"round {round_.number}{of}: {round_.done}/{expected} vehicles · {round_.ok} ok · "
        f"{round_.errored} with errors · {parked}{round_.skipped} skipped · "
        f"{round_.seconds:.2f} s"
    )


class Renderer(Protocol):
    """How a run reports progress and its summary."""

    def start(self, header: str) -> None: ...

    def update(self, round_: RoundTally, expected: int, rounds: int | None) -> None: ...

    def finish(
        self,
        title: str,
        rows: Rows,
        open_rounds: Sequence[RoundTally],
        figures: Mapping[str, Any],
    ) -> None: ...

    def close(self) -> None:
        """Give the terminal back; idempotent, and safe after a failure."""


class PlainRenderer:
    """Plain lines: one per finished round, then the summary as ``name: value`` lines."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._expected = 0
        self._rounds: int | None = None

    def _print(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def start(self, header: str) -> None:
        self._print(header)

    def update(self, round_: RoundTally, expected: int, rounds: int | None) -> None:
        self._expected, self._rounds = expected, rounds
        if round_.done >= expected:
            self._print(round_line(round_, expected, rounds))

    def finish(
        self,
        title: str,
        rows: Rows,
        open_rounds: Sequence[RoundTally],
        figures: Mapping[str, Any],
    ) -> None:
        for round_ in open_rounds:
            self._print(round_line(round_, self._expected, self._rounds) + " (unfinished)")
        self._print(title)
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self._print(f"  {name + ':':<{width + 1}} {value}")

    def close(self) -> None:
        pass


class RichRenderer:
    """A live progress bar per round and a summary table, on a terminal."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._console = console
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            # Results written to stdout on the same terminal (``--output -``)
            # scroll above the bars; stdout that goes elsewhere is left alone.
            redirect_stdout=sys.stdout.isatty(),
        )
        self._tasks: dict[int, Any] = {}

    def start(self, header: str) -> None:
        self._console.print(header, highlight=False)
        self._progress.start()

    def update(self, round_: RoundTally, expected: int, rounds: int | None) -> None:
        parked = f" · {round_.parked} parked" if round_.parked else ""
        detail = f"{round_.ok} ok · {round_.errored} errors{parked} · {round_.skipped} skipped"
        task = self._tasks.get(round_.number)
        if task is None:
            of = f"/{rounds}" if rounds else ""
            task = self._progress.add_task(
                f"round {round_.number}{of}", total=expected, detail=detail
            )
            self._tasks[round_.number] = task
        self._progress.update(task, completed=round_.done, detail=detail)
        if round_.done >= expected:
            # Finished rounds stay on screen but leave the bookkeeping.
            del self._tasks[round_.number]

    def finish(
        self,
        title: str,
        rows: Rows,
        open_rounds: Sequence[RoundTally],
        figures: Mapping[str, Any],
    ) -> None:
        from rich.table import Table

        self._progress.stop()
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for name, value in rows:
            table.add_row(name, value)
        self._console.print(table)

    def close(self) -> None:
        self._progress.stop()


class JsonRenderer:
    """Progress and the summary as log events (``--log-format json``): one JSON object a line."""

    def __init__(self) -> None:
        self._log = logging.getLogger(CLI_LOGGER)
        self._expected = 0

    def start(self, header: str) -> None:
        self._log.info(header, extra={"event": "poll_started"})

    def update(self, round_: RoundTally, expected: int, rounds: int | None) -> None:
        self._expected = expected
        if round_.done >= expected:
            self._round("round_finished", round_, expected, rounds)

    def _round(self, event: str, round_: RoundTally, expected: int, rounds: int | None) -> None:
        self._log.info(
            round_line(round_, expected, rounds),
            extra={
                "event": event,
                "round": round_.number,
                "vehicles": expected,
                "done": round_.done,
                "ok": round_.ok,
                "errored": round_.errored,
                "parked": round_.parked,
                "skipped": round_.skipped,
                "seconds": round(round_.seconds, 3),
            },
        )

    def finish(
        self,
        title: str,
        rows: Rows,
        open_rounds: Sequence[RoundTally],
        figures: Mapping[str, Any],
    ) -> None:
        for round_ in open_rounds:
            self._round("round_unfinished", round_, self._expected, None)
        self._log.info(title, extra={"event": "summary", "summary": dict(figures)})

    def close(self) -> None:
        pass


def make_renderer(stream: IO[str], *, plain: bool, log_json: bool = False) -> Renderer:
    """Rich on a terminal when rich is installed (the ``demo`` extra), else plain lines.

    With ``log_json``, JSON log events whatever the stream.
    """
    if log_json:
        return JsonRenderer()
    if not plain and stream.isatty():
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:
            console = Console(file=stream)
            if console.is_terminal:
                return RichRenderer(console)
    return PlainRenderer(stream)
