"""The `monitor:` section of config.yaml (issue 22): defaults, and a clear error for each kind of mistake."""

from __future__ import annotations

import pytest

from modelkit.loader import ConfigError, parse_config

BASE = "name: m\ndescription: d\nowner: o\nframework: sklearn\n"


def test_defaults_log_everything_and_judge_with_scipy_tests() -> None:
    monitor = parse_config(BASE).monitor
    assert (monitor.sample_rate, monitor.numeric_test, monitor.categorical_test) == (1.0, "ks", "chi2")
    assert (monitor.threshold, monitor.drift_share, monitor.min_rows, monitor.window) == (0.01, 0.5, 200, "24h")
    assert monitor.sensitive == {} and not monitor.retrain_on_drift
    assert monitor.smoke.environments == ["dev", "staging"]  # production gets synthetic traffic only when listed


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ("{sample_rate: 1.5}", "monitor.sample_rate"),
        ("{sensitive: {email: encrypt}}", "monitor.sensitive.email"),
        ("{sensitive: {'bad name': drop}}", "monitor.sensitive"),
        ("{window: yesterday}", "monitor.window"),
        ("{schedule: '61 * * * *'}", "monitor.schedule"),
        ("{numeric_test: t}", "monitor.numeric_test"),
        ("{smoke: {environments: [qa]}}", "monitor.smoke.environments"),
        ("{min_rows: 0}", "monitor.min_rows"),
        ("{thresold: 0.05}", "monitor.thresold"),
    ],
)
def test_a_mistake_is_named(section: str, where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"{BASE}monitor: {section}\n")
    assert where in str(caught.value)
