"""`modelctl retrain --due`: one model's failure is printed and the next model still runs; no password is printed."""

from __future__ import annotations

import pytest

from tests.conftest import Cli

URL = "postgresql://ml:S3cr/etPw@db/iris"  # pragma: allowlist secret
MONDAY_3AM = "2026-11-30T03:10:00+00:00"  # the example model's schedule: "0 3 * * 1"


def test_a_failure_in_the_due_loop_is_printed_without_the_password(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # A data URL pasted into the store variable: the store refuses it, quoting it, before anything runs.
    monkeypatch.setenv("MODELCTL_STORE", URL)
    result = cli("retrain", "--due", "--at", MONDAY_3AM)
    assert result.code == 1
    assert "due at 2026-11-30T03:10:00+00:00: iris_classifier" in result.out
    assert "unsupported scheme 'postgresql'" in result.err, result.err
    assert "retraining failed for iris_classifier" in result.err
    assert "postgresql://ml:***@db/iris" in result.err
    assert "S3cr" not in result.out + result.err and "etPw" not in result.out + result.err


@pytest.mark.parametrize(
    "args",
    [
        ["--no-store", "--out", "o", "iris_classifier"],
        ["--champion-from", "c", "--out", "o", "iris_classifier"],
        ["--no-store", "--champion-from", "c", "--out", "o"],
        ["--no-store", "--champion-from", "c", "--out", "o", "--dry-run", "iris_classifier"],
    ],
)
def test_the_credential_free_run_needs_its_folders_and_one_model(cli: Cli, args: list[str]) -> None:
    result = cli("retrain", *args)
    assert result.code == 2, result.err
    assert "--no-store" in result.err or "name one MODEL" in result.err
