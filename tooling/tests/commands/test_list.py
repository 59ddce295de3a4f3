from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli


def test_lists_every_model_with_its_settings(cli: Cli, monorepo: Path) -> None:
    result = cli("list").assert_success()
    assert "iris_classifier" in result.out
    assert "sklearn" in result.out and "0 3 * * 1" in result.out


def test_json(cli: Cli) -> None:
    rows = json.loads(cli("list", "--json").assert_success().out)
    assert rows == [
        {
            "name": "iris_classifier",
            "framework": "sklearn",
            "task": "classification",
            "owner": "data-science",
            "targets": ["local"],
            "retrain": "0 3 * * 1",
        }
    ]


def test_a_second_model_of_another_framework(cli: Cli, monorepo: Path) -> None:
    from tests.conftest import bake_example

    bake_example(monorepo / "models", model_name="Fraud Scorer", framework="xgboost")
    rows = json.loads(cli("list", "--json").assert_success().out)
    assert [(r["name"], r["framework"]) for r in rows] == [("fraud_scorer", "xgboost"), ("iris_classifier", "sklearn")]


def test_malformed_yaml_is_exit_2_with_file_and_line(cli: Cli, monorepo: Path) -> None:
    config = monorepo / "models/iris_classifier/config.yaml"
    config.write_text(config.read_text() + "oops: [\n")
    result = cli("list")
    assert result.code == 2
    assert f"{config}:" in result.err and "invalid YAML" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_outside_a_monorepo_is_exit_2(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCTL_ROOT", str(tmp_path / "elsewhere"))
    result = cli("list")
    assert result.code == 2 and "not inside a model monorepo" in result.err
