"""``python -m smartcar_async poll`` (also ``smartcar-async poll``): poll a fleet from the shell.

With no token it starts the built-in emulator in this process, with a
simulated fleet that has some latency and a few faults, and polls it: the
quickest way to see coalescing and the poller at work. With ``--token`` and
``--vehicle`` (or ``--vehicles-file``) it polls the real API.

Results go to stdout (JSON Lines, or CSV) when stdout is not a terminal, or
to ``--output``. Progress and the summary go to stderr: a live display on a
terminal when rich is installed, plain lines otherwise, or JSON log events
with ``--log-format json``; ``--summary-json`` writes the summary's figures
to a file. The exit status says how the run went (``EXIT_STATUSES``).
Tokens are never printed, not even in argument errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import itertools
import json
import logging
import os
import random
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from time import perf_counter
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, cast

import anyio
import attrs

from ._account import AuthClient
from ._account._api import client_credentials
from ._cli_logs import CLI_LOGGER, Scrubber, install_logging, json_line
from ._cli_metrics import (
    MetricsUnavailable,
    RunMetrics,
    add_metrics_arguments,
    check_metrics_arguments,
    start_run_metrics,
)
from ._cli_render import (
    EXIT_STATUSES,
    Renderer,
    Tally,
    make_renderer,
    summary_figures,
    summary_rows,
)
from ._client import DEFAULT_API_ORIGIN, Client
from ._converter import unstructure
from ._exceptions import SmartcarError
from ._names import ReadName, UnitSystem
from ._observability import ClientStats
from ._origins import DEFAULT_AUTH_ORIGIN, api_origin, check_origin, token_url
from ._poller import READ_NAMES, FleetPoller, PollResult, check_reads
from ._sqlite_state import SQLiteState
from ._state import StoredTokens
from ._stored_tokens import StoredTokenSource
from ._validate import check_bound
from ._vehicle import Vehicle
from ._vehicles_file import (
    VehicleRow,
    VehiclesFileError,
    read_vehicles_file,
    secrets_of,
    vehicle_id_problem,
)
from ._version import __version__

if TYPE_CHECKING:
    from .testing import Emulator, Faults

__all__ = ["main"]

DEMO_READS: Final = ("odometer", "location", "tire_pressure", "lock_status")
#: The second job of the demo asks for a signal the main job reads too, as a
#: live map would next to a telemetry job: the two share each vehicle's batch.
DEMO_ALSO: Final = ("location",)
DEMO_FLEET_SIZE: Final = 200
DEMO_LATENCY: Final = (0.05, 0.3)
DEMO_INTERVAL: Final = 2.0
DEMO_ROUNDS: Final = 3
DEMO_ASLEEP: Final = 0.03
DEMO_UNREACHABLE: Final = 0.01
DEMO_SERVER_ERRORS: Final = 0.02
DEMO_ITEM_ERRORS: Final = 0.005
#: Against the real API every read is billed and rate limited: one pass by
#: default, and rounds five minutes apart when more are asked for.
API_INTERVAL: Final = 300.0
API_ROUNDS: Final = 1
#: Seconds before a read that answered COMPATIBILITY or PERMISSION is asked again.
DEFAULT_RECHECK: Final = 86_400.0
TOKEN_ENV: Final = "SMARTCAR_ACCESS_TOKEN"
#: Where the client credentials for refreshing come from; never a flag (it would show in ps).
CLIENT_ID_ENV: Final = "SMARTCAR_CLIENT_ID"
CLIENT_SECRET_ENV: Final = "SMARTCAR_CLIENT_SECRET"
#: Exit statuses by the signal that stopped the run: 128 + its number, as shells report.
SIGNAL_EXITS: Final = {"SIGINT": 130, "SIGTERM": 143}


# ----------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose error messages never show a token."""

    def __init__(
        self, *args: Any, secrets: Sequence[str] = (), log_json: bool = False, **kwargs: Any
    ) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.secrets = tuple(s for s in secrets if s)
        # With --log-format json, a usage error is a JSON line like every other.
        self.log_json = log_json

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            # A mistyped --token would be followed by the token itself: name
            # the unknown options, never the values after them.
            words = message[len(prefix) :].split()
            options = [w.split("=", 1)[0] for w in words if w.startswith("-")]
            message = prefix + (" ".join(options) or "(values not shown)")
        for secret in self.secrets:
            message = message.replace(secret, "***")
        if self.log_json:
            line = json_line(
                Scrubber(self.secrets),
                level="ERROR",
                logger=CLI_LOGGER,
                event="usage_error",
                message=message,
                fields={"exit_status": 2, "help": f"{self.prog} --help"},
            )
            self.exit(2, line + "\n")
        super().error(message)


def _secrets_in(argv: Sequence[str]) -> list[str]:
    found = []
    for index, word in enumerate(argv):
        if word == "--token" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif word.startswith("--token="):
            found.append(word.partition("=")[2])
    for name in (TOKEN_ENV, CLIENT_SECRET_ENV):
        if os.environ.get(name):
            found.append(os.environ[name])
    return found


def _log_json_in(argv: Sequence[str]) -> bool:
    """Whether ``--log-format json`` is asked for: usage errors then come out as JSON too."""
    pairs = itertools.pairwise([*argv, ""])
    return any(w == "--log-format=json" or (w, nxt) == ("--log-format", "json") for w, nxt in pairs)


def _epilog() -> str:
    statuses = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_STATUSES.items())
    return (
        _fill(
            "Results go to stdout as JSON Lines when stdout is not a terminal, or to "
            "--output. Progress and the summary go to stderr (JSON log events with "
            "--log-format json); --summary-json writes the summary's figures to a file."
        )
        + "\n\nvehicles file (CSV, one vehicle per line; # comments and blank lines skipped):\n"
        + "  vehicle_id,access_token,refresh_token,expires_at,unit_system   (optional header)\n"
        + "  headerless: vehicle_id,access_token  or  vehicle_id (with --token)\n"
        + "  expires_at: ISO 8601 with a timezone, or Unix epoch seconds\n"
        + _fill(
            f"A refresh_token column makes tokens refresh; it needs --state (rotated tokens "
            f"are saved there before use, and a restart carries on from them) and the "
            f"application's credentials in {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}."
        )
        + "\n"
        + f"\nexit status:\n{statuses}"
    )


def _fill(text: str) -> str:
    return textwrap.fill(text, width=78, break_on_hyphens=False)


def _parser(secrets: Sequence[str], *, log_json: bool = False) -> _Parser:
    parser = _Parser(
        prog="smartcar-async",
        description="An async, coalescing Smartcar API client: command-line tools.",
        secrets=secrets,
        log_json=log_json,
    )
    parser.add_argument("--version", action="version", version=f"smartcar-async {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
    )
    poll = commands.add_parser(
        "poll",
        help="poll vehicles for signals, round after round",
        description=_fill(
            "Read the same signals from many vehicles every --interval seconds. With no "
            "token, poll a simulated fleet on the built-in emulator (with some latency "
            "and a few asleep and failing vehicles) and show what coalescing did."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = poll.add_argument_group("vehicles")
    source.add_argument(
        "--token",
        help=f"access token for the --vehicle ids (or set {TOKEN_ENV}); never printed",
    )
    source.add_argument(
        "--vehicle",
        action="append",
        default=[],
        metavar="ID",
        help="a vehicle id to poll with --token (repeat for more)",
    )
    source.add_argument(
        "--vehicles-file",
        metavar="FILE",
        help=(
            "a CSV file of vehicles: 'vehicle_id,token' lines, 'vehicle_id' lines (with "
            "--token), or columns named in a header row (see below)"
        ),
    )
    source.add_argument(
        "--origin",
        help=f"API origin (default: $SMARTCAR_API_ORIGIN, else {DEFAULT_API_ORIGIN})",
    )
    source.add_argument(
        "--auth-origin",
        metavar="URL",
        help=(
            "OAuth origin (or token URL) for refresh tokens in the vehicles file "
            f"(default: $SMARTCAR_AUTH_ORIGIN, else {DEFAULT_AUTH_ORIGIN})"
        ),
    )
    source.add_argument(
        "--fleet-size",
        type=int,
        default=DEMO_FLEET_SIZE,
        metavar="N",
        help=f"without a token: vehicles in the emulated fleet (default {DEMO_FLEET_SIZE})",
    )
    source.add_argument(
        "--seed", type=int, default=0, help="without a token: the emulated fleet's seed"
    )

    polling = poll.add_argument_group("polling")
    polling.add_argument(
        "--reads",
        metavar="NAMES",
        help=(
            f"comma-separated reads (default {','.join(DEMO_READS)}); any of: "
            + ", ".join(READ_NAMES)
        ),
    )
    polling.add_argument(
        "--also",
        metavar="NAMES",
        help=(
            "reads of a second job polling the same vehicles on the same client, as another "
            "part of an application would; its reads share the main job's batches and "
            "identical ones are deduplicated; counted, not written "
            f"(default {','.join(DEMO_ALSO)} with the emulator, none against the API; "
            "'' for none)"
        ),
    )
    polling.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help=(
            f"rounds to poll, 0 until interrupted (default {DEMO_ROUNDS} with the emulator, "
            f"{API_ROUNDS} against the API)"
        ),
    )
    polling.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help=(
            f"seconds between rounds (default {DEMO_INTERVAL:g} with the emulator, "
            f"{API_INTERVAL:g} against the API)"
        ),
    )
    polling.add_argument(
        "--jitter",
        type=float,
        metavar="FRACTION",
        help=(
            "fraction of the interval each round's polls spread over "
            "(default 0.1; 0 for a single round, which has nothing to spread for)"
        ),
    )
    polling.add_argument(
        "--concurrency",
        type=int,
        default=100,
        metavar="N",
        help="vehicles polled at once (default 100)",
    )
    polling.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one vehicle's reads may take (default: the client's own timeouts)",
    )
    polling.add_argument(
        "--max-retries",
        type=int,
        metavar="N",
        help="retries per request for transient failures (default: the client's)",
    )
    polling.add_argument(
        "--units", choices=("metric", "imperial"), default="metric", help="unit system"
    )
    polling.add_argument(
        "--recheck",
        type=float,
        default=DEFAULT_RECHECK,
        metavar="SECONDS",
        help=(
            "a read that answers COMPATIBILITY or PERMISSION (billed like any read) is not "
            "asked again for this long, and shows as parked; a vehicle whose token is "
            "refused (AUTHENTICATION) is parked until its token changes or this passes "
            f"(default {DEFAULT_RECHECK:g}, a day)"
        ),
    )
    polling.add_argument(
        "--state",
        metavar="PATH",
        help=(
            "keep poll state in this SQLite file (created owner-only if missing): refreshed "
            "tokens, parked reads and back-offs survive a restart; without it they last for "
            "the run (and refresh tokens are refused)"
        ),
    )
    polling.add_argument(
        "--shard",
        metavar="I/N",
        help="poll only shard I of N (0-based), split by a stable hash of the vehicle id",
    )

    output = poll.add_argument_group("output")
    output.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        help="write results here ('-' for stdout; default stdout unless it is a terminal)",
    )
    output.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="results format (default: csv for a .csv --output, else jsonl)",
    )
    output.add_argument(
        "--plain",
        action="store_true",
        help="plain progress lines even on a terminal",
    )
    output.add_argument(
        "--summary-json",
        metavar="PATH",
        help="also write the summary's figures here, as JSON (written at the end of the run)",
    )
    output.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help=(
            "stderr as text (default), or as JSON Lines: one object per line with time, "
            "level, logger, event, message and fields such as vehicle_id and request_id"
        ),
    )
    output.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help=(
            "log more of the client: -v retries and token refreshes (warnings, such as "
            "rate limits, are always shown), -vv every batch and failed request"
        ),
    )
    add_metrics_arguments(poll)
    # Subparsers are built by argparse itself (as our class, without arguments).
    poll.secrets = parser.secrets
    poll.log_json = parser.log_json
    poll.set_defaults(handler=_poll_command, command_parser=poll)
    return parser


def _count_only(vehicles: tuple[VehicleRow, ...]) -> str:
    # Each row holds tokens: a repr shows how many there are, nothing more.
    return f"<{len(vehicles)} vehicles>"


@attrs.frozen
class _Refreshing:
    """What refreshing the file's tokens needs: the token endpoint and the app's credentials."""

    token_url: str
    client_id: str
    client_secret: str = attrs.field(repr=False)


@attrs.frozen
class _Config:
    demo: bool
    # Each row carries its access token (the file's, else --token).
    vehicles: tuple[VehicleRow, ...] = attrs.field(repr=_count_only)
    origin: str | None
    fleet_size: int
    seed: int
    reads: tuple[str, ...]
    also: tuple[str, ...]
    rounds: int | None
    interval: float
    jitter: float
    concurrency: int
    timeout: float | None
    max_retries: int | None
    units: str
    shard: tuple[int, int] | None
    recheck: float = DEFAULT_RECHECK
    state: str | None = None
    #: Set when the vehicles file carries refresh tokens.
    refreshing: _Refreshing | None = None


def _config(args: argparse.Namespace, parser: _Parser) -> _Config:
    demo = not (args.token or args.vehicle or args.vehicles_file or args.origin)
    vehicles: list[VehicleRow] = []
    if not demo:
        vehicles = _vehicles(args, parser)
    try:
        reads = check_reads(_names(args.reads) if args.reads is not None else DEMO_READS)
        also_default = DEMO_ALSO if demo else ()
        also = _names(args.also) if args.also is not None else also_default
        if also:
            also = check_reads(also)
    except ValueError as exc:
        parser.error(str(exc))
    rounds = args.rounds if args.rounds is not None else (DEMO_ROUNDS if demo else API_ROUNDS)
    if rounds < 0:
        parser.error("--rounds must be >= 0 (0 polls until interrupted)")
    interval = (
        args.interval if args.interval is not None else (DEMO_INTERVAL if demo else API_INTERVAL)
    )
    try:
        # The library's own rule for bounds: finite and > 0.
        check_bound("--interval", interval, optional=False)
        check_bound("--timeout", args.timeout)
    except ValueError as exc:
        parser.error(str(exc))
    jitter = args.jitter if args.jitter is not None else (0.1 if rounds != 1 else 0.0)
    if not 0 <= jitter <= 1:
        parser.error("--jitter must be within 0..1")
    if args.concurrency < 1:
        parser.error("--concurrency must be >= 1")
    if args.max_retries is not None and args.max_retries < 0:
        parser.error("--max-retries must be >= 0")
    if not demo:
        try:
            if args.origin is not None:
                check_origin("--origin", args.origin)
            else:
                api_origin()
        except ValueError as exc:
            hint = "" if args.origin is not None else " (from $SMARTCAR_API_ORIGIN)"
            parser.error(f"{exc}{hint}, e.g. https://api.smartcar.com")
    if demo and args.fleet_size < 1:
        parser.error("--fleet-size must be >= 1")
    if args.summary_json is not None:
        _check_writable(args.summary_json, "--summary-json", parser)
    try:
        recheck = check_bound("--recheck", args.recheck, optional=False)
    except ValueError as exc:
        parser.error(str(exc))
    assert recheck is not None
    if args.state is not None:
        _check_writable(args.state, "--state", parser)
    metrics_problem = check_metrics_arguments(args)
    if metrics_problem is not None:
        parser.error(metrics_problem)
    refreshing = _refreshing(args, vehicles, parser)
    return _Config(
        demo=demo,
        vehicles=tuple(vehicles),
        origin=args.origin,
        fleet_size=args.fleet_size,
        seed=args.seed,
        reads=reads,
        also=tuple(also),
        rounds=rounds or None,
        interval=interval,
        jitter=jitter,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        units=args.units,
        shard=_shard(args.shard, parser) if args.shard else None,
        recheck=recheck,
        state=args.state,
        refreshing=refreshing,
    )


def _refreshing(
    args: argparse.Namespace, rows: Sequence[VehicleRow], parser: _Parser
) -> _Refreshing | None:
    """The token endpoint and credentials, when rows carry refresh tokens; usage errors else."""
    first = next((row for row in rows if row.refresh_token is not None), None)
    if first is None:
        return None
    where = f"--vehicles-file {args.vehicles_file}, line {first.line}"
    if args.state is None:
        parser.error(
            f"{where}: refresh tokens need --state PATH: each refresh replaces the "
            "refresh token, and without a state file the new one would be lost at exit "
            "(the user would have to connect again)"
        )
    if not os.environ.get(CLIENT_ID_ENV) or not os.environ.get(CLIENT_SECRET_ENV):
        parser.error(
            f"{where}: refresh tokens need the application's credentials: set "
            f"{CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}"
        )
    try:
        client_id, client_secret = client_credentials(None, None, "refreshing tokens")
    except ValueError as exc:
        parser.error(f"{CLIENT_ID_ENV}/{CLIENT_SECRET_ENV}: {exc}")
    try:
        url = token_url(args.auth_origin)
    except ValueError as exc:
        hint = "" if args.auth_origin is not None else " (from $SMARTCAR_AUTH_ORIGIN)"
        parser.error(f"--auth-origin: {exc}{hint}, e.g. {DEFAULT_AUTH_ORIGIN}")
    return _Refreshing(url, client_id, client_secret)


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _shard(value: str, parser: _Parser) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        parser.error("--shard must look like I/N, e.g. 0/4")
    if not 0 <= shard[0] < shard[1]:
        parser.error("--shard I/N needs 0 <= I < N")
    return shard


def _vehicles(args: argparse.Namespace, parser: _Parser) -> list[VehicleRow]:
    """The vehicles of --vehicle and --vehicles-file, each with its access token."""
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if args.vehicle and token is None:
        parser.error(f"--vehicle needs a token: pass --token or set {TOKEN_ENV}")
    rows: list[VehicleRow] = []
    given: set[str] = set()
    for vehicle_id in args.vehicle:
        problem = vehicle_id_problem(vehicle_id)
        if problem is not None:
            parser.error(f"--vehicle: {problem}")
        if vehicle_id in given:
            parser.error("--vehicle: the same vehicle id is given twice")
        given.add(vehicle_id)
        rows.append(VehicleRow(vehicle_id, access_token=token))
    if args.vehicles_file:
        try:
            listed = read_vehicles_file(args.vehicles_file, default_token=token)
        except VehiclesFileError as exc:
            parser.error(f"--vehicles-file {exc}")
        # From here on, usage errors and logs are scrubbed of the file's tokens too.
        parser.secrets = (*parser.secrets, *secrets_of(listed))
        for row in listed:
            if row.vehicle_id in given:
                parser.error(
                    f"--vehicles-file {args.vehicles_file}, line {row.line}: "
                    "the same vehicle id as a --vehicle"
                )
            if row.access_token or row.refresh_token:
                rows.append(row)  # a refresh token alone: the first use refreshes
            else:
                rows.append(attrs.evolve(row, access_token=token))
    if not rows:
        parser.error("give the vehicles to poll: --vehicle ID (with --token) or --vehicles-file")
    return rows


def _check_writable(path: str, option: str, parser: _Parser) -> None:
    """Fail before polling, not after a long run, when a file cannot be written at the end."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        parser.error(f"{option}: cannot write {path}")


# -------------------------------------------------------------------- output


class _Writer:
    """Writes results as JSON Lines or CSV; stops quietly when the reader goes away.

    A write that fails otherwise (a full disk) stops the run too, and is kept
    in ``failure`` for the run to end with status 1.
    """

    CSV_FIELDS: Final = (
        "vehicle_id",
        "round",
        "started_at",
        "read",
        "status",
        "field",
        "value",
        "data_age",
        "error",
        "code",
        "read_seconds",
    )

    def __init__(self, stream: Callable[[], IO[str]], fmt: str, where: str) -> None:
        # The stream is looked up on every write, so that rich can redirect
        # stdout above its progress bars.
        self._stream = stream
        self._format = fmt
        self.format_name = "CSV" if fmt == "csv" else "JSON Lines"
        self.where = where
        self.written = 0
        self.broken = False
        self.failure: OSError | None = None
        if fmt == "csv":
            self._emit([list(self.CSV_FIELDS)])

    def write(self, result: PollResult) -> None:
        if self.broken:
            return
        if self._format == "jsonl":
            line = json.dumps(result.to_dict(), separators=(",", ":"))
            self._raw(line + "\n")
        else:
            self._emit(_csv_rows(result))
        if not self.broken:
            self.written += 1

    def _emit(self, rows: list[list[Any]]) -> None:
        if not rows:
            return
        out = _LineBuffer()
        csv.writer(out, lineterminator="\n").writerows(rows)
        self._raw(out.text())

    def close(self) -> None:
        if self.where != "stdout":
            with contextlib.suppress(OSError):
                self._stream().close()

    def _raw(self, text: str) -> None:
        try:
            stream = self._stream()
            stream.write(text)
            stream.flush()
        except OSError as exc:
            self.broken = True
            if not isinstance(exc, BrokenPipeError):
                self.failure = exc
            if self.where == "stdout":
                # Later flushes (at exit too) must not raise again on the dead stream.
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())


class _LineBuffer:
    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def text(self) -> str:
        return "".join(self._parts)


def _csv_rows(result: PollResult) -> list[list[Any]]:
    head = [result.vehicle_id, result.round, result.started_at.isoformat()]
    if result.skipped is not None:
        return [[*head, "", f"skipped:{result.skipped}", "", "", "", "", "", ""]]
    rows = []
    for name, value in result.values.items():
        data = unstructure(value)
        meta = data.pop("meta", None) or {}
        seconds = f"{result.timings[name]:.6f}" if name in result.timings else ""
        for field, leaf in _leaves(data):
            rows.append(
                [*head, name, "ok", field, _cell(leaf), meta.get("data_age") or "", "", "", seconds]
            )
    for name, error in result.errors.items():
        seconds = f"{result.timings[name]:.6f}" if name in result.timings else ""
        rows.append(
            [*head, name, "error", "", "", "", type(error).__name__, error.code or "", seconds]
        )
    for name, reason in result.parked.items():
        rows.append([*head, name, "parked", "", "", "", reason, "", ""])
    return rows


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _writer(args: argparse.Namespace) -> _Writer | None:
    target = args.output
    if target is None and sys.stdout.isatty():
        return None
    fmt = args.format or ("csv" if target and target.lower().endswith(".csv") else "jsonl")
    if target is None or target == "-":
        return _Writer(lambda: sys.stdout, fmt, "stdout")
    handle = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by main
    return _Writer(lambda: handle, fmt, target)


# ----------------------------------------------------------------------- run


def _demo_faults(emu: Emulator, seed: int) -> tuple[Faults, str]:
    """A few asleep and unreachable vehicles and some 5xx, so the summary has errors to show."""
    from .testing import Faults

    ids = emu.fleet.ids
    rng = random.Random(seed)
    # At least one of each in a fleet big enough to spare it, so the demo shows them.
    asleep = set(rng.sample(ids, _at_least_one(len(ids), DEMO_ASLEEP)))
    awake = [vid for vid in ids if vid not in asleep]
    unreachable = set(rng.sample(awake, _at_least_one(len(ids), DEMO_UNREACHABLE)))
    faults = Faults(
        seed=seed,
        server_error_rate=DEMO_SERVER_ERRORS,
        item_error_rate=DEMO_ITEM_ERRORS,
        asleep=asleep,
        unreachable=unreachable,
    )
    low, high = DEMO_LATENCY
    described = (
        f"{low * 1000:.0f}-{high * 1000:.0f} ms latency, {len(asleep)} asleep, "
        f"{len(unreachable)} unreachable, {DEMO_SERVER_ERRORS:.0%} HTTP 5xx, "
        f"{DEMO_ITEM_ERRORS:.1%} failed batch items"
    )
    return faults, described


def _at_least_one(size: int, fraction: float) -> int:
    return max(1, round(size * fraction)) if size * fraction * 10 >= 1 else 0


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


async def _poll(
    cfg: _Config,
    renderer: Renderer,
    writer: _Writer | None,
    outcome: _Outcome,
    scope: anyio.CancelScope,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        origin = cfg.origin
        vehicles = list(cfg.vehicles)
        where = label = ""
        if cfg.demo:
            from .testing import Emulator

            emu = Emulator(
                vehicles=cfg.fleet_size, seed=cfg.seed, latency=DEMO_LATENCY, max_recorded=0
            )
            emu.faults, described = _demo_faults(emu, cfg.seed)
            await stack.enter_async_context(emu)
            origin = emu.url
            # One token per vehicle, as a real fleet has one per owner.
            vehicles = [
                VehicleRow(vid, access_token=f"demo-token-{n:05d}")
                for n, vid in enumerate(emu.fleet.ids)
            ]
            label = f"the built-in emulator (seed {cfg.seed})"
            where = f"{label[:-1]}; {described})"
        client_options: dict[str, Any] = {}
        if cfg.max_retries is not None:
            client_options["max_retries"] = cfg.max_retries
        client_options["hooks"] = outcome.metrics.hooks
        client = await stack.enter_async_context(Client(api_origin=origin, **client_options))
        outcome.client = client
        if not cfg.demo:
            where = label = client.api_origin
        store = None
        if cfg.state is not None:
            # Closed after the pollers: their last records are saved as they stop.
            store = await stack.enter_async_context(SQLiteState(cfg.state))
        sources = await _token_sources(stack, cfg, vehicles, store, outcome.metrics)
        handles = [_handle(client, row, cfg.units, sources) for row in vehicles]
        options: dict[str, Any] = {
            "interval": cfg.interval,
            "jitter": cfg.jitter,
            "rounds": cfg.rounds,
            "max_concurrent_vehicles": cfg.concurrency,
            "timeout": cfg.timeout,
            "shard": cfg.shard,
            "recheck": cfg.recheck,
        }
        # Names from the command line were checked by check_reads in _config.
        reads = cast("tuple[ReadName, ...]", cfg.reads)
        also = cast("tuple[ReadName, ...]", cfg.also)
        # Records are written whole, one poller per vehicle and store: the
        # second job's parks last for the run only.
        main_job = FleetPoller(reads=reads, vehicles=handles, state=store, **options)
        second = FleetPoller(reads=also, vehicles=handles, **options) if also else None
        expected = outcome.vehicles = len(main_job)
        tally = outcome.tally = Tally(expected)

        count = f"{expected:,}"
        if cfg.shard is not None:
            count += f" of {len(handles):,} (shard {cfg.shard[0]}/{cfg.shard[1]})"
        jobs = ", ".join(cfg.reads) + (f" + second job: {', '.join(cfg.also)}" if cfg.also else "")
        schedule = (
            f"{cfg.rounds or 'unlimited'} round{'s' if cfg.rounds != 1 else ''}, "
            f"every {cfg.interval:g} s (jitter {cfg.jitter:.0%}), "
            f"{cfg.concurrency} vehicles at a time"
        )
        renderer.start(f"Polling {count} vehicles on {where}: {jobs}; {schedule}")

        async def drain(job: FleetPoller) -> None:
            async for result in job.results():
                tally.record(result, main=False)

        started = perf_counter()
        with scope:
            async with (
                main_job,
                second or contextlib.nullcontext(),
                anyio.create_task_group() as tg,
                outcome.metrics.watching(main_job),
            ):
                if second is not None:
                    tg.start_soon(drain, second)
                async for result in main_job.results():
                    if writer is not None:
                        writer.write(result)
                        if writer.broken:
                            scope.cancel()
                    round_ = tally.record(result)
                    outcome.metrics.poll_result(result, main_job)
                    if round_ is not None:
                        renderer.update(round_, expected, cfg.rounds)
        outcome.wall_seconds = perf_counter() - started

    if writer is None:
        results = "not written (stdout is a terminal: use --output FILE, or --output -)"
    else:
        results = f"{writer.written:,} as {writer.format_name} to {writer.where}"
        if writer.failure is not None:
            results += f" (then writing failed: {writer.failure.strerror}, which stopped the run)"
        elif writer.broken:
            results += " (then the reader closed the pipe, which stopped the run)"
    error = None
    if writer is not None and writer.failure is not None:
        error = f"cannot write --output: {writer.failure.strerror} ({writer.where})"
        logging.getLogger(CLI_LOGGER).error(error, extra={"event": "fatal_error"})
    figures = outcome.summary(cfg, writer, error=error)
    rows = summary_rows(
        tally,
        client.stats,
        vehicles=f"{count} on {label}",
        jobs=jobs,
        schedule=schedule,
        wall_seconds=outcome.wall_seconds,
        results=results,
        stopped_by=outcome.stopped_by,
        exit_status=outcome.exit_status,
    )
    renderer.finish("smartcar-async poll: summary", rows, tally.open_rounds, figures)


async def _token_sources(
    stack: contextlib.AsyncExitStack,
    cfg: _Config,
    rows: Sequence[VehicleRow],
    store: SQLiteState | None,
    metrics: RunMetrics,
) -> dict[str, StoredTokenSource]:
    """One source per distinct refresh token of the file: one user's vehicles share it.

    Each source saves a refreshed pair in the store before using it, under the
    lineage of the file's refresh token, so a restart with the same file
    carries on from the newest pair.
    """
    if cfg.refreshing is None or store is None:
        return {}
    creds = cfg.refreshing
    auth = await stack.enter_async_context(
        AuthClient(creds.client_id, creds.client_secret, auth_origin=creds.token_url)
    )
    sources: dict[str, StoredTokenSource] = {}
    for row in rows:
        if row.refresh_token is not None and row.refresh_token not in sources:
            sources[row.refresh_token] = StoredTokenSource(
                auth,
                store,
                _initial_tokens(row),
                on_refresh=lambda ok: metrics.token_refreshed(ok=ok),
            )

    async def drain() -> None:
        # Before the auth client and the store close: a refresh that a stopping
        # poll left in flight still gets its new pair saved.
        for source in sources.values():
            await source.drain()

    stack.push_async_callback(drain)
    return sources


def _initial_tokens(row: VehicleRow) -> StoredTokens | str:
    """The file's pair (an unknown expiry counts as expired), or its refresh token alone."""
    assert row.refresh_token is not None
    if row.access_token is None:
        return row.refresh_token
    return StoredTokens(
        access_token=row.access_token,
        refresh_token=row.refresh_token,
        access_expires_at=row.expires_at or dt.datetime.now(dt.UTC),
    )


def _handle(
    client: Client, row: VehicleRow, units: str, sources: dict[str, StoredTokenSource]
) -> Vehicle:
    units_checked = cast("UnitSystem", units)  # a choice of --units, or checked with the file
    unit_system = row.unit_system or units_checked
    if row.refresh_token is not None:
        source = sources[row.refresh_token]
        return client.vehicle(row.vehicle_id, access_token=source, unit_system=unit_system)
    # Rows with neither token were given --token's.
    assert row.access_token is not None
    return client.vehicle(row.vehicle_id, access_token=row.access_token, unit_system=unit_system)


def _poll_command(args: argparse.Namespace, parser: _Parser) -> int:
    cfg = _config(args, parser)
    # Past this point the parser knows every token: --token, the environment, the file.
    undo_logging = install_logging(args.log_format, args.verbose, Scrubber(parser.secrets))
    try:
        _warn_expired(cfg.vehicles)
        metrics = _start_metrics(args, parser)
        try:
            try:
                writer = _writer(args)
            except OSError as exc:
                parser.error(f"cannot write --output: {exc.strerror} ({args.output})")
            return _poll_and_report(cfg, args, writer, metrics)
        finally:
            # However the run ended: SIGINT and SIGTERM end it cleanly too.
            metrics.close()
    finally:
        undo_logging()


def _start_metrics(args: argparse.Namespace, parser: _Parser) -> RunMetrics:
    """The run's metrics, served before anything else starts; exit 1 if the port is refused."""
    try:
        return start_run_metrics(args)
    except MetricsUnavailable as exc:
        logging.getLogger(CLI_LOGGER).error(str(exc), extra={"event": "fatal_error"})
        raise SystemExit(exc.exit_status) from None


def _poll_and_report(
    cfg: _Config, args: argparse.Namespace, writer: _Writer | None, metrics: RunMetrics
) -> int:
    renderer = make_renderer(sys.stderr, plain=args.plain, log_json=args.log_format == "json")
    outcome = _Outcome(metrics=metrics)
    try:
        asyncio.run(_run(cfg, renderer, writer, outcome))
    except KeyboardInterrupt:
        # Only when no clean stop was possible: a SIGINT before the loop's
        # handler was installed, or a second one during the clean stop.
        return SIGNAL_EXITS["SIGINT"]
    except (SmartcarError, OSError, BaseExceptionGroup) as exc:
        fatal = _fatal(exc)
        if fatal is None:
            raise
        renderer.close()
        error = f"{type(fatal).__name__}: {fatal}"
        logging.getLogger(CLI_LOGGER).error(error, extra={"event": "fatal_error"})
        outcome.summary(cfg, writer, error=error)
    finally:
        renderer.close()
        if writer is not None:
            writer.close()
    if args.summary_json is not None:
        try:
            _write_json(args.summary_json, outcome.figures)
        except OSError as exc:
            logging.getLogger(CLI_LOGGER).error(
                "cannot write --summary-json: %s (%s)",
                exc.strerror,
                args.summary_json,
                extra={"event": "fatal_error"},
            )
            return 1
    return outcome.exit_status


def _fatal(exc: BaseException) -> BaseException | None:
    """The API or OS error that ended the run (out of task groups too); None for a bug."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc if isinstance(exc, SmartcarError | OSError) else None


def _write_json(path: str, data: dict[str, Any]) -> None:
    """Write whole or not at all: a reader never sees half a summary."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.replace(partial, path)


def _warn_expired(rows: Sequence[VehicleRow]) -> None:
    now = dt.datetime.now(dt.UTC)
    lines = [
        row.line
        for row in rows
        # A refresh token renews an expired access token: nothing to warn about.
        if row.refresh_token is None and row.expires_at is not None and row.expires_at <= now
    ]
    if lines:
        shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
        logging.getLogger(CLI_LOGGER).warning(
            "%d access token(s) of the vehicles file expired already (expires_at, line %s): "
            "their reads will fail with AuthenticationError",
            len(lines),
            shown,
            extra={"event": "tokens_expired", "lines": lines},
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``smartcar-async`` command line; return its exit status.

    Added in 0.1.0.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_secrets_in(words), log_json=_log_json_in(words))
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace, _Parser], int] = args.handler
    # Errors found after parsing show the subcommand's usage, as argparse's own do.
    return handler(args, args.command_parser)
