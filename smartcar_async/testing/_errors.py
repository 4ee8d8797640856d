"""Smartcar v2.0 error bodies: the catalogue of types and codes, and `ApiError`.

Shapes follow the documented v2 body exactly (type, code, description, docURL,
statusCode, requestId, resolution as a ``{"type": ...}`` object, and detail
for validation errors), because the official SDKs read the status from the
body, not from the HTTP status line. ``suggestedUserMessage`` is sent only for
the types whose documented examples carry one (connected services account,
vehicle state, rate limit, server, upstream); a recorded PERMISSION answer, the
validation, authentication, billing and compatibility examples have none.
"""

from __future__ import annotations

from typing import Any

import attrs

_DOCS = "https://smartcar.com/docs/errors/api-errors"

_TYPE_STATUS: dict[str, int] = {
    "CONNECTED_SERVICES_ACCOUNT": 400,
    "VALIDATION": 400,
    "AUTHENTICATION": 401,
    "PERMISSION": 403,
    "RESOURCE_NOT_FOUND": 404,
    "VEHICLE_STATE": 409,
    "RATE_LIMIT": 429,
    "BILLING": 430,
    "SERVER": 500,
    "COMPATIBILITY": 501,
    "UPSTREAM": 502,
}

_TYPE_RESOLUTION: dict[str, str | None] = {
    "CONNECTED_SERVICES_ACCOUNT": None,
    "VALIDATION": None,
    "AUTHENTICATION": None,
    "PERMISSION": "REAUTHENTICATE",
    "RESOURCE_NOT_FOUND": None,
    "VEHICLE_STATE": None,
    "RATE_LIMIT": "RETRY_LATER",
    "BILLING": "CONTACT_SUPPORT",
    "SERVER": "RETRY_LATER",
    "COMPATIBILITY": None,
    "UPSTREAM": "RETRY_LATER",
}

_TYPE_DESCRIPTION: dict[str, str] = {
    "CONNECTED_SERVICES_ACCOUNT": ("There is an issue with the user's connected services account."),
    "VALIDATION": (
        "Request invalid or malformed. Please check for missing parameters, spelling and "
        "casing mistakes, and other syntax issues."
    ),
    "AUTHENTICATION": (
        "The authorization header is missing or malformed, or it contains invalid or expired "
        "authentication credentials. Please check for missing parameters, spelling and casing "
        "mistakes, and other syntax issues."
    ),
    "PERMISSION": (
        "Your application has insufficient permissions to access the requested resource. "
        "Please prompt the user to re-authenticate using Smartcar Connect."
    ),
    "RESOURCE_NOT_FOUND": "The requested resource does not exist.",
    "VEHICLE_STATE": "The vehicle is in a state that prevents it from performing your request.",
    "RATE_LIMIT": "Your application has exceeded its rate limit.",
    "BILLING": "Your application has exceeded a limit of its billing plan.",
    "SERVER": (
        "An internal Smartcar error has occurred. Our team has been notified and is working "
        "to resolve this issue."
    ),
    "COMPATIBILITY": "The vehicle is not capable of performing your request.",
    "UPSTREAM": "The vehicle manufacturer's servers returned an error.",
}

# Codes whose documented resolution differs from their type's.
_CODE_RESOLUTION: dict[tuple[str, str], str | None] = {
    ("SERVER", "RECORD_NOT_FOUND"): "CONTACT_SUPPORT",
    ("SERVER", "MULTIPLE_RECORDS_FOUND"): "CONTACT_SUPPORT",
    ("COMPATIBILITY", "PLATFORM_NOT_CAPABLE"): "REAUTHENTICATE",
}

# The docs' page slug per type, where it is not "<type>-errors".
_TYPE_SLUG: dict[str, str] = {"CONNECTED_SERVICES_ACCOUNT": "connected-service"}

_CODE_DESCRIPTION: dict[tuple[str, str], str] = {
    ("RESOURCE_NOT_FOUND", "PATH"): (
        "The requested resource does not exist. Please check the URL and try again."
    ),
    ("RESOURCE_NOT_FOUND", "VERSION"): (
        "The requested version of the Smartcar API does not exist. Please check the version "
        "in the URL and try again."
    ),
    ("VEHICLE_STATE", "ASLEEP"): (
        "The vehicle is in a sleep state and temporarily unable to perform your request."
    ),
    ("VEHICLE_STATE", "UNREACHABLE"): (
        "The vehicle was unable to perform your request due to poor internet connectivity."
    ),
    ("VEHICLE_STATE", "CHARGING_PLUG_NOT_CONNECTED"): (
        "The vehicle cannot charge because the charging cable is not connected."
    ),
    ("VEHICLE_STATE", "CHARGING_IN_PROGRESS"): (
        "The vehicle is currently charging and unable to perform your request."
    ),
    ("VEHICLE_STATE", "NOT_CHARGING"): "The vehicle is not charging.",
    ("VEHICLE_STATE", "FULLY_CHARGED"): ("The vehicle is already charged to its charge limit."),
    ("VEHICLE_STATE", "DOOR_OPEN"): "Door is open.",
    ("RATE_LIMIT", "VEHICLE"): (
        "You have reached the throttling rate limit for this vehicle. Please see the "
        "retry-after header (seconds) for when to retry the request."
    ),
    ("RATE_LIMIT", "SMARTCAR_API"): (
        "Your application has exceeded its rate limit. Please retry your request in a few minutes."
    ),
    ("BILLING", "VEHICLE_LIMIT"): (
        "You have exceeded your active vehicle limit for the current billing period. Please "
        "log into the Smartcar dashboard and visit the Billing tab to learn more."
    ),
    ("BILLING", "VEHICLE_REQUEST_LIMIT"): (
        "You have exceeded the number of API requests allowed for this vehicle in the current "
        "billing period."
    ),
    ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE"): (
        "The vehicle is incapable of performing your request."
    ),
    ("COMPATIBILITY", "MAKE_NOT_COMPATIBLE"): (
        "Smartcar does not support this make for the requested feature."
    ),
    ("COMPATIBILITY", "SMARTCAR_NOT_CAPABLE"): (
        "Smartcar does not yet support this feature for this vehicle."
    ),
}

# Only these types carry the field (see the module docstring).
_SUGGESTED_USER_MESSAGE: dict[str, str] = {
    "CONNECTED_SERVICES_ACCOUNT": (
        "Action required in your connected services account. Please log into your "
        "connected services app or web portal and complete any outstanding tasks."
    ),
    "VEHICLE_STATE": (
        "Your vehicle is in a state that prevents this request. Please try again later."
    ),
    "RATE_LIMIT": (
        "Your vehicle is temporarily unable to connect to this app. Please be patient while "
        "we're working to resolve this issue."
    ),
    "SERVER": (
        "Your car is temporarily unable to connect to this app. Please be patient while "
        "we're working to resolve this issue."
    ),
    "UPSTREAM": (
        "Your car is temporarily unable to connect to this app. Please be patient while "
        "we're working to resolve this issue."
    ),
}

_CODE_USER_MESSAGE: dict[tuple[str, str], str] = {
    ("VEHICLE_STATE", "ASLEEP"): (
        "Your vehicle is in a sleep state. This request was not sent to preserve battery life."
    ),
    ("VEHICLE_STATE", "CHARGING_IN_PROGRESS"): "Your vehicle is already charging.",
}


def status_for(error_type: str) -> int:
    """The HTTP status Smartcar uses for an error type (500 for unknown types)."""
    return _TYPE_STATUS.get(error_type, 500)


@attrs.frozen
class ApiError(Exception):
    """A v2.0 error about to be rendered, as a whole response or as one batch item.

    `status` defaults to the documented status of `type`; injected errors may
    override it.
    """

    type: str
    code: str | None = None
    status: int | None = None
    description: str | None = None
    detail: list[dict[str, Any]] | None = None
    retry_after: int | None = None

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else status_for(self.type)

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON body, stamped with the request id of the HTTP request it belongs to."""
        t, c = self.type, self.code
        description = self.description or describe(t, c)
        slug = doc_slug(t)
        # Smartcar's own permission errors link to "#null" when the code is null.
        anchor = c.lower().replace("_", "-") if c is not None else "null"
        doc_url = f"{_DOCS}/{slug}-errors" + (
            f"#{anchor}" if c is not None or t == "PERMISSION" else ""
        )
        body: dict[str, Any] = {
            "type": t,
            "code": c,
            "description": description,
            "docURL": doc_url,
            "statusCode": self.http_status,
            "requestId": request_id,
            "resolution": {"type": _resolution(t, c)},
        }
        message = _user_message(t, c)
        if message is not None:
            body["suggestedUserMessage"] = message
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def describe(error_type: str, code: str | None) -> str:
    """The catalogue's description of a type and code (the v3 ``detail``)."""
    return (
        (_CODE_DESCRIPTION.get((error_type, code)) if code is not None else None)
        or _TYPE_DESCRIPTION.get(error_type)
        or "An error occurred."
    )


def doc_slug(error_type: str) -> str:
    """The docs page slug of an error type, without the ``-errors`` suffix."""
    return _TYPE_SLUG.get(error_type) or error_type.lower().replace("_", "-")


def resolution_for(error_type: str, code: str | None) -> str | None:
    return _resolution(error_type, code)


def user_message_for(error_type: str, code: str | None) -> str | None:
    return _user_message(error_type, code)


def _resolution(error_type: str, code: str | None) -> str | None:
    if code is not None and (error_type, code) in _CODE_RESOLUTION:
        return _CODE_RESOLUTION[error_type, code]
    return _TYPE_RESOLUTION.get(error_type)


def _user_message(error_type: str, code: str | None) -> str | None:
    if code is not None:
        specific = _CODE_USER_MESSAGE.get((error_type, code))
        if specific is not None:
            return specific
    return _SUGGESTED_USER_MESSAGE.get(error_type)


def validation(field: str | list[str], message: str) -> ApiError:
    """A 400 VALIDATION error with one Joi-style `detail` entry."""
    path = [field] if isinstance(field, str) else field
    return ApiError("VALIDATION", detail=[{"field": path, "message": message}])


def not_found() -> ApiError:
    return ApiError("RESOURCE_NOT_FOUND", "PATH")


def authentication(description: str | None = None) -> ApiError:
    return ApiError("AUTHENTICATION", description=description)


def permission(description: str | None = None) -> ApiError:
    return ApiError("PERMISSION", description=description)


def not_capable() -> ApiError:
    return ApiError("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")


def vehicle_state(code: str) -> ApiError:
    return ApiError("VEHICLE_STATE", code)
