"""The poll command with a Redis --state: many worker processes share one fleet by leases.

Real OS processes (``python -m smartcar_async poll``), a real redis-server, and an
emulator in this process. Each poll of a vehicle is one batch request (its reads
coalesce), so the emulator's own request log says how often each vehicle was polled.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from redis_support import (
    RedisServer,
    free_port,
    new_namespace,
    require_redis_py,
    require_redis_server,
)

require_redis_py()

import redis  # noqa: E402

import smartcar_async  # noqa: E402
from smartcar_async.testing import Emulator, RateLimits  # noqa: E402

ROOT = Path(smartcar_async.__file__).resolve().parents[1]
TOKEN = "tok-SECRET-redis-cli-5ca1ab1e"
GUARD = 90.0


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTCAR_ACCESS_TOKEN"}
    first = extra.pop("PREPEND", "")
    env["PYTHONPATH"] = f"{first}{os.pathsep}{ROOT}" if first else str(ROOT)
    env.update(extra)
    return env


class Workers:
    """Worker processes of one fleet, each with its own --output and stderr file."""

    def __init__(
        self, tmp: Path, common: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.tmp = tmp
        self.common = list(common)
        self.env = worker_env(**(env or {}))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *more: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.err").open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "smartcar_async", *self.common, *more,
                 "--output", str(self.output(name)), "--plain",
                 "--summary-json", str(self.tmp / f"{name}.summary.json")],
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=ROOT,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def output(self, name: str) -> Path:
        return self.tmp / f"{name}.jsonl"

    def results(self, name: str) -> list[dict[str, object]]:
        path = self.output(name)
        if not path.exists():
            return []
        # The last line may be half written by a worker still running (or killed).
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def stderr(self, name: str) -> str:
        return (self.tmp / f"{name}.err").read_text(errors="replace")

    def wait_for_results(self, name: str, count: int) -> None:
        deadline = time.monotonic() + GUARD
        while len(self.results(name)) < count:
            assert time.monotonic() < deadline, f"{name} got no results: {self.stderr(name)}"
            assert self.processes[name].poll() is None, self.stderr(name)[-3000:]
            time.sleep(0.02)

    def finish(self, name: str) -> int:
        try:
            return self.processes[name].wait(timeout=GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish: {self.stderr(name)[-3000:]}")

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    made: list[Workers] = []
    yield made
    for group in made:
        group.kill_all()


def vehicles_file(tmp: Path, ids: Sequence[str]) -> Path:
    path = tmp / "vehicles.csv"
    path.write_text("".join(f"{vid},{TOKEN}\n" for vid in ids))
    return path


def polls_per_vehicle(emu: Emulator) -> collections.Counter[str]:
    return collections.Counter(
        r.path.split("/")[3] for r in emu.requests if r.path.endswith("/batch")
    )


def leases_of(server: RedisServer, namespace: str, pid: int) -> set[str]:
    """The vehicles whose leases the worker with this process id holds now."""
    client = redis.Redis(unix_socket_path=str(server.socket))
    try:
        info = client.hgetall(f"smartcar_async:{namespace}:leases:info")
    finally:
        client.close()
    return {
        _text(vid)
        for vid, held in info.items()
        if _text(held).split(" ", 1)[1].split(":")[-2] == str(pid)
    }


def poll_args(emu: Emulator, path: Path, url: str, namespace: str, *more: str) -> list[str]:
    return [
        "poll", "--origin", emu.url, "--vehicles-file", str(path), "--state", url,
        "--fleet-name", namespace, "--reads", "odometer,location",
        # The emulator's bucket is unlimited; the shared one must not hold the test back.
        "--request-budget", "1000000/1000000", *more,
    ]  # fmt: skip


def test_four_workers_share_2000_vehicles_and_survive_a_kill_9(
    redis_server: RedisServer, tmp_path: Path, workers: list[Workers]
) -> None:
    namespace = new_namespace()
    with Emulator(vehicles=2000, seed=11, max_recorded=50_000).in_thread() as emu:
        ids = list(emu.fleet.ids)
        args = poll_args(
            emu, vehicles_file(tmp_path, ids), redis_server.url, namespace,
            "--rounds", "3", "--interval", "1", "--lease", "3",
        )  # fmt: skip
        group = Workers(tmp_path, args)
        workers.append(group)
        for n in range(4):
            group.start(f"w{n}")
        # w0 is killed mid-round, holding leases: they expire and the others take them.
        group.wait_for_results("w0", 300)
        victim = group.processes["w0"]
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=10) == -signal.SIGKILL
        leased = leases_of(redis_server, namespace, victim.pid)
        assert leased, "w0 held no lease when it was killed"
        for name in ("w1", "w2", "w3"):
            assert group.finish(name) == 0, group.stderr(name)[-3000:]
        counts = polls_per_vehicle(emu)
    # Every vehicle polled in every round (three times); twice in one round (a fourth
    # poll) only where the killed worker held the lease.
    assert set(counts) == set(ids)
    assert all(counts[vid] >= 3 for vid in ids)
    repeated = {vid for vid in ids if counts[vid] > 3}
    assert repeated <= leased
    assert all(counts[vid] <= 4 for vid in leased)
    # Every (vehicle, round) reached some worker's --output (w0's last lines may be lost).
    delivered = {
        (row["vehicle_id"], row["round"])
        for name in ("w0", "w1", "w2", "w3")
        for row in group.results(name)
    }
    everything = {(vid, n) for vid in ids for n in (1, 2, 3)}
    assert delivered == everything
    for name in ("w1", "w2", "w3"):
        summary = json.loads((tmp_path / f"{name}.summary.json").read_text())
        assert summary["exit_status"] == 0
        assert TOKEN not in group.stderr(name)


# The application bucket every worker shares, and the emulator's: Smartcar's shape (a
# burst, then a steady refill), scaled to seconds. The emulator refills a little faster
# than the workers pace: a request granted on time that arrives a few ms before another
# worker's earlier one must not 429 (on Smartcar the budget to ask for is likewise a
# little below the real one).
BUDGET = (5, 60)  # capacity, per minute: 1 request a second (a batch is one)
EMULATOR_REFILL = 90


def refresh_fleet(emu: Emulator, tmp: Path, per_user: int) -> tuple[Path, list[str]]:
    """A vehicles file with token pairs, ``per_user`` vehicles to a user; the refresh tokens."""
    path = tmp / "fleet.csv"
    ids = list(emu.fleet.ids)
    tokens = []
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["vehicle_id", "access_token", "refresh_token", "expires_at"])
        for start in range(0, len(ids), per_user):
            pair = emu.issue_tokens(ids[start : start + per_user])
            tokens.append(pair.refresh_token)
            expires = pair.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            for vid in ids[start : start + per_user]:
                out.writerow([vid, pair.access_token, pair.refresh_token, expires])
    return path, tokens


def refresh_grants(emu: Emulator) -> list[str]:
    """The refresh tokens presented at the token endpoint, in order (refused ones too)."""
    return [
        r.body["refresh_token"]
        for r in emu.requests
        if r.path == "/oauth/token"
        and isinstance(r.body, dict)
        and r.body.get("grant_type") == "refresh_token"
    ]


def kill_outside_a_refresh(
    server: RedisServer, namespace: str, process: subprocess.Popen[bytes]
) -> None:
    """SIGKILL ``process`` at a moment it holds no refresh lock.

    A worker killed between spending a refresh token and storing the new pair loses
    that pair (Smartcar has invalidated the old one: the user must reconnect); no
    store can save it, so this test does not aim the kill into that window. SIGSTOP
    first: a stopped worker takes no lock, so "no lock held" stays true until the kill.
    """
    client = redis.Redis(unix_socket_path=str(server.socket))
    try:
        deadline = time.monotonic() + GUARD
        while True:
            process.send_signal(signal.SIGSTOP)
            if not client.keys(f"smartcar_async:{namespace}:lock:refresh:*"):
                break
            process.send_signal(signal.SIGCONT)
            assert time.monotonic() < deadline, "a refresh lock was always held"
            time.sleep(0.05)
    finally:
        client.close()
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL


@pytest.mark.timeout(120)  # about 25 s: the budget sets the pace
def test_four_workers_spend_one_budget_and_each_refresh_token_once_through_a_kill_9(
    redis_server: RedisServer, tmp_path: Path, workers: list[Workers]
) -> None:
    capacity, per_minute = BUDGET
    limits = RateLimits(app_capacity=capacity, app_refill_per_minute=EMULATOR_REFILL)
    namespace = new_namespace()
    # Tokens live 3 s and a refresh token works exactly once (token_ttl), so a refresh
    # token spent twice shows as a 400 invalid_grant; demand (10 vehicles, a 2-path batch
    # each every 0.5 s: 20 requests a second) is 20 times the budget.
    with Emulator(
        vehicles=10, seed=14, token_ttl=3, rate_limits=limits, max_recorded=50_000
    ).in_thread() as emu:
        emu.register_client("budget-client", "budget-SECRET-5ec")
        ids = list(emu.fleet.ids)
        listing, file_tokens = refresh_fleet(emu, tmp_path, per_user=3)
        args = [
            "poll", "--origin", emu.url, "--auth-origin", emu.url, "--vehicles-file",
            str(listing), "--state", redis_server.url, "--fleet-name", namespace,
            "--reads", "odometer,location", "--request-budget", f"{capacity}/{per_minute}",
            "--rounds", "2", "--interval", "0.5", "--jitter", "0", "--lease", "2",
            # At most 3 vehicles a worker: every worker gets a share of the 10.
            "--concurrency", "3",
        ]  # fmt: skip
        credentials = {
            "SMARTCAR_CLIENT_ID": "budget-client",
            "SMARTCAR_CLIENT_SECRET": "budget-SECRET-5ec",
        }
        group = Workers(tmp_path, args, env=credentials)
        workers.append(group)
        started = time.monotonic()
        for n in range(4):
            group.start(f"w{n}")
        # The requests the emulator received (each a batch: one token of the bucket),
        # sampled: when they started and stopped arriving.
        samples: list[tuple[float, int]] = []

        def sample() -> None:
            sent = sum(polls_per_vehicle(emu).values())
            if not samples or sent != samples[-1][1]:
                samples.append((time.monotonic(), sent))

        while sum(polls_per_vehicle(emu).values()) < 2 * capacity:  # the burst, then refill
            assert time.monotonic() - started < GUARD, group.stderr("w0")[-3000:]
            sample()
            time.sleep(0.02)
        kill_outside_a_refresh(redis_server, namespace, group.processes["w0"])
        for name in ("w1", "w2", "w3"):
            while group.processes[name].poll() is None:
                assert time.monotonic() - started < GUARD, group.stderr(name)[-3000:]
                sample()
                time.sleep(0.02)
            assert group.finish(name) == 0, group.stderr(name)[-3000:]
        sample()
        errors = emu.error_responses
        grants = refresh_grants(emu)
        counts = polls_per_vehicle(emu)

    # Every vehicle polled in each of its 2 rounds (a repeat only after the kill).
    assert set(counts) == set(ids)
    assert all(counts[vid] >= 2 for vid in ids)
    # The budget: no 429 of any kind, no refused token, no 401.
    assert errors == {}, errors
    # ... and spent nearly whole: requests sent while they were arriving are close to
    # what the bucket allows over that time (a burst, then the refill).
    first_at = next(at for at, sent in samples if sent)
    last_at, delivered = samples[-1]
    allowed = capacity + per_minute / 60 * (last_at - first_at)
    assert delivered <= capacity + EMULATOR_REFILL / 60 * (last_at - first_at)
    assert delivered >= 0.8 * allowed, (delivered, allowed)
    # Tokens: several refreshes per user (3 s tokens), each refresh token spent once.
    assert len(grants) >= 2 * len(file_tokens)
    assert len(set(grants)) == len(grants), "a refresh token was spent twice"
    assert set(file_tokens) <= set(grants)
    for name in ("w1", "w2", "w3"):
        assert group.results(name), f"{name} polled nothing"
        log = group.stderr(name)
        assert "budget-SECRET-5ec" not in log
        assert not any(token in log for token in grants)


def test_workers_carry_on_through_a_redis_restart(tmp_path: Path, workers: list[Workers]) -> None:
    require_redis_py()
    # Persistence on, as the README asks of a production Redis: the schedule survives.
    server = RedisServer(
        require_redis_server(), extra_args=("--appendonly", "yes", "--appendfsync", "always")
    )
    server.start()
    try:
        namespace = new_namespace()
        with Emulator(vehicles=300, seed=12, max_recorded=10_000).in_thread() as emu:
            ids = list(emu.fleet.ids)
            args = poll_args(
                emu, vehicles_file(tmp_path, ids), server.url, namespace,
                "--rounds", "3", "--interval", "1", "--lease", "10",
            )  # fmt: skip
            group = Workers(tmp_path, args)
            workers.append(group)
            group.start("a")
            group.start("b")
            group.wait_for_results("a", 150)
            server.stop()  # SIGKILL: connections cut mid-run
            time.sleep(1.5)
            server.start()
            for name in ("a", "b"):
                assert group.finish(name) == 0, group.stderr(name)[-3000:]
            counts = polls_per_vehicle(emu)
        assert counts == dict.fromkeys(ids, 3)
        logs = group.stderr("a") + group.stderr("b")
        assert "unreachable" in logs
        assert "answers again" in logs
    finally:
        server.cleanup()


def test_workers_join_late_and_leave_early(
    redis_server: RedisServer, tmp_path: Path, workers: list[Workers]
) -> None:
    namespace = new_namespace()
    with Emulator(vehicles=300, seed=13, max_recorded=10_000, latency=0.01).in_thread() as emu:
        ids = list(emu.fleet.ids)
        args = poll_args(
            emu, vehicles_file(tmp_path, ids), redis_server.url, namespace,
            "--rounds", "4", "--interval", "2.5", "--lease", "10", "--concurrency", "20",
        )  # fmt: skip
        group = Workers(tmp_path, args)
        workers.append(group)
        group.start("first")
        group.wait_for_results("first", 100)
        group.start("leaver")
        group.wait_for_results("leaver", 50)
        group.start("late")
        group.wait_for_results("late", 20)
        group.processes["leaver"].send_signal(signal.SIGTERM)  # a clean stop: leases given back
        assert group.finish("leaver") == 128 + signal.SIGTERM, group.stderr("leaver")[-3000:]
        for name in ("first", "late"):
            assert group.finish(name) == 0, group.stderr(name)[-3000:]
        counts = polls_per_vehicle(emu)
    assert group.results("late"), "the late worker took part"
    everything = {(vid, n) for vid in ids for n in (1, 2, 3, 4)}
    delivered = [
        (row["vehicle_id"], row["round"])
        for name in ("first", "leaver", "late")
        for row in group.results(name)
    ]
    assert set(delivered) == everything
    # The leaver's polls in flight when it stopped may have reached the API (never more
    # than its --concurrency); nothing else was polled twice.
    assert all(counts[vid] in (4, 5) for vid in ids)
    assert sum(counts[vid] == 5 for vid in ids) <= 20


def test_unreachable_redis_at_start_exits_1(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    path = vehicles_file(tmp_path, ["v1", "v2"])
    done = subprocess.run(
        [sys.executable, "-m", "smartcar_async", "poll", "--origin", "http://127.0.0.1:9",
         "--vehicles-file", str(path), "--state", url, "--output", str(tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=GUARD, env=worker_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "unreachable" in done.stderr
    assert url in done.stderr
    assert TOKEN not in done.stderr


@pytest.mark.parametrize(
    ("more", "expected"),
    [
        (["--state", "redis://127.0.0.1:1/0", "--shard", "0/2"], "--shard"),
        (["--state", "redis://127.0.0.1:1/0", "--fleet-name", "no spaces"], "--fleet-name"),
        (["--state", "redis://127.0.0.1:1/0", "--lease", "0"], "--lease"),
        (["--fleet-name", "x"], "--fleet-name, --lease and --request-budget need a Redis"),
        (["--state", "redis://127.0.0.1:1/0", "--request-budget", "120"], "--request-budget"),
        (["--state", "redis://127.0.0.1:1/0", "--request-budget", "0/2"], "--request-budget"),
    ],
)
def test_usage_errors(tmp_path: Path, more: list[str], expected: str) -> None:
    path = vehicles_file(tmp_path, ["v1"])
    done = subprocess.run(
        [sys.executable, "-m", "smartcar_async", "poll", "--origin", "http://127.0.0.1:9",
         "--vehicles-file", str(path), *more],
        capture_output=True, text=True, timeout=GUARD, env=worker_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr


def test_a_missing_redis_package_is_a_usage_error(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('redis is not installed')\n")
    path = vehicles_file(tmp_path, ["v1"])
    done = subprocess.run(
        [sys.executable, "-m", "smartcar_async", "poll", "--origin", "http://127.0.0.1:9",
         "--vehicles-file", str(path), "--state", "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=GUARD, cwd=ROOT, check=False,
        env=worker_env(PREPEND=str(tmp_path / "shadow")),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'smartcar-async[redis]'" in done.stderr


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
