from __future__ import annotations

from pathlib import Path

import pytest

from modelctl.delivery.gate import evaluate, markdown, read_summary
from modelctl.errors import ModelctlError
from modelkit import parse_config

CONFIG = parse_config(
    "name: m\ndescription: d\nowner: o\nframework: sklearn\nloadtest: {max_p90_ms: 100, max_error_rate: 0.01}\n"
)


def row(requests: int, failures: int, p90: float | None) -> dict[str, object]:
    return {"requests": requests, "failures": failures, "rps": 100.5, "p50_ms": 20, "p90_ms": p90, "p99_ms": 150}


def test_pass() -> None:
    verdict = evaluate(row(1000, 5, 90), CONFIG)
    assert verdict.passed and verdict.error_rate == 0.005 and verdict.breaches == []


def test_p90_breach_names_measured_value_and_limit() -> None:
    verdict = evaluate(row(1000, 0, 140), CONFIG)
    assert not verdict.passed
    assert verdict.breaches == ["P90 latency 140 ms exceeds loadtest.max_p90_ms 100 ms"]


def test_error_rate_breach() -> None:
    verdict = evaluate(row(1000, 20, 50), CONFIG)
    assert verdict.breaches == ["error rate 2.00% (20/1000) exceeds loadtest.max_error_rate 1.00%"]


def test_no_successful_request() -> None:
    verdict = evaluate(row(0, 0, None), CONFIG)
    assert not verdict.passed and "no request completed" in verdict.breaches[0]


def test_read_summary(tmp_path: Path) -> None:
    path = tmp_path / "locust_summary.json"
    path.write_text('{"requests": 10, "failures": 0, "p90_ms": 30}')
    assert read_summary(path)["p90_ms"] == 30
    path.write_text("[1]")
    with pytest.raises(ModelctlError, match="is not a JSON object"):
        read_summary(path)
    with pytest.raises(ModelctlError, match="is missing: Locust did not finish"):
        read_summary(tmp_path / "absent.json")


def test_markdown_summary(tmp_path: Path) -> None:
    text = markdown("m", "m:v1", evaluate(row(1000, 20, 140), CONFIG), tmp_path)
    assert text.startswith("### Load test FAIL: `m` (`m:v1`)")
    assert "| P90 latency | 140 ms | 100 ms |" in text and "- P90 latency 140 ms exceeds" in text
