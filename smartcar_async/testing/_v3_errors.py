"""Smartcar API v3 error bodies: the JSON:API ``errors`` list and per-signal errors.

A v3 HTTP error answers ``{"errors": [{"status": "501", "type", "code",
"title", "detail", "links": {"about"}, "resolution": {"type"},
"suggestedUserMessage"?}]}``: ``status`` is a **string**, and there is no
``requestId``, ``statusCode`` or ``docURL`` (smartcar-api-v3.md §6; the
findings' item 22 on ``suggestedUserMessage``, sent here for the same types
as in v2). The types, codes and HTTP statuses are v2's catalogue (findings
item 23), plus the codes seen live on v3: ``VALIDATION/MISSING_PARAMETER``,
``RESOURCE_NOT_FOUND/SIGNAL_NOT_FOUND`` and ``RESOURCE_NOT_FOUND/INVALID_PATH``.

An error inside a signal (``status.error`` of a signal whose ``status.value``
is ``ERROR``) has the recorded REST shape: ``{type, code, title, detail,
description: "Deprecated. Use detail", resolution: {type}}``, with
``resolution.type`` ``REAUTHENTICATE`` for PERMISSION and
``UNKNOWN_RESOLUTION_TYPE`` otherwise, as wbyoung/smartcar's recorded answer
shows.
"""

from __future__ import annotations

from typing import Any

from ._errors import ApiError, describe, doc_slug, resolution_for, user_message_for

_DOCS = "https://smartcar.com/docs/errors/api-errors/v3"

# Codes whose title the recorded answers spell other than by title-casing the code.
_TITLES: dict[tuple[str, str | None], str] = {
    ("UPSTREAM", "INVALID_DATA"): "Bad Gateway",
}

_CODE_DETAIL: dict[tuple[str, str], str] = {
    ("RESOURCE_NOT_FOUND", "SIGNAL_NOT_FOUND"): "Signal with code {code} not found for vehicle "
    "with ID {vehicle}.",
    ("VEHICLE_STATE", "NOT_CHARGING"): (
        "The vehicle is unable to perform your request because it is not currently charging."
    ),
}


def title(error_type: str, code: str | None) -> str:
    """``"Vehicle Not Capable"`` for ``VEHICLE_NOT_CAPABLE``: the recorded titles' rule."""
    known = _TITLES.get((error_type, code))
    if known is not None:
        return known
    return (code or error_type).replace("_", " ").title()


def detail_of(error: ApiError) -> str:
    """The v3 ``detail`` string: the error's own text, else the catalogue's."""
    if error.description:
        return error.description
    if error.detail:
        # A v2 validation error carries its Joi message in a list; v3 wants one string.
        message = error.detail[0].get("message")
        if isinstance(message, str):
            return message
    if error.code is not None and (error.type, error.code) in _CODE_DETAIL:
        return _CODE_DETAIL[error.type, error.code]
    return describe(error.type, error.code)


def error_item(error: ApiError) -> dict[str, Any]:
    """One entry of a v3 ``errors`` list."""
    t, c = error.type, error.code
    anchor = f"#{c.lower().replace('_', '-')}" if c is not None else ""
    item: dict[str, Any] = {
        "status": str(error.http_status),
        "type": t,
        "code": c,
        "title": title(t, c),
        "detail": detail_of(error),
        "links": {"about": f"{_DOCS}/{doc_slug(t)}-errors{anchor}"},
        "resolution": {"type": resolution_for(t, c)},
    }
    message = user_message_for(t, c)
    if message is not None:
        item["suggestedUserMessage"] = message
    return item


def errors_body(error: ApiError) -> dict[str, Any]:
    """The whole JSON:API error document for one error."""
    return {"errors": [error_item(error)]}


def signal_error(error_type: str, code: str | None, detail: str | None = None) -> dict[str, Any]:
    """The ``status.error`` object of a failed signal (recorded REST shape)."""
    if detail is None:
        detail = (
            _CODE_DETAIL[error_type, code]
            if code is not None and (error_type, code) in _CODE_DETAIL
            else describe(error_type, code)
        )
    return {
        "type": error_type,
        "code": code,
        "title": title(error_type, code),
        "detail": detail,
        "description": "Deprecated. Use detail",
        "resolution": {
            "type": "REAUTHENTICATE" if error_type == "PERMISSION" else "UNKNOWN_RESOLUTION_TYPE"
        },
    }


def signal_not_found(code: str, vehicle_id: str) -> ApiError:
    """The live answer for a code the vehicle does not list (findings, new live facts)."""
    detail = _CODE_DETAIL["RESOURCE_NOT_FOUND", "SIGNAL_NOT_FOUND"].format(
        code=code, vehicle=vehicle_id
    )
    return ApiError("RESOURCE_NOT_FOUND", "SIGNAL_NOT_FOUND", description=detail)


def invalid_path() -> ApiError:
    return ApiError("RESOURCE_NOT_FOUND", "INVALID_PATH", description="Invalid path.")


def missing_user_id() -> ApiError:
    """An application token without ``sc-user-id`` (live: 400, detail ``missing userId``)."""
    return ApiError("VALIDATION", "MISSING_PARAMETER", description="missing userId")
