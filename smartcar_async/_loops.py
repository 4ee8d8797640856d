"""The event loop the command-line tools run on: ``--loop auto|asyncio|uvloop``.

The library itself never installs a loop (an application picks its own); only
``smartcar-async poll`` and ``python -m smartcar_async.testing`` do, because
they own their process. ``asyncio.Runner(loop_factory=...)`` is used rather than
a loop policy: it works on every supported Python (3.11 has no
``asyncio.run(loop_factory=...)``) and uvloop's policy is deprecated on 3.12+.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "LoopFactory", "add_loop_argument", "loop_factory", "run"]

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

LOOPS = ("auto", "asyncio", "uvloop")


def loop_factory(choice: str) -> LoopFactory | None:
    """uvloop's factory, or None for asyncio's own loop; ValueError if uvloop is asked and absent.

    ``auto`` is uvloop when it is importable, else asyncio.
    """
    if choice not in LOOPS:
        raise ValueError(f"--loop must be one of {', '.join(LOOPS)}, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError(
                "--loop uvloop: uvloop is not installed; "
                "pip install 'smartcar-async[speedups]' (not on Windows)"
            ) from None
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], factory: LoopFactory | None) -> T:
    """``asyncio.run(main)`` on a loop from ``factory`` (None: asyncio's)."""
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def add_loop_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help=(
            "event loop: uvloop or asyncio's own; auto (the default) is uvloop when it is "
            "installed (pip install 'smartcar-async[speedups]')"
        ),
    )
