"""Passwords in URLs and secret values never reach messages, logs or notifications."""

from __future__ import annotations

import pytest

from modelctl.redact import redact


def test_url_passwords_are_masked() -> None:
    url = "postgresql+psycopg://scott:tiger-42@db.internal:5432/prod"  # pragma: allowlist secret
    text = f"query failed at {url} (no rows)"
    assert redact(text) == "query failed at postgresql+psycopg://scott:***@db.internal:5432/prod (no rows)"
    assert redact("s3://bucket/key and https://example.com/a@b and sqlite:////tmp/x.db") == (
        "s3://bucket/key and https://example.com/a@b and sqlite:////tmp/x.db"
    )


def test_secret_values_from_the_environment_are_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_DATA_URL", "mysql://u:hunter2pw@h/db")  # pragma: allowlist secret
    webhook = "https://hooks.slack.com/services/T0/B0/abcdefghijkl"  # pragma: allowlist secret
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook)
    text = f"password hunter2pw was rejected; posting to {webhook}"
    assert "hunter2pw" not in redact(text) and "abcdefghijkl" not in redact(text)
