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

The package, in order: each module imports only modules listed before it.

- ``_defaults``: defaults, environment variable names, signal exit statuses;
- ``_logs``: stderr as text or JSON Lines, scrubbed of every token;
- ``_vehicles_file``: the vehicles file's format and parser;
- ``_metrics``: ``--metrics-port``, the run's Prometheus metrics;
- ``_summary``: the run's tally and its summary (rows, ``--summary-json``);
- ``_render``: progress and summary on stderr: rich, plain or JSON;
- ``_output``: the results' writer (JSON Lines or CSV) and the summary file;
- ``_args``: the parser, and usage errors that never show a token;
- ``_config``: from arguments to a run's configuration, judged by the library;
- ``_demo``: the built-in emulator's fleet (where ``smartcar_async.testing`` is imported);
- ``_sources``: the polled vehicles and the token sources that refresh them;
- ``_run``: the run itself, its clean stop on SIGINT/SIGTERM, and its outcome;
- ``_main``: ``main()``: parse, configure, run, report, exit status.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
