"""``python -m smartcar_async.testing``: serve an emulator until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from ._emulator import Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m smartcar_async.testing",
        description="Serve a Smartcar API v2.0 emulator with a simulated fleet.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument("--vehicles", type=int, default=10, help="fleet size (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="fleet seed (default 0)")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds added to every response"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Emulator(
            vehicles=args.vehicles,
            seed=args.seed,
            latency=args.latency,
            host=args.host,
            port=args.port,
            # A long-running server should not keep a request history nobody reads.
            max_recorded=0,
        ) as emu:
            print(f"Smartcar emulator serving {args.vehicles} vehicles at {emu.url}", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.vehicles < 0 or args.latency < 0:
        print("--vehicles and --latency must not be negative", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
