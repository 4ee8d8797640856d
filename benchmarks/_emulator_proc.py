"""The benchmark's emulator process: one `Emulator`, steered over stdin.

The harness starts ``python benchmarks/_emulator_proc.py --vehicles N --seed S``
and talks to it line by line, so every contender of every scenario hits the
SAME server process with the same settings, and the client's own cost is all
that is measured in the harness process. Commands (one per line, one reply
line each):

``fleet``                  -> JSON list of ``[vehicle_id, powertrain]``
``latency SECONDS``        -> ``ok``: delay added to every response
``ratelimit CAP REFILL``   -> ``ok``: application bucket (tokens, tokens per minute)
``ratelimit off``          -> ``ok``
``reset``                  -> ``ok``: refill the bucket, empty the windows
``stats``                  -> ``REQUESTS CPU_SECONDS TOKENS``: HTTP requests served,
                              this process's CPU time, and application-bucket tokens
                              spent (accepted requests' cost), all since start
``errors``                 -> JSON object: error responses by status and code
                              (``Emulator.error_responses``), since start or ``clear``
``clear``                  -> ``ok``: empty that tally
``quit``                   -> ``ok``, then exit

The CLI (``python -m smartcar_async.testing``) has no flag for rate limits and
no way to change settings without a restart, hence this small driver.
Requests are counted by wrapping the server's single request handler, and
bucket tokens by wrapping the rate limiter's ``take_app``; if those private
names ever move, ``stats`` reports ``-1`` and the harness falls back to the
clients' own counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from smartcar_async.testing import Emulator, RateLimits

_served = 0
_tokens = 0


def _install_token_counter() -> bool:
    try:
        from smartcar_async.testing import _ratelimit
    except ImportError:  # pragma: no cover - layout changed
        return False
    original: Callable[..., Any] | None = getattr(_ratelimit.RateLimiter, "take_app", None)
    if original is None:  # pragma: no cover - layout changed
        return False
    take_app = original

    def counted(self: Any, limits: Any, cost: int) -> Any:
        global _tokens
        refused = take_app(self, limits, cost)
        if refused is None and getattr(limits, "app_capacity", None) is not None:
            _tokens += cost
        return refused

    _ratelimit.RateLimiter.take_app = counted  # type: ignore[method-assign]
    return True


def _install_request_counter() -> bool:
    try:
        from smartcar_async.testing import _server
    except ImportError:  # pragma: no cover - layout changed
        return False
    handle: Callable[[Any, Any], Awaitable[Any]] | None = getattr(_server.Server, "_handle", None)
    if handle is None:  # pragma: no cover - layout changed
        return False
    original = handle

    async def counted(self: Any, request: Any) -> Any:
        global _served
        _served += 1  # the server thread is the only writer
        return await original(self, request)

    _server.Server._handle = counted  # type: ignore[method-assign]
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description="Emulator steered over stdin (benchmarks).")
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    counting = _install_request_counter()
    counting_tokens = _install_token_counter()
    emu = Emulator(
        vehicles=args.vehicles,
        seed=args.seed,
        latency=args.latency,
        max_recorded=0,  # no request log: it would cost the server memory and time
    )
    with emu.in_thread():
        print(f"ready {emu.url}", flush=True)
        for raw in sys.stdin:
            words = raw.split()
            if not words:
                continue
            cmd = words[0]
            if cmd == "fleet":
                reply = json.dumps([[v.id, v.powertrain] for v in emu.fleet])
            elif cmd == "latency":
                emu.latency = float(words[1])
                reply = "ok"
            elif cmd == "ratelimit":
                if words[1] == "off":
                    emu.rate_limits = RateLimits()
                else:
                    emu.rate_limits = RateLimits(
                        app_capacity=int(words[1]), app_refill_per_minute=float(words[2])
                    )
                reply = "ok"
            elif cmd == "reset":
                emu.reset_rate_limits()
                reply = "ok"
            elif cmd == "stats":
                reply = (
                    f"{_served if counting else -1} {time.process_time():.6f} "
                    f"{_tokens if counting_tokens else -1}"
                )
            elif cmd == "errors":
                reply = json.dumps(emu.error_responses)
            elif cmd == "clear":
                emu.clear_requests()
                reply = "ok"
            elif cmd == "quit":
                print("ok", flush=True)
                break
            else:
                reply = f"error unknown command {cmd!r}"
            print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
