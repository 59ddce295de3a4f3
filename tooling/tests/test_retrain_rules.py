"""Champion/challenger decisions and schedules (the pure parts of `modelctl retrain`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelctl.errors import ModelctlError
from modelctl.retrain import decide, is_due
from modelkit import parse_config

BASE = "name: m\ndescription: d\nowner: o\nframework: sklearn\n"


def config(metric: str = "accuracy", direction: str = "maximize", min_improvement: float = 0.01) -> object:
    return parse_config(
        BASE + f"retrain: {{metric: {metric}, direction: {direction}, min_improvement: {min_improvement}}}\n"
    )


@pytest.mark.parametrize(
    ("direction", "candidate", "champion", "promote"),
    [
        ("maximize", 0.95, 0.90, True),
        ("maximize", 0.905, 0.90, False),
        ("maximize", 0.80, 0.90, False),
        ("minimize", 0.20, 0.30, True),
        ("minimize", 0.295, 0.30, False),
        ("minimize", 0.40, 0.30, False),
    ],
)
def test_promote_only_when_better_by_the_minimum(
    direction: str, candidate: float, champion: float, promote: bool
) -> None:
    metric = "accuracy" if direction == "maximize" else "log_loss"
    decision = decide(config(metric, direction), {metric: candidate}, {metric: champion})
    assert decision.promote is promote
    assert ("not better" in decision.reason) is (not promote)


def test_no_champion_promotes() -> None:
    decision = decide(config(), {"accuracy": 0.5}, None)
    assert decision.promote and "no live champion" in decision.reason


def test_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(ModelctlError, match="retrain.metric 'auc' is not among the metrics"):
        decide(config("auc"), {"accuracy": 0.9}, {"accuracy": 0.8})


def test_due_within_the_window() -> None:
    monday_3am = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    window = timedelta(minutes=90)
    assert is_due("0 3 * * 1", monday_3am, window)
    assert is_due("0 3 * * 1", monday_3am + timedelta(minutes=89), window)
    assert not is_due("0 3 * * 1", monday_3am + timedelta(minutes=91), window)
    assert not is_due("0 3 * * 1", monday_3am - timedelta(minutes=1), window)
    assert not is_due("0 3 * * 1", monday_3am + timedelta(days=1), window)


def test_cli_usage(cli: object) -> None:
    from tests.conftest import Result

    run = cli  # the in-process CLI fixture
    result: Result = run("retrain")  # type: ignore[operator]
    assert result.code == 2 and "name one MODEL, or use --due" in result.err
    result = run("retrain", "--due", "--at", "next monday")  # type: ignore[operator]
    assert result.code == 2 and "is not an ISO time" in result.err
    result = run("retrain", "--due", "--at", "2026-11-29T03:30:00+00:00")  # type: ignore[operator]
    assert result.code == 0 and "due at 2026-11-29T03:30:00+00:00: none" in result.out
