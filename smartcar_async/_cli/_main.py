"""The ``smartcar-async`` command: parse, configure, run, report; the exit status.

Every problem with the arguments is a usage error (exit 2) before anything
runs. Past that, logging is installed (scrubbed of every token the command
knows), the metrics server starts, the results' writer opens, and the run
goes (``_run``); its outcome decides the exit status, whether it finished,
failed or was stopped by a signal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import _loops
from .._exceptions import SmartcarError
from ._args import Handler, _log_json_in, _Parser, _parser, _secrets_in
from ._config import _Config, _config
from ._defaults import SIGNAL_EXITS
from ._logs import CLI_LOGGER, Scrubber, install_logging
from ._metrics import MetricsUnavailable, RunMetrics, start_run_metrics
from ._output import _write_json, _Writer, _writer
from ._render import make_renderer
from ._run import _Outcome, _run
from ._sources import _warn_expired

__all__ = ["main"]


def _poll_command(args: argparse.Namespace, parser: _Parser) -> int:
    try:
        loop = _loops.loop_factory(args.loop)
    except ValueError as exc:
        parser.error(str(exc))
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
            return _poll_and_report(cfg, args, writer, metrics, loop)
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
    cfg: _Config,
    args: argparse.Namespace,
    writer: _Writer | None,
    metrics: RunMetrics,
    loop: _loops.LoopFactory | None,
) -> int:
    renderer = make_renderer(sys.stderr, plain=args.plain, log_json=args.log_format == "json")
    outcome = _Outcome(metrics=metrics)
    try:
        _loops.run(_run(cfg, renderer, writer, outcome), loop)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``smartcar-async`` command line; return its exit status.

    Added in 0.1.0.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_secrets_in(words), run_poll=_poll_command, log_json=_log_json_in(words))
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    handler: Handler = args.handler
    # Errors found after parsing show the subcommand's usage, as argparse's own do.
    return handler(args, args.command_parser)
