"""Library conventions: an optional extra, a quiet logger, the error tree, sync-only hooks."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import TOKEN, make_client

import smartcar_async as sc
from smartcar_async.testing import Emulator

ROOT = Path(sc.__file__).resolve().parents[1]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this tree's smartcar_async."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# --- the optional extra ------------------------------------------------------


def test_without_prometheus_client_the_core_imports_and_metrics_says_what_to_install() -> None:
    done = run_python(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if it were not installed
        import smartcar_async
        import smartcar_async.testing
        smartcar_async.Client()
        try:
            import smartcar_async.metrics
        except ImportError as exc:
            print(type(exc).__name__, exc.name)
            print(exc)
        else:
            raise SystemExit("smartcar_async.metrics imported without prometheus_client")
        """
    )
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split("\n")
    assert kind == "ModuleNotFoundError prometheus_client"
    assert "pip install 'smartcar-async[metrics]'" in message


def test_the_core_never_imports_prometheus_client() -> None:
    done = run_python(
        """
        import sys
        import smartcar_async, smartcar_async.testing
        from smartcar_async import _cli
        print("prometheus_client" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# --- logging -----------------------------------------------------------------


def test_the_package_logger_has_one_null_handler() -> None:
    handlers = logging.getLogger("smartcar_async").handlers
    assert [type(h) for h in handlers if type(h) is logging.NullHandler] == [logging.NullHandler]


def test_a_script_without_logging_config_prints_no_rate_limit_warning() -> None:
    # Before the NullHandler, Python's last-resort handler printed our warnings.
    done = run_python(
        """
        import logging
        import smartcar_async
        logging.getLogger("smartcar_async").warning("rate limited (VEHICLE): waiting 1.0s")
        print("done")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_configured_logging_still_sees_the_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="smartcar_async")
    logging.getLogger("smartcar_async").warning("rate limited")
    assert [r.getMessage() for r in caplog.records] == ["rate limited"]


# --- the error tree ----------------------------------------------------------


def test_a_timeout_is_a_connection_error() -> None:
    assert issubclass(sc.APITimeoutError, sc.APIConnectionError)
    assert isinstance(sc.APITimeoutError("Timed out"), sc.APIConnectionError)
    assert isinstance(sc.APITimeoutError("Timed out"), sc.TransportError)
    assert not issubclass(sc.APIConnectionError, sc.APITimeoutError)


async def test_a_deadline_is_caught_as_a_connection_error(emu: Emulator) -> None:
    emu.latency = 1.0
    async with make_client(emu.url, deadline=0.05, max_retries=0) as client:
        with pytest.raises(sc.APIConnectionError) as caught:
            await client.vehicle(emu.fleet.ids[0], access_token=TOKEN).odometer()
    assert type(caught.value) is sc.APITimeoutError


# --- hooks are never async ---------------------------------------------------


async def _async_hook(event: object) -> None:  # pragma: no cover - never called
    pass


class _AsyncCallable:
    async def __call__(self, event: object) -> None:  # pragma: no cover - never called
        pass


class _AsyncRetryHooks(sc.ClientHooks):
    async def on_retry(self, event: sc.RetryScheduled, /) -> None:  # type: ignore[override]
        pass  # pragma: no cover - never called


@pytest.mark.parametrize(
    "kwargs",
    [
        {"on_batch": [_async_hook]},
        {"on_response": [print, _async_hook]},
        {"on_response": [_AsyncCallable()]},
        {"hooks": _AsyncRetryHooks()},
        {"hooks": [_AsyncRetryHooks()]},
    ],
    ids=["on_batch", "on_response", "async-__call__", "ClientHooks", "ClientHooks-list"],
)
def test_an_async_hook_is_refused_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=r"async def.*never awaited"):
        sc.Client(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"on_batch": print},  # a hook instead of a list of hooks
        {"on_response": [42]},
        {"hooks": print},
        {"hooks": [object()]},
    ],
    ids=["bare-callable", "not-callable", "hooks-callable", "hooks-object"],
)
def test_a_hook_of_the_wrong_shape_is_refused_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        sc.Client(**kwargs)


async def test_a_hook_that_returns_a_coroutine_is_closed_and_logged(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A lambda around an async def passes the construction check; its coroutine
    # must not be left to warn "never awaited" (an error under this suite).
    caplog.set_level(logging.ERROR, logger="smartcar_async")
    async with make_client(emu.url, on_response=[lambda e: _async_hook(e)]) as client:
        odometer = await client.vehicle(emu.fleet.ids[0], access_token=TOKEN).odometer()
    assert isinstance(odometer, sc.Odometer)
    assert any("returned an awaitable" in r.getMessage() for r in caplog.records)


# --- ClientHooks: the events a plain hook list cannot see ------------------


class Recorder(sc.ClientHooks):
    def __init__(self) -> None:
        self.events: list[object] = []
        self.attached: list[sc.ClientStats] = []

    def attach(self, stats: Any, /) -> None:
        self.attached.append(stats())

    def on_retry(self, event: sc.RetryScheduled, /) -> None:
        self.events.append(event)

    def on_rate_limit(self, event: sc.RateLimited, /) -> None:
        self.events.append(event)

    def on_item_error(self, event: sc.ItemFailed, /) -> None:
        self.events.append(event)


async def test_client_hooks_see_retries_rate_limits_and_item_errors(emu: Emulator) -> None:
    recorder = Recorder()
    ev = emu.fleet.with_powertrain("EV")[0].id
    async with make_client(emu.url, hooks=recorder, max_retries=2) as client:
        assert recorder.attached == [sc.ClientStats()]
        car = client.vehicle(ev, access_token=TOKEN)
        emu.inject(
            type="RATE_LIMIT", code="VEHICLE", path="/odometer", in_batch=True, retry_after=0
        )
        fuel, *_ = await asyncio.gather(
            car.fuel(), car.odometer(), car.location(), return_exceptions=True
        )
        assert isinstance(fuel, sc.CompatibilityError)
        emu.inject(type="RATE_LIMIT", code="SMARTCAR_API", path="/vin", retry_after=0)
        await car.vin()
        emu.inject(status=500, type="SERVER", code="INTERNAL", path="/vin")
        await car.vin()
        stats = client.stats

    events = recorder.events
    item_errors = [e for e in events if isinstance(e, sc.ItemFailed)]
    assert sorted(item_errors, key=lambda e: e.path) == [
        sc.ItemFailed(ev, "/fuel", 501, "CompatibilityError"),
        sc.ItemFailed(ev, "/odometer", 429, "RateLimitError"),
    ]
    limits = [e for e in events if isinstance(e, sc.RateLimited)]
    assert [(e.vehicle_id, e.scope, e.retry_after) for e in limits] == [
        (ev, "vehicle", 0.0),
        (ev, "application", 0.0),
    ]
    retries = [e for e in events if isinstance(e, sc.RetryScheduled)]
    assert [(e.path, e.attempt, e.error, e.item) for e in retries] == [
        ("/odometer", 1, "RateLimitError", True),
        ("/vin", 1, "RateLimitError", False),
        ("/vin", 1, "ServerError", False),
    ]
    assert all(e.delay >= 0 for e in retries)
    assert (stats.retries, stats.rate_limited) == (len(retries), len(limits))


async def test_unwatched_hook_kinds_are_not_registered() -> None:
    class OnlyRetries(sc.ClientHooks):
        def on_retry(self, event: sc.RetryScheduled, /) -> None:
            pass

    hooks = client_hooks(sc.Client(hooks=OnlyRetries()))
    assert (len(hooks.on_retry), hooks.on_batch, hooks.on_response) == (1, (), ())
    assert (hooks.on_rate_limit, hooks.on_item_error) == ((), ())


def client_hooks(client: sc.Client) -> Any:
    return client._hooks


# --- the README's example ----------------------------------------------------


def test_the_readme_prometheus_snippet_runs_as_written() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in readme.split("```python\n")[1:]]
    snippets = [b for b in blocks if "PrometheusHooks" in b]
    assert len(snippets) == 1
    done = run_python(snippets[0])
    assert done.returncode == 0, done.stderr
    assert "smartcar_async_logical_reads_total 3.0" in done.stdout
    assert "smartcar_async_deduplicated_reads_total 1.0" in done.stdout
    assert 'smartcar_async_http_requests_total{kind="batch",outcome="ok"} 1.0' in done.stdout
