"""What `loadtest`, `fuzz` and `serve` refuse before starting anything or making a report folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli


def reports(monorepo: Path) -> list[Path]:
    folder = monorepo / "reports"
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loadtest", "iris_classifier", "--url", "http://127.0.0.1:1"], "cannot reach /readyz"),
        (["fuzz", "iris_classifier", "--url", "file:///etc/passwd"], "expected an http:// or https:// address"),
        (["loadtest", "iris_classifier", "--bento", "iris_classifier:nonexistent"], "is not in the store"),
        (["fuzz", "iris_classifier", "--bento", "../../../x:y"], "bento tag"),
        (["loadtest", "iris_classifier", "--bento", "other_model:v1"], "other_model"),
    ],
)
def test_bad_targets_are_usage_errors_and_leave_nothing(
    cli: Cli, monorepo: Path, args: list[str], message: str
) -> None:
    result = cli(*args)
    assert result.code == 2, result.err
    assert message in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert reports(monorepo) == []


@pytest.mark.parametrize(
    "args",
    [
        ["loadtest", "iris_classifier", "--duration", "-1"],
        ["loadtest", "iris_classifier", "--duration", "99999"],
        ["fuzz", "iris_classifier", "--examples", "0"],
        ["serve", "iris_classifier", "--port", "80"],
        ["serve", "iris_classifier", "--port", "99999"],
        ["retrain", "--plan", "--window", "-5"],
    ],
)
def test_out_of_range_numbers_are_refused_at_parse_time(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == 2 and "is outside" in result.err, result.err
