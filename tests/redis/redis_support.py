"""A real redis-server for the Redis tests: started per test session (or per test), killed after.

No fakes: each server is the Debian ``redis-server`` binary from PATH, persistence
off, listening on a free loopback port and on a unix socket in a temp dir. Without
the binary (or redis-py) the tests skip with a reason saying what to install;
under ``CI=true`` they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

START_TIMEOUT = 10.0
INSTALL = "apt-get install redis-server"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the Redis tests must run, not skip)", pytrace=False)
    pytest.skip(what)


def require_redis_py() -> None:
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("redis-py is not installed: pip install -e '.[dev]' (or '.[redis]')")


def require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        _missing(f"redis-server is not on PATH: {INSTALL}")
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process; ``stop()`` kills it and ``start()`` brings it back on the
    same port and socket (empty: nothing is persisted)."""

    def __init__(self, binary: str, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary
        # Options after the defaults win (e.g. "--appendonly", "yes" to survive a kill).
        self.extra_args = extra_args
        # Short: a unix socket path must fit in 108 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="scr-"))
        self.socket = self.directory / "redis.sock"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def unix_url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        assert self.process is None
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child's stdout
        with log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--unixsocket", str(self.socket),
                    "--unixsocketperm", "700",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--daemonize", "no",
                    "--loglevel", "warning",
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.answers():
                return
            time.sleep(0.02)
        output = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        pytest.fail(f"redis-server did not start within {START_TIMEOUT} s:\n{output}")

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(1.0)
                conn.connect(str(self.socket))
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command over a raw connection (RESP), for the tests' own checks."""
        request = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args
        )
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5.0)
            conn.connect(str(self.socket))
            conn.sendall(request)
            return conn.recv(1 << 16)

    def stop(self) -> None:
        """SIGKILL, as a crash: no shutdown save, connections cut."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def new_namespace() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


def freeze(state: object, seconds: float) -> None:
    """Freeze the Redis clock the scripts of ``state`` see (tests only), in epoch seconds."""
    state._frozen_us = round(seconds * 1_000_000)  # type: ignore[attr-defined]


#: A frozen time ahead of the real clock, so that keys expiring at frozen times
#: (PXAT, PEXPIREAT) are not deleted at once by Redis' real clock.
FROZEN = float(int(time.time()) + 10 * 365 * 86_400)
