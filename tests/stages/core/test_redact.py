"""Secrets in URIs: passwords and credential query parameters never reach a message (issue #22, item 4)."""

from __future__ import annotations

import pytest

from stages.core.redact import known_secrets, mask_secrets, redact_uri


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://host/mlflow?token=abc123", "https://host/mlflow?token=***"),
        ("https://host/x?a=1&access_token=t0k3n&b=2", "https://host/x?a=1&access_token=***&b=2"),
        ("https://host/x?API_KEY=k&sig=s", "https://host/x?API_KEY=***&sig=***"),
        ("https://u:pw@host/x?token=t", "https://u:***@host/x?token=***"),
        ("https://host/x?page=2", "https://host/x?page=2"),
    ],
)
def test_redact_uri_masks_credential_query_parameters(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


def test_mask_secrets_masks_a_token_in_a_uri_inside_any_text() -> None:
    text = "API request to https://host/api/2.0/mlflow/runs?token=s3cr3tvalue&x=1 failed"
    assert mask_secrets(text) == "API request to https://host/api/2.0/mlflow/runs?token=***&x=1 failed"


def test_the_tracking_uri_query_token_is_a_known_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://host/mlflow?token=s3cr3tvalue")
    assert "s3cr3tvalue" in known_secrets()
    # printed without its URI (MLflow echoes bare values too), the value is still masked
    assert mask_secrets("bad credential s3cr3tvalue") == "bad credential ***"


@pytest.mark.parametrize(
    "text",
    [
        "GET https://gitlab.example/api/v4/projects?private_token=glpat-AbCdEf123456 failed",
        "http://host/x?refresh_token=r3fr3sh-value-123&page=2",
        "http://host/x?X-Api-Key=abcdef0123456789",
        "https://host/x?client_secret=abc123xyz&session_token=s3ss10n99",
        "https://ghp_0123456789abcdefghijklmnopqrstuvwxyz@github.com/org/repo.git",
        "http://glpat-AbCdEf123456xyz0987@gitlab.example/api",
    ],
)
def test_every_common_credential_parameter_and_a_user_info_token_are_masked(text: str) -> None:
    masked = mask_secrets(text)
    for secret in (
        "glpat-AbCdEf123456",
        "r3fr3sh-value-123",
        "abcdef0123456789",
        "abc123xyz",
        "s3ss10n99",
        "ghp_0123456789",
        "glpat-AbCdEf123456xyz0987",
    ):
        assert secret not in masked, masked
    assert "***" in masked


def test_a_short_user_name_without_password_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mask_secrets("postgresql://postgres@/db?host=/tmp") == "postgresql://postgres@/db?host=/tmp"
    assert (
        redact_uri("https://ghp_0123456789abcdefghijklmnopqrstuvwxyz@github.com/o/r")
        == "https://***@github.com/o/r"
    )
