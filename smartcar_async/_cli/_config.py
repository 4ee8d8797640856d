"""From parsed arguments to a run's configuration, or a usage error (exit 2) before anything runs.

The library judges what it takes: the poller's own constructor checks the
reads, the schedule and the concurrency, ``_validate`` and ``_origins`` the
rest. Their ``ValueError`` or ``TypeError`` becomes a usage error naming the
flag; this module only checks what is the command's own (the vehicles, the
files it will write, and what 0 means for ``--rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import attrs

from .._account._api import client_credentials
from .._names import ReadName
from .._options import RequestBudget
from .._origins import DEFAULT_AUTH_ORIGIN, api_origin, check_origin, token_url
from .._poller import FleetPoller
from .._quota import MakeLimit, check_count
from .._validate import check_int, check_interval
from ._defaults import (
    API_INTERVAL,
    API_ROUNDS,
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    DEFAULT_FLEET_NAME,
    DEFAULT_LEASE,
    DEFAULT_RECHECK,
    DEMO_ALSO,
    DEMO_INTERVAL,
    DEMO_READS,
    DEMO_ROUNDS,
    REDIS_SCHEMES,
    TOKEN_ENV,
)
from ._make_limits import MakeLimitsError, read_make_limits
from ._metrics import check_metrics_arguments
from ._vehicles_file import (
    VehicleRow,
    VehiclesFileError,
    read_vehicles_file,
    secrets_of,
    vehicle_id_problem,
)

if TYPE_CHECKING:
    from ._args import _Parser

#: The flag of each poller argument, to name in usage errors.
_FLAGS: Final = {
    "interval": "--interval",
    "jitter": "--jitter",
    "rounds": "--rounds",
    "max_concurrent_vehicles": "--concurrency",
    "timeout": "--timeout",
    "recheck": "--recheck",
    "lease": "--lease",
    "namespace": "--fleet-name",
}
#: The argument a library message begins with ("interval must be ...").
_SUBJECT: Final = re.compile(r"(?P<name>[a-z_]+)(?P<rest>.*)", re.DOTALL)


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
    #: With a Redis --state: the fleet's namespace and the lease of claimed vehicles.
    fleet_name: str = DEFAULT_FLEET_NAME
    lease: float = DEFAULT_LEASE
    #: With a Redis --state: the shared application bucket (None: Smartcar's default).
    budget: RequestBudget | None = None
    #: Set when the vehicles file carries refresh tokens.
    refreshing: _Refreshing | None = None
    #: --monthly-budget, --make-limits (None: off; {} the built-in table) and --max-age.
    monthly_budget: int | None = None
    make_limits: Mapping[str, MakeLimit | None] | None = None
    max_age: float | None = None

    def poll_options(self) -> dict[str, Any]:
        """The keyword arguments of each job's :class:`FleetPoller`, but for reads and vehicles."""
        return {
            "interval": self.interval,
            "jitter": self.jitter,
            "rounds": self.rounds,
            "max_concurrent_vehicles": self.concurrency,
            "timeout": self.timeout,
            "shard": self.shard,
            "recheck": self.recheck,
            "monthly_budget": self.monthly_budget,
            "make_limits": False if self.make_limits is None else self.make_limits,
        }

    @property
    def shared(self) -> bool:
        """Whether --state is a Redis URL: state and polls shared by many workers."""
        return is_redis_url(self.state)


def is_redis_url(state: str | None) -> bool:
    return state is not None and state.startswith(REDIS_SCHEMES)


def _config(args: argparse.Namespace, parser: _Parser) -> _Config:
    demo = not (args.token or args.vehicle or args.vehicles_file or args.origin)
    vehicles = [] if demo else _vehicles(args, parser)
    try:
        cfg = _checked(_settings(args, demo, vehicles))
        if demo:
            check_int("--fleet-size", args.fleet_size, minimum=1)
        if args.max_retries is not None:
            check_int("--max-retries", args.max_retries, minimum=0)
    except (ValueError, TypeError) as exc:
        parser.error(_usage(exc))
    if not demo:
        _check_origin(args.origin, parser)
    if cfg.shared:
        cfg = _check_shared(cfg, args, parser)
    elif args.fleet_name is not None or args.lease is not None or args.request_budget is not None:
        parser.error(
            "--fleet-name, --lease and --request-budget need a Redis --state (redis://host:port/db)"
        )
    state_file = None if cfg.shared else args.state
    for path, option in ((args.summary_json, "--summary-json"), (state_file, "--state")):
        if path is not None:
            _check_writable(path, option, parser)
    cfg = _spending(cfg, args, parser)
    metrics_problem = check_metrics_arguments(args)
    if metrics_problem is not None:
        parser.error(metrics_problem)
    return attrs.evolve(cfg, refreshing=_refreshing(args, vehicles, parser))


def _settings(args: argparse.Namespace, demo: bool, vehicles: Sequence[VehicleRow]) -> _Config:
    """The flags with their defaults filled in, not yet judged."""
    rounds = args.rounds if args.rounds is not None else (DEMO_ROUNDS if demo else API_ROUNDS)
    if rounds < 0:
        # The command's own meaning of 0; the poller says None for it.
        raise ValueError("--rounds must be >= 0 (0 polls until interrupted)")
    interval = args.interval
    if interval is None:
        interval = DEMO_INTERVAL if demo else API_INTERVAL
    also = DEMO_ALSO if demo else ()
    return _Config(
        demo=demo,
        vehicles=tuple(vehicles),
        origin=args.origin,
        fleet_size=args.fleet_size,
        seed=args.seed,
        reads=_names(args.reads) if args.reads is not None else DEMO_READS,
        also=_names(args.also) if args.also is not None else also,
        rounds=rounds or None,
        interval=interval,
        jitter=args.jitter if args.jitter is not None else (0.1 if rounds != 1 else 0.0),
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        units=args.units,
        shard=_shard(args.shard) if args.shard else None,
        recheck=args.recheck,
        state=args.state,
    )


def _check_shared(cfg: _Config, args: argparse.Namespace, parser: _Parser) -> _Config:
    """A Redis --state: the redis package, the URL and the namespace; what cannot go with it."""
    try:
        import redis  # noqa: F401
    except ImportError:
        parser.error(
            "--state redis://... needs the redis package: pip install 'smartcar-async[redis]'"
        )
    if cfg.shard is not None:
        parser.error("--shard cannot be used with a Redis --state: workers share out the fleet")
    if args.also:
        parser.error("--also cannot be used with a Redis --state: only the main job is shared")
    cfg = attrs.evolve(
        cfg,
        fleet_name=DEFAULT_FLEET_NAME if args.fleet_name is None else args.fleet_name,
        lease=DEFAULT_LEASE if args.lease is None else args.lease,
        budget=None if args.request_budget is None else _budget(args.request_budget, parser),
        # The demo's second job would poll every vehicle in every worker.
        also=(),
    )
    try:
        check_interval("lease", cfg.lease)
        asyncio.run(_open_nothing(cfg))
    except (ValueError, TypeError) as exc:
        message = _usage(exc)
        parser.error(message if message.startswith("--") else f"--state: {message}")
    return cfg


def _spending(cfg: _Config, args: argparse.Namespace, parser: _Parser) -> _Config:
    """--monthly-budget, --make-limits and --max-age, judged."""
    try:
        if args.monthly_budget is not None:
            check_count("--monthly-budget", args.monthly_budget, minimum=1)
        if args.max_age is not None:
            check_interval("--max-age", args.max_age)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    for flag, given in (
        ("--monthly-budget", args.monthly_budget),
        ("--make-limits", args.make_limits),
    ):
        if given is not None and cfg.also:
            parser.error(
                f"{flag} cannot be used with --also: a vehicle's budget and limits are kept by "
                "one job (with the emulator, add --also '')"
            )
    limits: Mapping[str, MakeLimit | None] | None = None
    if args.make_limits == "default":
        limits = {}
    elif args.make_limits is not None:
        try:
            limits = read_make_limits(args.make_limits)
        except MakeLimitsError as exc:
            parser.error(f"--make-limits {exc}")
    return attrs.evolve(
        cfg, monthly_budget=args.monthly_budget, make_limits=limits, max_age=args.max_age
    )


def _budget(value: str, parser: _Parser) -> RequestBudget:
    capacity, slash, per_minute = value.partition("/")
    try:
        if not slash:
            raise ValueError("expected CAPACITY/PER_MINUTE, e.g. 120/2")
        return RequestBudget(capacity=int(capacity), refill_per_minute=float(per_minute))
    except (ValueError, TypeError) as exc:
        parser.error(f"--request-budget: {exc}")


async def _open_nothing(cfg: _Config) -> None:
    """Build the store (no I/O) for its checks of the URL and the namespace."""
    from ..redis import RedisState

    assert cfg.state is not None
    await RedisState(cfg.state, namespace=cfg.fleet_name, budget=cfg.budget).aclose()


def _checked(cfg: _Config) -> _Config:
    """``cfg`` as each job's poller takes it (reads deduplicated); its errors as they come.

    The pollers are built once, unused, for their checks alone: their
    constructor wants a running event loop, and a throwaway one is enough.
    """

    async def build() -> tuple[tuple[str, ...], tuple[str, ...]]:
        options = cfg.poll_options()
        # Names from the command line: judging them is the poller's job.
        reads = FleetPoller(reads=cast("tuple[ReadName, ...]", cfg.reads), **options).reads
        if not cfg.also:
            return reads, ()
        return reads, FleetPoller(reads=cast("tuple[ReadName, ...]", cfg.also), **options).reads

    reads, also = asyncio.run(build())
    return attrs.evolve(cfg, reads=reads, also=also)


def _usage(exc: ValueError | TypeError) -> str:
    """A library error about an argument, as one about its flag."""
    text = str(exc)
    found = _SUBJECT.fullmatch(text)
    if found is None:
        return text
    if found["name"] == "shard":
        return "--shard I/N needs 0 <= I < N"
    flag = _FLAGS.get(found["name"])
    return text if flag is None else flag + found["rest"]


def _check_origin(origin: str | None, parser: _Parser) -> None:
    try:
        if origin is not None:
            check_origin("--origin", origin)
        else:
            api_origin()
    except ValueError as exc:
        hint = "" if origin is not None else " (from $SMARTCAR_API_ORIGIN)"
        parser.error(f"{exc}{hint}, e.g. https://api.smartcar.com")


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


def _shard(value: str) -> tuple[int, int]:
    """``I/N`` as a pair; the poller judges its range."""
    index, _, count = value.partition("/")
    try:
        return (int(index), int(count))
    except ValueError:
        raise ValueError("--shard must look like I/N, e.g. 0/4") from None


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
