"""``python -m smartcar_async.testing``: serve an emulator until SIGINT or SIGTERM.

Besides its URL it prints how to point ``smartcar-async poll`` at it;
``--write-fleet`` writes the vehicles file that command reads, and the fault
options shape what the poller meets.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shlex
import signal
import sys
from collections.abc import Callable, Sequence

from .._loops import add_loop_argument, loop_factory, run
from ._emulator import Emulator
from ._faults import Faults
from ._fleet_file import issue_fleet, render, write_private
from ._ratelimit import RateLimits

DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, not {text}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _whole(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m smartcar_async.testing",
        description="Serve a Smartcar API v2.0 emulator with a simulated fleet, "
        "and print how to poll it with smartcar-async poll.",
        epilog="Exit status: 0 after SIGINT or SIGTERM, 1 if it cannot serve or write "
        "the fleet file, 2 for bad arguments.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_whole(0, 65535), default=8000, help="port; 0 picks a free one"
    )
    parser.add_argument("--vehicles", type=_whole(0), default=10, help="fleet size (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="fleet and fault seed (default 0)")
    add_loop_argument(parser)

    tokens = parser.add_argument_group("tokens")
    tokens.add_argument(
        "--write-fleet",
        metavar="PATH",
        help="write a vehicles CSV (vehicle_id,access_token,refresh_token,expires_at) "
        "for smartcar-async poll, owner-only permissions",
    )
    tokens.add_argument(
        "--vehicles-per-user",
        type=_whole(1),
        default=1,
        metavar="N",
        help="vehicles sharing one user's token pair in that file (default 1)",
    )
    tokens.add_argument(
        "--token-ttl",
        type=_whole(1),
        metavar="SECONDS",
        help="access token life (default Smartcar's 7200); set, a refresh token "
        "also works only once, with no grace",
    )
    tokens.add_argument(
        "--client-id",
        default=DEFAULT_CLIENT_ID,
        help=f"the OAuth client the token endpoint accepts (default {DEFAULT_CLIENT_ID})",
    )
    tokens.add_argument(
        "--client-secret",
        default=DEFAULT_CLIENT_SECRET,
        help=f"its secret (default {DEFAULT_CLIENT_SECRET}; a test credential)",
    )

    faults = parser.add_argument_group("faults")
    faults.add_argument(
        "--latency", type=_seconds, default=0.0, help="seconds added to every response"
    )
    faults.add_argument(
        "--error-rate",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="random 500 SERVER errors: this fraction of requests, and of batch items",
    )
    faults.add_argument(
        "--asleep",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="this fraction of vehicles (picked by --seed) answer 409 VEHICLE_STATE:ASLEEP",
    )
    faults.add_argument(
        "--vehicle-rate-limit",
        type=_whole(1),
        metavar="N",
        help="requests per vehicle per --vehicle-window, then 429 RATE_LIMIT:VEHICLE",
    )
    faults.add_argument(
        "--vehicle-window",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="the per-vehicle window (default 60)",
    )
    faults.add_argument(
        "--app-rate-limit",
        type=_whole(1),
        metavar="CAPACITY",
        help="application token bucket, then 429 RATE_LIMIT:SMARTCAR_API (Smartcar: 120)",
    )
    faults.add_argument(
        "--app-refill",
        type=_seconds,
        default=2.0,
        metavar="PER_MINUTE",
        help="the bucket's refill per minute (default 2)",
    )
    return parser


def _emulator(args: argparse.Namespace) -> Emulator:
    emu = Emulator(
        vehicles=args.vehicles,
        seed=args.seed,
        latency=args.latency,
        host=args.host,
        port=args.port,
        # A long-running server should not keep a request history nobody reads.
        max_recorded=0,
        token_ttl=args.token_ttl,
        rate_limits=RateLimits(
            vehicle_requests=args.vehicle_rate_limit,
            vehicle_window=args.vehicle_window,
            app_capacity=args.app_rate_limit,
            app_refill_per_minute=args.app_refill,
        ),
    )
    ids = emu.fleet.ids
    asleep = set(random.Random(args.seed).sample(ids, round(args.asleep * len(ids))))
    emu.faults = Faults(
        seed=args.seed,
        server_error_rate=args.error_rate,
        item_error_rate=args.error_rate,
        asleep=asleep,
    )
    emu.register_client(args.client_id, args.client_secret)
    return emu


def _instructions(emu: Emulator, args: argparse.Namespace, fleet_users: int | None) -> list[str]:
    url = emu.url
    ttl = args.token_ttl if args.token_ttl is not None else 7200
    path = args.write_fleet
    shown = shlex.quote(path) if path else "FLEET.csv"
    state = shlex.quote(os.path.splitext(path)[0] + ".state") if path else "FLEET.state"
    lines = [
        f"OAuth token endpoint: {url}/oauth/token (access tokens live {ttl} s"
        + (", refresh tokens work once)" if args.token_ttl is not None else ")"),
    ]
    if path:
        lines.append(f"Vehicles file: {path} ({len(emu.fleet)} vehicles, {fleet_users} users)")
    lines += [
        "Poll it with:",
        f"  export SMARTCAR_CLIENT_ID={shlex.quote(args.client_id)}",
        f"  export SMARTCAR_CLIENT_SECRET={shlex.quote(args.client_secret)}",
        f"  smartcar-async poll --origin {url} --auth-origin {url} "
        f"--vehicles-file {shown} --state {state}",
    ]
    if not path:
        lines.append("  (--write-fleet FLEET.csv writes that file)")
    if emu.fleet.ids:
        lines.append(
            f"or, with a made-up token: smartcar-async poll --origin {url} "
            f"--vehicle {emu.fleet.ids[0]} --token demo"
        )
    faults = []
    if args.error_rate:
        faults.append(f"error rate {args.error_rate:g}")
    if emu.faults.asleep:
        faults.append(f"{len(emu.faults.asleep)} vehicles asleep")
    if args.latency:
        faults.append(f"latency {args.latency:g} s")
    if args.vehicle_rate_limit is not None:
        faults.append(
            f"{args.vehicle_rate_limit} requests per vehicle per {args.vehicle_window:g} s"
        )
    if args.app_rate_limit is not None:
        faults.append(f"app bucket {args.app_rate_limit}, refill {args.app_refill:g}/min")
    if faults:
        lines.append("Faults: " + ", ".join(faults))
    lines.append("Stop with Ctrl-C (SIGINT) or SIGTERM.")
    return lines


class _FleetWriteError(Exception):
    pass


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with _emulator(args) as emu:
            users = None
            if args.write_fleet:
                rows = issue_fleet(emu, args.vehicles_per_user)
                users = len({pair.refresh_token for _, pair in rows})
                try:
                    write_private(args.write_fleet, render(rows, emu.url))
                except OSError as exc:
                    raise _FleetWriteError(
                        f"cannot write {args.write_fleet}: {exc.strerror or exc}"
                    ) from None
            # The first line's shape is relied on by scripts and tests: keep it.
            print(f"Smartcar emulator serving {args.vehicles} vehicles at {emu.url}", flush=True)
            print("\n".join(_instructions(emu, args, users)), flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.write_fleet is not None and args.vehicles == 0:
        parser.error("--write-fleet needs at least one vehicle")
    if args.write_fleet == "":
        parser.error("--write-fleet needs a path")
    try:
        loop = loop_factory(args.loop)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        run(_serve(args), loop)
    except _FleetWriteError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
