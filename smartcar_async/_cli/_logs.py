"""The command's log lines on stderr: text for people, JSON Lines for log collectors.

Records of the library (logger ``smartcar_async``) and of the command itself
(``smartcar_async.cli``) go through one handler. ``--log-format json`` writes
one JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``event`` (a stable name such as ``retry``, ``rate_limited`` or
``round_finished``; ``log`` for a record that names none), ``message``, then
the record's own fields (``vehicle_id``, ``request_id``, ``attempt``...) when
it has them. Every string is scrubbed of the secrets the command knows (its
tokens, from the flags, the environment and the vehicles file) before it is
written, whatever the format.

Verbosity: without ``-v`` the library's warnings and errors (rate limits
among them); ``-v`` adds its info records (retries, token refreshes);
``-vv`` its debug records (every batch, every failed exchange).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

__all__ = [
    "CLI_LOGGER",
    "LogFormat",
    "Scrubber",
    "install_logging",
    "json_line",
]

LogFormat = Literal["text", "json"]

#: The command's own records; a child of the library's logger, so one handler serves both.
CLI_LOGGER: Final = "smartcar_async.cli"
LIBRARY_LOGGER: Final = "smartcar_async"
REDACTED: Final = "<redacted>"
#: Shorter values are not scrubbed: replacing a word of a few letters would
#: mangle every line that happens to contain it, and real tokens are long.
MIN_SECRET_LENGTH: Final = 8
_LEVELS: Final = (logging.WARNING, logging.INFO, logging.DEBUG)
# What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class Scrubber:
    """Replaces each known secret (as written, and as JSON would escape it) in text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms.add(secret)
                forms.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def value(self, value: Any) -> Any:
        """``value`` made JSON-ready (str() for the unknown), with every string scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)  # JSON has no NaN or infinity
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {self(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return self(str(value))


def json_line(
    scrub: Scrubber,
    *,
    level: str,
    logger: str,
    event: str,
    message: str,
    created: float | None = None,
    fields: dict[str, Any] | None = None,
) -> str:
    """One JSON log line (no newline): the shape every ``--log-format json`` line has."""
    when = (
        dt.datetime.now(dt.UTC) if created is None else dt.datetime.fromtimestamp(created, dt.UTC)
    )
    data: dict[str, Any] = {
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": logger,
        "event": event,
        "message": message,
    }
    for key, value in (fields or {}).items():
        data.setdefault(key, value)
    return json.dumps(scrub.value(data), separators=(",", ":"), allow_nan=False, default=str)


class JsonFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__()
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "event"}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(
            self._scrub,
            level=record.levelname,
            logger=record.name,
            event=str(getattr(record, "event", None) or "log"),
            message=record.getMessage(),
            created=record.created,
            fields=fields,
        )


class TextFormatter(logging.Formatter):
    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self._scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        if record.name == CLI_LOGGER and record.levelno >= logging.WARNING:
            # The command's own problems read like argparse's: "prog: error: ...".
            text = f"smartcar-async: {record.levelname.lower()}: {record.getMessage()}"
            return self._scrub(text)
        return self._scrub(super().format(record))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, so rich can lift lines above its bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def install_logging(fmt: LogFormat, verbosity: int, scrub: Scrubber) -> Callable[[], None]:
    """Route the library's and the command's records to stderr; return the undo.

    The command's own records (progress in JSON mode, fatal errors) are
    always shown; the library's by ``verbosity`` (0, 1 or 2 and more).
    """
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter(scrub) if fmt == "json" else TextFormatter(scrub))
    library = logging.getLogger(LIBRARY_LOGGER)
    cli = logging.getLogger(CLI_LOGGER)
    saved = (library.level, library.propagate, cli.level)
    library.addHandler(handler)
    library.setLevel(_LEVELS[min(verbosity, len(_LEVELS) - 1)])
    # Our lines only, never twice through a root logger an embedding program configured.
    library.propagate = False
    cli.setLevel(logging.INFO)

    def undo() -> None:
        library.removeHandler(handler)
        library.setLevel(saved[0])
        library.propagate = saved[1]
        cli.setLevel(saved[2])

    return undo
