"""The command's arguments: the parser, its help, and usage errors that never show a token."""

from __future__ import annotations

import argparse
import itertools
import os
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._client import DEFAULT_API_ORIGIN
from .._loops import add_loop_argument
from .._origins import DEFAULT_AUTH_ORIGIN
from .._poller import READ_NAMES
from .._version import __version__
from ._defaults import (
    API_INTERVAL,
    API_ROUNDS,
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    DEFAULT_FLEET_NAME,
    DEFAULT_LEASE,
    DEFAULT_RECHECK,
    DEMO_ALSO,
    DEMO_FLEET_SIZE,
    DEMO_INTERVAL,
    DEMO_READS,
    DEMO_ROUNDS,
    TOKEN_ENV,
)
from ._logs import CLI_LOGGER, Scrubber, json_line
from ._metrics import add_metrics_arguments
from ._summary import EXIT_STATUSES


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
        + "\n\nmany workers (--state redis://...):\n"
        + _fill(
            "Run the same command in every worker, on any machine, with the same Redis "
            "--state and --fleet-name. The first worker to start loads the vehicles file into "
            "a shared schedule (the others find it loaded); each worker then claims due "
            "vehicles by lease, polls them and reschedules them, so each vehicle is polled "
            "once per --interval across all workers (a worker killed mid-poll may cause one "
            "repeat when its leases expire). --rounds N polls every vehicle N times in all; "
            "each worker exits once no vehicle has a poll left, writing its own --output. "
            "Workers may join and leave at any time. If Redis restarts, workers retry until "
            "it answers; if it cannot be reached at start, the command exits 1."
        )
        + "\n"
        + f"\nexit status:\n{statuses}"
    )


def _fill(text: str) -> str:
    return textwrap.fill(text, width=78, break_on_hyphens=False)


#: A command's handler: the parsed arguments and the parser, for usage errors; the exit status.
Handler = Callable[[argparse.Namespace, "_Parser"], int]


def _parser(secrets: Sequence[str], *, run_poll: Handler, log_json: bool = False) -> _Parser:
    """The ``smartcar-async`` parser; ``run_poll`` runs the ``poll`` command."""
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
        metavar="PATH|URL",
        help=(
            "keep poll state in this SQLite file (created owner-only if missing): refreshed "
            "tokens, parked reads and back-offs survive a restart; without it they last for "
            "the run (and refresh tokens are refused). A redis://host:port/db (or rediss://, "
            "unix://) URL shares it, and the polls, among every worker running this same "
            "command: see 'many workers' below"
        ),
    )
    polling.add_argument(
        "--fleet-name",
        metavar="NAME",
        help=(
            "with a Redis --state: the fleet's key namespace, the same in every worker of "
            f"one fleet (default {DEFAULT_FLEET_NAME!r})"
        ),
    )
    polling.add_argument(
        "--request-budget",
        metavar="CAPACITY/PER_MINUTE",
        help=(
            "with a Redis --state: the application's request bucket that every worker shares "
            "(a batch counts as one request); default 120/2, Smartcar's documented "
            "limit: ask Smartcar for yours"
        ),
    )
    polling.add_argument(
        "--lease",
        type=float,
        metavar="SECONDS",
        help=(
            "with a Redis --state: how long a worker holds the vehicles it claimed; renewed "
            "while their polls run, so it is how long a killed worker's vehicles wait for "
            f"another (default {DEFAULT_LEASE:g})"
        ),
    )
    polling.add_argument(
        "--monthly-budget",
        type=int,
        metavar="N",
        help=(
            "billed requests each vehicle may use per calendar month (UTC): its polls are "
            "spread to last the month, and none goes past N (counted in --state when given)"
        ),
    )
    polling.add_argument(
        "--make-limits",
        metavar="FILE|default",
        help=(
            "honour per-make limits (Smartcar's brand quirks: Hyundai and Kia 20 polls a day, "
            "GM every 30 minutes): 'default' for the built-in table, or a TOML file of "
            "[make] tables (min_interval, or max_polls per window seconds) on top of it"
        ),
    )
    polling.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="reuse a read answered less than SECONDS ago instead of sending it again",
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
    add_loop_argument(polling)
    add_metrics_arguments(poll)
    # Subparsers are built by argparse itself (as our class, without arguments).
    poll.secrets = parser.secrets
    poll.log_json = parser.log_json
    poll.set_defaults(handler=run_poll, command_parser=poll)
    return parser
