from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelctl.delivery.gate import (
    PLATFORM_USER,
    GateResult,
    bounds_of,
    evaluate,
    markdown,
    not_passed,
    passed_summary,
    read_summary,
    save_pass,
)
from modelctl.errors import ModelctlError
from modelctl.model import Model
from modelctl.repo import Repo
from modelctl.state import State
from modelkit import parse_config
from tests.conftest import MODEL

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


def test_markdown_of_an_exploratory_run_says_it_is_never_a_pass(tmp_path: Path) -> None:
    text = markdown("m", "m:v1", evaluate(row(1000, 0, 40), CONFIG), tmp_path, exploratory="models/m/locustfile.py")
    assert text.startswith("### Exploratory load test PASS: `m` (`m:v1`)")
    assert "`models/m/locustfile.py`: not a gate verdict, never recorded as a pass" in text


def test_bounds_of_keeps_plain_numeric_bounds() -> None:
    schema = {
        "properties": {
            "size": {"type": "number", "minimum": 0, "maximum": 10},
            "legs": {"type": "integer", "exclusiveMinimum": 0},
            "name": {"type": "string"},
        }
    }
    assert bounds_of(json.dumps({"schema": schema}), "api_schema.py") == {
        "size": {"integer": False, "minimum": 0.0, "maximum": 10.0, "exclusive": False},
        "legs": {"integer": True, "minimum": 0.0, "maximum": None, "exclusive": True},
    }
    assert bounds_of('{"schema": null, "reason": "ImportError: no api_schema"}', "api_schema.py") == {}


@pytest.mark.parametrize(
    "line",
    [
        "{not json",
        '{"no_schema": 1}',
        '{"schema": [1, 2]}',
        '{"schema": {"properties": ["size"]}}',
        '{"schema": {"properties": {"size": "number"}}}',
        '{"schema": {"properties": {"size": {"type": "number", "minimum": "low"}}}}',
        '{"schema": {"properties": {"size": {"type": "number", "maximum": NaN}}}}',
    ],
)
def test_bounds_of_refuses_what_is_not_a_request_schema(line: str) -> None:
    with pytest.raises(ModelctlError, match="models/m/api_schema.py: Features.model_json_schema"):
        bounds_of(line, "models/m/api_schema.py")


def gate_result(model: Model, locustfile: str | None, passed: bool = True) -> GateResult:
    verdict = evaluate(row(1000, 0, 40 if passed else 400), CONFIG)
    user = PLATFORM_USER if locustfile is None else f"models/{MODEL}/{locustfile}"
    summary = {"model": model.name, "bento": f"{MODEL}:v1", "locust_user": user, **verdict.as_dict()}
    return GateResult(verdict, Path("reports"), f"{MODEL}:v1", summary, locustfile)


def test_only_a_passing_run_of_the_gates_own_user_is_recorded(monorepo: Path) -> None:
    model = Repo(monorepo).model(MODEL)
    with pytest.raises(ModelctlError, match="exploratory: it never records a gate pass"):
        save_pass(model, f"{MODEL}:v1", gate_result(model, "locustfile.py"))
    with pytest.raises(ModelctlError, match="did not pass the load-test gate"):
        save_pass(model, f"{MODEL}:v1", gate_result(model, None, passed=False))
    assert State.of(model.repo).gate_result(f"{MODEL}:v1") is None
    assert not_passed(model, f"{MODEL}:v1") == "the load-test gate"

    save_pass(model, f"{MODEL}:v1", gate_result(model, None))
    assert passed_summary(model, f"{MODEL}:v1") is not None and not_passed(model, f"{MODEL}:v1") is None


def test_a_pass_recorded_before_the_gate_ran_its_own_user_is_not_a_pass(monorepo: Path) -> None:
    model = Repo(monorepo).model(MODEL)
    # What modelctl recorded while the model's locustfile shared Locust's process (issue #20, item 3).
    State.of(model.repo).put_gate_result(f"{MODEL}:old", {"bento": f"{MODEL}:old", "passed": True, "p90_ms": 1})
    assert passed_summary(model, f"{MODEL}:old") is None
    assert "predates the gate's own Locust user" in (not_passed(model, f"{MODEL}:old") or "")
