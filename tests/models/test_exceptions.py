from __future__ import annotations

import copy
import email.utils
import math
import pickle
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from smartcar_async import _exceptions as exc_mod
from smartcar_async._exceptions import (
    MAX_RETRY_AFTER,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BillingError,
    ClientClosedError,
    CompatibilityError,
    ConnectedServicesAccountError,
    InvalidResponseError,
    PermissionDeniedError,
    RateLimitError,
    Resolution,
    ResourceNotFoundError,
    ServerError,
    SmartcarError,
    StateError,
    StateUnavailableError,
    TransportError,
    UpstreamError,
    ValidationError,
    VehicleStateError,
    error_from_response,
    parse_retry_after,
)

REQUEST_ID = "5dea93a1-3f79-4246-90c5-89610a20471b"
NOW = 1_700_000_000.0

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# --- the hierarchy -------------------------------------------------------

PARENTS: list[tuple[type[SmartcarError], type[BaseException]]] = [
    (SmartcarError, Exception),
    (APIError, SmartcarError),
    (AuthenticationError, APIError),
    (PermissionDeniedError, APIError),
    (ResourceNotFoundError, APIError),
    (ValidationError, APIError),
    (ConnectedServicesAccountError, APIError),
    (VehicleStateError, APIError),
    (RateLimitError, APIError),
    (BillingError, APIError),
    (ServerError, APIError),
    (CompatibilityError, APIError),
    (UpstreamError, APIError),
    (TransportError, SmartcarError),
    (APITimeoutError, APIConnectionError),
    (APIConnectionError, TransportError),
    (InvalidResponseError, TransportError),
    (ClientClosedError, SmartcarError),
    (StateError, SmartcarError),
    (StateUnavailableError, StateError),
]


@pytest.mark.parametrize(("cls", "parent"), PARENTS)
def test_each_class_has_its_documented_parent(
    cls: type[SmartcarError], parent: type[BaseException]
) -> None:
    assert cls.__bases__ == (parent,)
    assert cls.__name__ in (exc_mod.__doc__ or "")


def test_every_exported_error_class_is_in_the_tree() -> None:
    exported = {
        getattr(exc_mod, name)
        for name in exc_mod.__all__
        if isinstance(getattr(exc_mod, name), type)
        and issubclass(getattr(exc_mod, name), BaseException)
    }
    assert exported == {cls for cls, _ in PARENTS}


# --- SmartcarError itself ------------------------------------------------


def full_error(cls: type[SmartcarError] = RateLimitError) -> SmartcarError:
    return cls(
        "RATE_LIMIT:VEHICLE - slow down",
        type="RATE_LIMIT",
        code="VEHICLE",
        status_code=429,
        description="slow down",
        doc_url="https://smartcar.com/docs/errors",
        request_id=REQUEST_ID,
        resolution=Resolution(type="RETRY_LATER"),
        suggested_user_message="Please wait.",
        detail=({"field": ["x"]},),
        retry_after=120.0,
    )


def test_attributes_str_and_repr() -> None:
    err = full_error()
    assert str(err) == "RATE_LIMIT:VEHICLE - slow down"
    assert err.message == str(err)
    assert err.args == ("RATE_LIMIT:VEHICLE - slow down",)
    assert (err.type, err.code, err.status_code) == ("RATE_LIMIT", "VEHICLE", 429)
    assert err.description == "slow down"
    assert err.doc_url == "https://smartcar.com/docs/errors"
    assert err.request_id == REQUEST_ID
    assert err.resolution == Resolution("RETRY_LATER", None)
    assert err.suggested_user_message == "Please wait."
    assert err.detail == ({"field": ["x"]},)
    assert err.retry_after == 120.0
    assert repr(err) == (
        "RateLimitError('RATE_LIMIT:VEHICLE - slow down', type='RATE_LIMIT', code='VEHICLE', "
        f"status_code=429, request_id='{REQUEST_ID}', retry_after=120.0)"
    )


def test_repr_omits_unset_fields() -> None:
    assert repr(APITimeoutError("Timed out")) == "APITimeoutError('Timed out')"
    assert repr(InvalidResponseError("bad", field="doors[2].status")) == (
        "InvalidResponseError('bad', field='doors[2].status')"
    )


def test_invalid_response_error_takes_field_and_the_common_fields() -> None:
    err = InvalidResponseError("bad", field="distance", request_id="r", status_code=200)
    assert (err.field, err.request_id, err.status_code) == ("distance", "r", 200)
    assert InvalidResponseError("bad").field is None


@pytest.mark.parametrize("cls", [cls for cls, _ in PARENTS])
def test_every_class_survives_pickle_and_copy(cls: type[SmartcarError]) -> None:
    err = full_error(cls)
    err.add_note("seen in batch 7")
    for twin in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert type(twin) is cls
        assert str(twin) == str(err)
        assert twin.args == err.args
        assert vars(twin) == vars(err)
        assert twin.__notes__ == ["seen in batch 7"]


def test_invalid_response_error_pickles_its_field() -> None:
    twin = pickle.loads(pickle.dumps(InvalidResponseError("bad", field="x[0]", request_id="r")))
    assert (twin.field, twin.request_id, str(twin)) == ("x[0]", "r", "bad")


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("REAUTHENTICATE", Resolution("REAUTHENTICATE", None)),
        (None, None),
        ({"type": None}, Resolution(None, None)),
        ({"type": "RETRY_LATER"}, Resolution("RETRY_LATER", None)),
        (
            {"type": "REAUTHENTICATE", "url": "https://example.com"},
            Resolution("REAUTHENTICATE", "https://example.com"),
        ),
        ({"type": 3, "url": ["x"]}, Resolution(None, None)),
        (42, None),
    ],
)
def test_resolution_reads_every_historical_form(wire: object, expected: Resolution | None) -> None:
    assert Resolution.from_wire(wire) == expected


# --- error_from_response: v2.0 bodies ------------------------------------


def v2(type_: str, code: str | None, status: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "code": code,
        "description": f"{type_} happened.",
        "docURL": f"https://smartcar.com/docs/errors/api-errors/{type_.lower()}",
        "statusCode": status,
        "requestId": REQUEST_ID,
        "resolution": {"type": "RETRY_LATER"},
        **extra,
    }


@pytest.mark.parametrize(
    ("type_", "code", "status", "cls"),
    [
        ("AUTHENTICATION", None, 401, AuthenticationError),
        ("PERMISSION", None, 403, PermissionDeniedError),
        ("RESOURCE_NOT_FOUND", "PATH", 404, ResourceNotFoundError),
        ("VALIDATION", "PARAMETER", 400, ValidationError),
        ("CONNECTED_SERVICES_ACCOUNT", "VIRTUAL_KEY_REQUIRED", 400, ConnectedServicesAccountError),
        ("VEHICLE_STATE", "ASLEEP", 409, VehicleStateError),
        ("RATE_LIMIT", "SMARTCAR_API", 429, RateLimitError),
        ("BILLING", "VEHICLE_LIMIT", 430, BillingError),
        ("SERVER", "INTERNAL", 500, ServerError),
        ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", 501, CompatibilityError),
        ("UPSTREAM", "NO_RESPONSE", 502, UpstreamError),
    ],
)
def test_v2_type_picks_the_class(
    type_: str, code: str | None, status: int, cls: type[APIError]
) -> None:
    err = error_from_response(status, v2(type_, code, status))
    assert type(err) is cls
    assert (err.type, err.code, err.status_code, err.request_id) == (
        type_,
        code,
        status,
        REQUEST_ID,
    )
    assert err.description == f"{type_} happened."
    assert err.doc_url is not None
    assert err.doc_url.endswith(type_.lower())
    assert err.resolution == Resolution("RETRY_LATER")
    expected_head = f"{type_}:{code}" if code else type_
    assert str(err) == f"{expected_head} - {type_} happened."


def test_v2_type_wins_over_status() -> None:
    # A 400 can be VALIDATION or CONNECTED_SERVICES_ACCOUNT: only the type tells.
    err = error_from_response(400, v2("CONNECTED_SERVICES_ACCOUNT", "ACCOUNT_ISSUE", 400))
    assert type(err) is ConnectedServicesAccountError


def test_v2_rate_limit_vehicle_with_retry_after_header() -> None:
    body = {
        "type": "RATE_LIMIT",
        "code": "VEHICLE",
        "description": "You have reached the throttling rate limit for this vehicle.",
        "docURL": "https://smartcar.com/docs/errors/v2.0/upstream/#vehicle_rate_limit",
        "statusCode": 429,
        "requestId": REQUEST_ID,
        "resolution": {"type": "RETRY_LATER"},
        "suggestedUserMessage": "Your vehicle is temporarily unable to connect.",
    }
    err = error_from_response(429, body, {"Retry-After": "120", "Content-Type": "application/json"})
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 120.0
    assert err.suggested_user_message == "Your vehicle is temporarily unable to connect."
    assert str(err) == (
        "RATE_LIMIT:VEHICLE - You have reached the throttling rate limit for this vehicle."
    )


def test_v2_validation_detail_becomes_a_tuple() -> None:
    detail = [
        {"field": ["requests"], "message": '"requests" is required'},
        {"field": ["request"], "message": '"request" is not allowed'},
    ]
    err = error_from_response(400, v2("VALIDATION", None, 400, detail=detail, resolution=None))
    assert isinstance(err, ValidationError)
    assert err.detail == tuple(detail)
    assert err.resolution is None
    assert str(err) == "VALIDATION - VALIDATION happened."


@pytest.mark.parametrize(
    ("resolution", "expected"),
    [
        ("REAUTHENTICATE", Resolution("REAUTHENTICATE")),
        (None, None),
        ({"type": None}, Resolution()),
        ({"type": "REAUTHENTICATE", "url": "https://x"}, Resolution("REAUTHENTICATE", "https://x")),
    ],
)
def test_v2_resolution_forms(resolution: object, expected: Resolution | None) -> None:
    err = error_from_response(403, v2("PERMISSION", None, 403, resolution=resolution))
    assert err.resolution == expected


def test_v2_null_description_gives_the_sdk_message() -> None:
    err = error_from_response(403, {"type": "PERMISSION", "code": None, "description": None})
    assert str(err) == "PERMISSION - "
    assert err.description is None


def test_unknown_v2_type_falls_back_to_status() -> None:
    err = error_from_response(409, v2("SOMETHING_NEW", "X", 409))
    assert type(err) is VehicleStateError
    assert err.type == "SOMETHING_NEW"


def test_status_code_prefers_an_integer_status_code_in_the_body() -> None:
    assert error_from_response(200, v2("VEHICLE_STATE", "DOOR_OPEN", 409)).status_code == 409
    for bad in (True, "409", 409.0, None):
        body = v2("VEHICLE_STATE", "DOOR_OPEN", 409, statusCode=bad)
        assert error_from_response(418, body).status_code == 418


def test_unknown_type_uses_the_body_status_code() -> None:
    err = error_from_response(200, {"type": "NEW", "statusCode": 429})
    assert type(err) is RateLimitError


# --- error_from_response: legacy and OAuth bodies ------------------------


def test_v1_body() -> None:
    body = {
        "error": "vehicle_state_error",
        "message": "Vehicle state cannot be determined.",
        "code": "VS_000",
    }
    err = error_from_response(409, body, {"SC-Request-Id": "hdr"})
    assert type(err) is VehicleStateError
    assert (err.type, err.code, err.description) == (
        "vehicle_state_error",
        "VS_000",
        "Vehicle state cannot be determined.",
    )
    assert str(err) == "vehicle_state_error:VS_000 - Vehicle state cannot be determined."
    assert err.request_id == "hdr"


@pytest.mark.parametrize(
    ("error", "status", "cls"),
    [
        ("permission_error", 403, PermissionDeniedError),
        ("vehicle_not_capable_error", 501, CompatibilityError),
        ("monthly_limit_exceeded_error", 430, BillingError),
        ("gateway_timeout_error", 504, UpstreamError),
        ("mystery_error", 404, ResourceNotFoundError),
    ],
)
def test_v1_error_names(error: str, status: int, cls: type[APIError]) -> None:
    err = error_from_response(status, {"error": error, "message": "It failed."})
    assert type(err) is cls
    assert str(err) == f"{error} - It failed."


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ("invalid_grant", AuthenticationError),
        ("invalid_client", AuthenticationError),
        ("unauthorized_client", AuthenticationError),
        ("access_denied", AuthenticationError),
        ("invalid_request", ValidationError),
        ("unsupported_grant_type", ValidationError),
        ("invalid_scope", ValidationError),
        ("temporarily_unavailable", ValidationError),  # unknown: the 400 decides
    ],
)
def test_oauth_body(error: str, cls: type[APIError]) -> None:
    body = {"error": error, "error_description": "Invalid code: THIS_SHOULD_NOT_WORK."}
    err = error_from_response(400, body)
    assert type(err) is cls
    assert (err.type, err.code, err.status_code) == (error, None, 400)
    assert err.description == "Invalid code: THIS_SHOULD_NOT_WORK."
    assert str(err) == f"{error} - Invalid code: THIS_SHOULD_NOT_WORK."


# --- error_from_response: anything else ----------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, ResourceNotFoundError),
        (409, VehicleStateError),
        (429, RateLimitError),
        (430, BillingError),
        (500, ServerError),
        (501, CompatibilityError),
        (502, UpstreamError),
        (503, UpstreamError),
        (504, UpstreamError),
        (505, ServerError),
        (599, ServerError),
        (418, APIError),
        (302, APIError),
    ],
)
def test_status_decides_without_a_known_body(status: int, cls: type[APIError]) -> None:
    for body in (None, "", {}, {"unrelated": 1}, [1, 2]):
        err = error_from_response(status, body)
        assert type(err) is cls
        assert err.status_code == status
        assert err.type is None
        assert str(err).startswith(f"HTTP {status}")


def test_text_body_is_summarised_on_one_line() -> None:
    html = "<html>\n  <body>Bad   gateway</body>\n</html>"
    err = error_from_response(502, html)
    assert str(err) == "HTTP 502: <html> <body>Bad gateway</body> </html>"
    assert err.description == "<html> <body>Bad gateway</body> </html>"
    long = error_from_response(500, "x" * 5000)
    assert len(str(long)) < 250
    assert str(long).endswith("…")


def test_headers_are_never_echoed() -> None:
    headers = {
        "Authorization": "Bearer sekrit-token",
        "Cookie": "sekrit-cookie",
        "sc-request-id": "req",
    }
    for body in (None, "oops", {}, v2("SERVER", "INTERNAL", 500)):
        err = error_from_response(500, body, headers)
        text = str(err) + repr(err) + repr(vars(err))
        assert "sekrit" not in text


# --- request id and Retry-After lookups -----------------------------------


def test_request_id_precedence() -> None:
    headers = {"SC-Request-Id": "from-header"}
    with_body = v2("SERVER", "INTERNAL", 500)
    assert error_from_response(500, with_body, headers, request_id="kw").request_id == REQUEST_ID
    without = {**with_body, "requestId": None}
    assert error_from_response(500, without, headers, request_id="kw").request_id == "from-header"
    assert error_from_response(500, without, {}, request_id="kw").request_id == "kw"
    assert error_from_response(500, None, headers, request_id="kw").request_id == "from-header"
    assert error_from_response(500, None, None).request_id is None


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "7", "sc-request-id": "r"},
        {"Retry-After": 7, "SC-REQUEST-ID": "r"},
        CIMultiDict([("RETRY-AFTER", "7"), ("Sc-Request-Id", "r")]),
        CIMultiDictProxy(CIMultiDict([("Retry-After", "7"), ("SC-Request-Id", "r")])),
    ],
)
def test_header_lookup_ignores_case_in_dicts_and_multidicts(headers: Any) -> None:
    err = error_from_response(429, {"type": "RATE_LIMIT", "code": "VEHICLE"}, headers)
    assert (err.retry_after, err.request_id) == (7.0, "r")


def test_first_of_repeated_headers_wins() -> None:
    headers = CIMultiDict([("Retry-After", "3"), ("retry-after", "9")])
    assert error_from_response(429, None, headers).retry_after == 3.0


def test_unparseable_retry_after_is_none() -> None:
    assert error_from_response(429, None, {"Retry-After": "soon"}).retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (120, 120.0),
        (0, 0.0),
        (1.5, 1.5),
        ("120", 120.0),
        ("  42 ", 42.0),
        ("0.25", 0.25),
        (b"30", 30.0),
        ("", None),
        ("soon", None),
        ("-5", None),
        (-5, None),
        ("nan", None),
        ("inf", None),
        (float("inf"), None),
        # An exact int is a (long) wait, clamped to the ceiling (issue 11).
        (10**400, MAX_RETRY_AFTER),
        (True, None),
        ([120], None),
        ({"seconds": 1}, None),
    ],
)
def test_parse_retry_after_values(value: object, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_dates() -> None:
    future = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(future, now=NOW) == pytest.approx(90.0)
    past = email.utils.formatdate(NOW - 90, usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    # No zone at all is still GMT per RFC 9110.
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 99 Foo 2015 07:28:00 GMT", now=NOW) is None


def test_parse_retry_after_defaults_now_to_the_clock() -> None:
    soon = email.utils.formatdate(2**31 - 1, usegmt=True)
    result = parse_retry_after(soon)
    assert result is not None
    assert result > 0


# --- properties -----------------------------------------------------------

header_maps = st.dictionaries(
    st.sampled_from(["Retry-After", "retry-after", "SC-Request-Id", "X"]) | st.text(max_size=6),
    json_scalars,
    max_size=4,
)


@given(status=st.integers(-1000, 1000), body=json_values, headers=header_maps | st.none())
def test_error_from_response_always_returns_an_api_error(
    status: int, body: object, headers: dict[str, Any] | None
) -> None:
    err = error_from_response(status, body, headers, request_id="kw")
    assert isinstance(err, APIError)
    assert isinstance(str(err), str)
    assert repr(err)
    assert err.retry_after is None or (math.isfinite(err.retry_after) and err.retry_after >= 0)
    assert isinstance(err.status_code, int)
    pickle.loads(pickle.dumps(err))


@given(st.one_of(json_scalars, st.binary(max_size=20), st.text(max_size=40)))
def test_parse_retry_after_never_raises(value: object) -> None:
    result = parse_retry_after(value, now=NOW)
    assert result is None or (math.isfinite(result) and 0 <= result <= MAX_RETRY_AFTER)


# Two-digit-year rules in RFC 5322 parsing make years below 100 ambiguous.
@given(st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.just(UTC)))
def test_parse_retry_after_reads_any_http_date(when: datetime) -> None:
    text = email.utils.format_datetime(when, usegmt=True)
    result = parse_retry_after(text, now=NOW)
    expected = max(0.0, when.replace(microsecond=0).timestamp() - NOW)
    assert result == pytest.approx(min(expected, MAX_RETRY_AFTER))
