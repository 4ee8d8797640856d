"""The vehicles file of ``smartcar-async poll``: one vehicle per line, as CSV.

The format, in full::

    # comments and blank lines are ignored; a UTF-8 byte order mark is accepted
    vehicle_id,access_token,refresh_token,expires_at,unit_system
    0c3b...,"eyJ...",,2026-05-01T12:00:00Z,imperial
    9f21...,eyJ...

An optional header row names the columns, in any order: ``vehicle_id``
(required), ``access_token`` (or its alias ``token``), ``refresh_token``,
``expires_at`` and ``unit_system``. A first row whose first cell is one of
these names is the header; without one, a row is ``vehicle_id[,access_token]``.
Cells follow the ``csv`` module's rules (double quotes, doubled to escape),
surrounding whitespace is trimmed, and an empty cell means "not given".

``expires_at`` (when the access token expires) is either ISO 8601 with a
timezone (``2026-05-01T12:00:00Z``, ``2026-05-01T14:00:00+02:00``) or Unix
epoch seconds (``1777636800``, fractions allowed); a time without a timezone
is refused, as it would depend on the machine's. ``unit_system`` is
``metric`` or ``imperial``; empty means the command's ``--units``.

A row needs an access token, a refresh token, or the command's ``--token``.

Every problem is a :class:`VehiclesFileError` naming the file, the line and
(where there is one) the column; none quotes a cell, so no token can leak
into an error message. Parsing is pure: :func:`parse_vehicles` takes the
text, and :func:`read_vehicles_file` only adds reading the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import attrs

from .._names import UnitSystem

__all__ = [
    "COLUMNS",
    "VehicleRow",
    "VehiclesFileError",
    "parse_vehicles",
    "read_vehicles_file",
    "secrets_of",
    "vehicle_id_problem",
]


#: The columns a header may name, in the order the docs list them.
COLUMNS: Final = ("vehicle_id", "access_token", "refresh_token", "expires_at", "unit_system")
_ALIASES: Final = {"token": "access_token"}
#: Without a header, these are the columns, in this order.
_HEADERLESS: Final = ("vehicle_id", "access_token")
_EPOCH: Final = re.compile(r"\d{1,12}(\.\d{1,9})?")
# A header cell worth echoing in an error: short, and without the hyphens and dots
# of UUID and JWT tokens.
_NAME_LIKE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,23}")


class VehiclesFileError(ValueError):
    """A problem in the vehicles file, with where it is.

    ``line`` is 1-based (None for the file as a whole); ``column`` is the
    1-based cell position on that line (None when the problem is the line).
    The message never contains a cell's value.
    """

    def __init__(
        self, path: str, problem: str, *, line: int | None = None, column: int | None = None
    ) -> None:
        self.path = path
        self.problem = problem
        self.line = line
        self.column = column
        where = path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {problem}")


def _token_repr(value: str | None) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen
class VehicleRow:
    """One vehicle of the file: its id, its credentials, and where it was written.

    Tokens are ``None`` when the row leaves them empty (the command's
    ``--token`` then stands in for the access token); a repr never shows them.
    """

    vehicle_id: str
    access_token: str | None = attrs.field(default=None, repr=_token_repr)
    refresh_token: str | None = attrs.field(default=None, repr=_token_repr)
    expires_at: dt.datetime | None = None
    unit_system: UnitSystem | None = None
    line: int = 0


def read_vehicles_file(path: str, *, default_token: str | None = None) -> list[VehicleRow]:
    """Read and parse the vehicles file at ``path``.

    Raises :class:`VehiclesFileError` for a file that cannot be read or is
    not UTF-8, and for every problem :func:`parse_vehicles` finds.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise VehiclesFileError(path, f"cannot read the file: {exc.strerror}") from None
    try:
        # utf-8-sig: spreadsheet programs start their CSV exports with a byte order mark.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VehiclesFileError(path, "not UTF-8 text", line=line) from None
    return parse_vehicles(text, path=path, default_token=default_token)


def parse_vehicles(
    text: str, *, path: str = "<vehicles>", default_token: str | None = None
) -> list[VehicleRow]:
    """Parse the text of a vehicles file (see the module docs for the format).

    ``default_token`` is the access token for rows that carry none (the
    command's ``--token``). Returns the rows in file order; raises
    :class:`VehiclesFileError` at the first problem.
    """
    columns: tuple[str, ...] | None = None
    rows: list[VehicleRow] = []
    first_seen: dict[str, int] = {}
    for number, cells in _records(text.removeprefix("\ufeff"), path):
        if columns is None:
            if cells[0].lower() in COLUMNS or cells[0].lower() in _ALIASES:
                columns = _header(cells, path, number)
                continue
            columns = _HEADERLESS
        row = _row(cells, columns, path, number, default_token)
        earlier = first_seen.setdefault(row.vehicle_id, number)
        if earlier != number:
            raise VehiclesFileError(
                path,
                f"the same vehicle id as line {earlier}",
                line=number,
                column=columns.index("vehicle_id") + 1,
            )
        rows.append(row)
    if not rows:
        raise VehiclesFileError(path, "no vehicles in the file (only comments, blanks or a header)")
    return rows


def _records(text: str, path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, trimmed cells) for each line that is not blank or a comment.

    Lines are split before the ``csv`` module sees them: a vehicle is one
    line, so a quote left open is an error on its line instead of a field
    that silently swallows the lines after it.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        # Ids and tokens never hold a quote, so an odd count means one left open.
        if line.count('"') % 2:
            raise VehiclesFileError(path, "a quoted cell is not closed", line=number)
        try:
            parsed = next(csv.reader([line], skipinitialspace=True))
        except csv.Error as exc:
            # Such as a cell past the csv module's field size limit (128 KiB): a usage
            # error on its line, not a traceback. The module's messages quote no cell.
            raise VehiclesFileError(path, f"not a CSV line: {exc}", line=number) from None
        yield number, [cell.strip() for cell in parsed]


def _header(cells: Sequence[str], path: str, number: int) -> tuple[str, ...]:
    names: list[str] = []
    for column, cell in enumerate(cells, start=1):
        name = _ALIASES.get(cell.lower(), cell.lower())
        if not cell and not any(cells[column:]):
            break  # trailing empty cells, as spreadsheets pad rows
        if name not in COLUMNS:
            shown = f"unknown column {cell!r}" if _NAME_LIKE.fullmatch(cell) else "unknown column"
            raise VehiclesFileError(
                path,
                f"{shown if cell else 'empty column name'} in the header; columns are "
                f"{', '.join(COLUMNS)} (token is an alias of access_token)",
                line=number,
                column=column,
            )
        if name in names:
            raise VehiclesFileError(
                path,
                f"column {name} appears twice in the header (token is an alias of access_token)",
                line=number,
                column=column,
            )
        names.append(name)
    if "vehicle_id" not in names:
        raise VehiclesFileError(path, "the header has no vehicle_id column", line=number)
    return tuple(names)


def _row(
    cells: Sequence[str],
    columns: Sequence[str],
    path: str,
    number: int,
    default_token: str | None,
) -> VehicleRow:
    if len(cells) > len(columns) and any(cells[len(columns) :]):
        expected = (
            "vehicle_id or vehicle_id,access_token (or name the columns in a header row)"
            if columns is _HEADERLESS
            else f"at most {len(columns)}, as the header names"
        )
        raise VehiclesFileError(
            path,
            f"{len(cells)} cells, expected {expected}",
            line=number,
            column=next(n for n in range(len(columns), len(cells)) if cells[n]) + 1,
        )
    values = dict(zip(columns, cells, strict=False))

    def where(name: str) -> int:
        return columns.index(name) + 1

    def fail(name: str, problem: str) -> VehiclesFileError:
        return VehiclesFileError(path, problem, line=number, column=where(name))

    vehicle_id = values.get("vehicle_id", "")
    problem = vehicle_id_problem(vehicle_id)
    if problem is not None:
        raise fail("vehicle_id", problem)
    access = values.get("access_token") or None
    refresh = values.get("refresh_token") or None
    for name, token in (("access_token", access), ("refresh_token", refresh)):
        if token is not None and _unprintable(token):
            raise fail(name, f"the {name} contains whitespace or control characters")
    if access is None and refresh is None and default_token is None:
        if "access_token" in columns:
            raise fail("access_token", "no access token on this line, and no --token given")
        raise VehiclesFileError(
            path, "no token column in the header, and no --token given", line=number
        )
    expires_at = None
    if values.get("expires_at"):
        expires_at = _expires_at(values["expires_at"])
        if expires_at is None:
            raise fail(
                "expires_at",
                "expires_at must be ISO 8601 with a timezone (2026-05-01T12:00:00Z) "
                "or Unix epoch seconds",
            )
    units = values.get("unit_system", "").lower()
    unit_system: UnitSystem | None = (
        "metric" if units == "metric" else "imperial" if units == "imperial" else None
    )
    if units and unit_system is None:
        raise fail("unit_system", "unit_system must be metric or imperial")
    return VehicleRow(
        vehicle_id=vehicle_id,
        access_token=access,
        refresh_token=refresh,
        expires_at=expires_at,
        unit_system=unit_system,
        line=number,
    )


def vehicle_id_problem(vehicle_id: str) -> str | None:
    """Why the client would refuse (or mangle) this id in a URL; None when it is fine."""
    if not vehicle_id:
        return "the vehicle id is empty"
    if vehicle_id in (".", ".."):
        # A URL normaliser would turn /vehicles/../odometer into /odometer.
        return "the vehicle id must not be '.' or '..'"
    if _unprintable(vehicle_id) or "/" in vehicle_id:
        return "the vehicle id contains whitespace, a slash or control characters"
    return None


def _unprintable(text: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() for ch in text)


def _expires_at(text: str) -> dt.datetime | None:
    """An aware UTC datetime, or None when ``text`` is neither accepted form."""
    if _EPOCH.fullmatch(text):
        try:
            return dt.datetime.fromtimestamp(float(text), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's end by its offset
        return None


def secrets_of(rows: Iterable[VehicleRow]) -> list[str]:
    """Every token the rows carry, for the command to keep out of its output."""
    found: list[str] = []
    for row in rows:
        found.extend(t for t in (row.access_token, row.refresh_token) if t)
    return found
