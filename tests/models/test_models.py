from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from smartcar_async import _models, _models_account, _models_makes
from smartcar_async._headers import pick_headers
from smartcar_async._models import (
    EMPTY_META,
    AvailableCapacity,
    LockStatus,
    Meta,
    Odometer,
    OpenStatus,
    Paging,
)
from smartcar_async._models_account import Access, WebhookPayload

MODULES = (_models, _models_account, _models_makes)
MODELS = sorted(
    {
        obj
        for module in MODULES
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type) and attrs.has(obj)
    },
    key=lambda cls: cls.__name__,
)
RESPONSE_MODELS = [cls for cls in MODELS if "meta" in attrs.fields_dict(cls)]


def test_exports_resolve() -> None:
    for module in MODULES:
        assert len(set(module.__all__)) == len(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
def test_models_are_frozen_slotted_and_documented(cls: type) -> None:
    assert attrs.has(cls)
    assert "__slots__" in vars(cls)
    assert all(field.name == field.name.lower() for field in attrs.fields(cls))  # snake_case
    summary = (inspect.getdoc(cls) or "").partition("\n")[0]
    assert summary.strip(), cls


@pytest.mark.parametrize("cls", RESPONSE_MODELS, ids=lambda cls: cls.__name__)
def test_response_models_end_with_a_keyword_only_meta(cls: type) -> None:
    meta = attrs.fields(cls)[-1]
    assert meta.name == "meta"
    assert meta.type is Meta
    assert meta.kw_only
    assert meta.default is EMPTY_META


def test_frozen_and_shared_defaults() -> None:
    odo = Odometer(1.5)
    assert odo.meta is EMPTY_META
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        odo.distance = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Odometer(1.5, EMPTY_META)  # type: ignore[call-arg]
    assert not hasattr(odo, "__dict__")
    assert hash(odo) == hash(Odometer(1.5))


def test_lock_status_arrays_default_to_empty() -> None:
    status = LockStatus(is_locked=True)
    assert status.doors == status.windows == status.sunroof == ()
    assert status.storage == status.charging_port == ()
    doors = (OpenStatus("frontLeft", "CLOSED"),)
    assert LockStatus(False, doors).doors == doors


def test_optional_trailing_fields_default_to_none() -> None:
    assert AvailableCapacity(70.9).description is None
    assert _models.DiagnosticSystem("SYSTEM_TPMS", "OK").description is None
    assert _models_account.Connection("u", "v").connected_at is None
    assert _models_account.Compatibility(True).capabilities == ()


def test_paging_is_shared_by_both_modules() -> None:
    assert _models_account.Paging is Paging


# --- Meta -------------------------------------------------------------------

DOCS_HEADERS = {
    "SC-Data-Age": "2018-06-20T01:33:37.078Z",
    "SC-Fetched-At": "2018-06-20T01:48:37.078Z",
    "SC-Unit-System": "metric",
    "SC-Request-Id": "26c14915-0c26-43c5-8e42-9edfc2a66a0f",
}
EXPECTED_META = Meta(
    data_age=datetime(2018, 6, 20, 1, 33, 37, 78000, tzinfo=UTC),
    fetched_at=datetime(2018, 6, 20, 1, 48, 37, 78000, tzinfo=UTC),
    unit_system="metric",
    request_id="26c14915-0c26-43c5-8e42-9edfc2a66a0f",
)


@pytest.mark.parametrize(
    "headers",
    [
        DOCS_HEADERS,
        {key.lower(): value for key, value in DOCS_HEADERS.items()},
        {key.upper(): value for key, value in DOCS_HEADERS.items()},
        CIMultiDict(DOCS_HEADERS),
        CIMultiDictProxy(CIMultiDict(DOCS_HEADERS)),
    ],
)
def test_meta_from_headers_in_any_casing(headers: Any) -> None:
    assert Meta.from_headers(headers) == EXPECTED_META


def test_pick_headers_reads_a_multidict_as_it_reads_a_dict() -> None:
    # Responses' headers take a lookup path of their own; repeated names keep the first.
    pairs = [("SC-Request-Id", "first"), ("sc-request-id", "second"), ("Sc-Unit-System", "metric")]
    names = frozenset({"sc-request-id", "sc-unit-system", "sc-data-age"})
    expected = {"sc-request-id": "first", "sc-unit-system": "metric"}
    assert pick_headers(CIMultiDictProxy(CIMultiDict(pairs)), names) == expected
    assert pick_headers(CIMultiDict(pairs), names) == expected
    assert pick_headers(dict(pairs[::2]), names) == expected


def test_meta_from_batch_sub_response_headers() -> None:
    meta = Meta.from_headers({"sc-data-age": "2019-10-24T00:43:46.000Z", "Retry-After": 999})
    assert meta == Meta(data_age=datetime(2019, 10, 24, 0, 43, 46, tzinfo=UTC))


def test_meta_without_sc_headers_is_the_shared_empty_meta() -> None:
    assert Meta.from_headers({}) is EMPTY_META
    assert Meta.from_headers({"Content-Type": "application/json"}) is EMPTY_META
    assert Meta(None, None, None, None) == EMPTY_META


def test_meta_is_tolerant() -> None:
    meta = Meta.from_headers(
        {
            "sc-data-age": "yesterday",
            "sc-fetched-at": 1718000000,
            "sc-unit-system": 3,
            "sc-request-id": None,
        }
    )
    assert meta == Meta()


def test_meta_dates_are_always_aware() -> None:
    naive = Meta.from_headers({"sc-data-age": "2024-09-05T14:48:00"})
    assert naive.data_age == datetime(2024, 9, 5, 14, 48, tzinfo=UTC)
    offset = Meta.from_headers({"sc-data-age": "2024-09-05T16:48:00+02:00"})
    assert offset.data_age is not None
    assert offset.data_age.utcoffset() == timedelta(hours=2)
    assert offset.data_age == datetime(2024, 9, 5, 14, 48, tzinfo=UTC)


# --- Access and webhooks ----------------------------------------------------


def make_access() -> Access:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return Access(
        access_token="cf7ba7e9-secret-access",
        token_type="Bearer",
        expires_in=7200,
        expiration=now + timedelta(seconds=7200),
        refresh_token="58b128ba-secret-refresh",
        refresh_expiration=now + timedelta(days=60),
    )


def test_access_repr_hides_the_tokens() -> None:
    access = make_access()
    for text in (repr(access), str(access), f"{access}", repr([access])):
        assert "secret" not in text
        assert "access_token='<redacted>'" in text
        assert "refresh_token='<redacted>'" in text
        assert "expires_in=7200" in text
    assert access.access_token == "cf7ba7e9-secret-access"
    assert access == make_access()


def test_access_repr_shows_an_empty_token_as_empty() -> None:
    access = attrs.evolve(make_access(), refresh_token="")
    assert "refresh_token=''" in repr(access)


def test_webhook_payload_helpers() -> None:
    verify = WebhookPayload(event_type="VERIFY", data={"challenge": "abc"})
    assert verify.is_verify
    assert verify.challenge == "abc"
    assert WebhookPayload(event_type="verify").challenge is None
    assert not WebhookPayload(event_type="schedule").is_verify
    assert not WebhookPayload().is_verify


def test_access_accepts_any_timezone() -> None:
    east = timezone(timedelta(hours=9))
    access = attrs.evolve(make_access(), expiration=datetime(2024, 1, 1, 9, tzinfo=east))
    assert access.expiration == datetime(2024, 1, 1, tzinfo=UTC)
