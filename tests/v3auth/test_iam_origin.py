"""The application-token origin: argument, then SMARTCAR_IAM_ORIGIN (our name), then the default."""

from __future__ import annotations

import pytest
from v3auth_support import CLIENT_ID, CLIENT_SECRET

import smartcar_async as sc
from smartcar_async import _origins


def test_the_default_is_smartcars_iam() -> None:
    assert _origins.iam_token_url() == "https://iam.smartcar.com/oauth2/token"
    source = sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET)
    assert source.token_url == "https://iam.smartcar.com/oauth2/token"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://iam.local", "http://iam.local/oauth2/token"),
        ("http://iam.local/", "http://iam.local/oauth2/token"),
        ("http://iam.local/oauth2/token", "http://iam.local/oauth2/token"),
        ("https://proxy.local/iam/", "https://proxy.local/iam/oauth2/token"),
    ],
)
def test_origin_or_token_url(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    assert _origins.iam_token_url(value) == expected
    monkeypatch.setenv("SMARTCAR_IAM_ORIGIN", value)
    assert _origins.iam_token_url() == expected
    assert sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET).token_url == expected


def test_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_IAM_ORIGIN", "http://from-env.local")
    source = sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin="http://from-arg.local")
    assert source.token_url == "http://from-arg.local/oauth2/token"


def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTCAR_IAM_ORIGIN", "")
    assert _origins.iam_token_url() == "https://iam.smartcar.com/oauth2/token"


@pytest.mark.parametrize(
    "bad", ["iam.smartcar.com", "ftp://iam.local", "http://", "http://h/?q=1", "http://h/#f"]
)
def test_bad_origins_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    with pytest.raises(ValueError, match="iam_origin"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=bad)
    monkeypatch.setenv("SMARTCAR_IAM_ORIGIN", bad)
    with pytest.raises(ValueError, match="iam_origin"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET)


def test_a_non_string_origin_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="iam_origin"):
        sc.AppTokenSource(CLIENT_ID, CLIENT_SECRET, iam_origin=42)  # type: ignore[arg-type]
