"""Champion/challenger decisions and schedules (the pure parts of `modelctl retrain`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelctl.delivery.retrain import StepError, decide
from modelctl.schedules import is_due
from modelkit import parse_config

BASE = "name: m\ndescription: d\nowner: o\nframework: sklearn\n"


def config(
    metric: str = "accuracy", direction: str = "maximize", min_improvement: float = 0.01, floor: float | None = None
) -> object:
    extra = "" if floor is None else f", min_metric: {floor}"
    return parse_config(
        BASE + f"retrain: {{metric: {metric}, direction: {direction}, min_improvement: {min_improvement}{extra}}}\n"
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
    with pytest.raises(StepError, match="retrain.metric 'auc' is not among the metrics"):
        decide(config("auc"), {"accuracy": 0.9}, {"accuracy": 0.8})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_candidate_fails_the_run(value: float) -> None:
    with pytest.raises(StepError, match="not a finite number; nothing promoted") as info:
        decide(config(), {"accuracy": value}, {"accuracy": 0.8})
    assert info.value.step == "evaluate"


def test_a_non_finite_champion_can_be_replaced() -> None:
    decision = decide(config(), {"accuracy": 0.7}, {"accuracy": float("nan")})
    assert decision.promote and "not finite" in decision.reason


@pytest.mark.parametrize(
    ("direction", "floor", "score", "champion", "promote"),
    [
        ("maximize", 0.9, 0.85, None, False),  # a first run must still pass the floor
        ("maximize", 0.9, 0.95, None, True),
        ("maximize", 0.9, 0.89, 0.5, False),  # better than a poor champion, still under the floor
        ("minimize", 30.0, 31.0, None, False),  # for rmse the floor is a ceiling
        ("minimize", 30.0, 25.0, 40.0, True),
    ],
)
def test_the_absolute_floor(direction: str, floor: float, score: float, champion: float | None, promote: bool) -> None:
    metric = "accuracy" if direction == "maximize" else "rmse"
    decision = decide(
        config(metric, direction, floor=floor), {metric: score}, None if champion is None else {metric: champion}
    )
    assert decision.promote is promote, decision.reason
    if not promote:
        assert "misses retrain.min_metric" in decision.reason


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
