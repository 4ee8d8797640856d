"""Origin resolution: argument, then the official SDK's environment variables, then defaults."""

from __future__ import annotations

import pytest

from smartcar_async import _origins


def test_defaults() -> None:
    assert _origins.api_origin() == "https://api.smartcar.com"
    assert _origins.token_url() == "https://auth.smartcar.com/oauth/token"
    assert _origins.connect_origin() == "https://connect.smartcar.com"
    assert _origins.management_origin() == "https://management.smartcar.com"


def test_environment_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_API_ORIGIN", "http://127.0.0.1:1/")
    monkeypatch.setenv("SMARTCAR_CONNECT_ORIGIN", "http://connect.local")
    monkeypatch.setenv("SMARTCAR_MANAGEMENT_API_ORIGIN", "http://mgmt.local:8080")
    assert _origins.api_origin() == "http://127.0.0.1:1"
    assert _origins.connect_origin() == "http://connect.local"
    assert _origins.management_origin() == "http://mgmt.local:8080"
    # An explicit argument wins over the environment.
    assert _origins.api_origin("https://other.example") == "https://other.example"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # The official Python SDK's form: the full token URL.
        ("http://auth.local/oauth/token", "http://auth.local/oauth/token"),
        ("http://auth.local/oauth/token/", "http://auth.local/oauth/token"),
        # The Node/Java form: an origin.
        ("http://auth.local", "http://auth.local/oauth/token"),
        ("http://auth.local/", "http://auth.local/oauth/token"),
        ("https://proxy.local/smartcar-auth", "https://proxy.local/smartcar-auth/oauth/token"),
    ],
)
def test_auth_origin_accepts_origin_or_token_url(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    assert _origins.token_url(value) == expected
    monkeypatch.setenv("SMARTCAR_AUTH_ORIGIN", value)
    assert _origins.token_url() == expected


def test_empty_environment_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_API_ORIGIN", "")
    assert _origins.api_origin() == "https://api.smartcar.com"


@pytest.mark.parametrize(
    "bad", ["api.smartcar.com", "ftp://host", "http://", "http://h/?q=1", "http://h/#f"]
)
def test_bad_origins_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="api_origin"):
        _origins.api_origin(bad)


def test_bad_environment_origin_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_MANAGEMENT_API_ORIGIN", "management.smartcar.com")
    with pytest.raises(ValueError, match="management_origin"):
        _origins.management_origin()
