"""The optional extra: the core never imports redis, and the module says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import smartcar_async as sc

ROOT = Path(sc.__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_core_never_imports_redis() -> None:
    done = run_python(
        """
        import sys
        import smartcar_async, smartcar_async.testing
        from smartcar_async import _cli
        print("redis" in sys.modules, "smartcar_async.redis" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_without_redis_py_the_module_says_what_to_install() -> None:
    done = run_python(
        """
        import sys
        sys.modules["redis"] = None  # as if it were not installed
        import smartcar_async
        try:
            import smartcar_async.redis
        except ImportError as exc:
            print(type(exc).__name__, exc.name)
            print(exc)
        else:
            raise SystemExit("smartcar_async.redis imported without redis")
        """
    )
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split("\n")
    assert kind == "ModuleNotFoundError redis"
    assert "pip install 'smartcar-async[redis]'" in message


def test_the_unavailable_error_is_public_and_a_state_error() -> None:
    assert issubclass(sc.StateUnavailableError, sc.StateError)
    assert "StateUnavailableError" in sc.__all__
