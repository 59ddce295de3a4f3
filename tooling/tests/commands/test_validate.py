from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def test_all_valid(cli: Cli) -> None:
    result = cli("validate").assert_success()
    assert "ok" in result.out and "iris_classifier/config.yaml" in result.out


def test_invalid_value_is_exit_1_naming_key_path(cli: Cli, monorepo: Path) -> None:
    config = monorepo / "models/iris_classifier/config.yaml"
    config.write_text(config.read_text().replace("enabled: true", "enabled: true\n    max_latency_ms: -5"))
    result = cli("validate", "iris_classifier")
    assert result.code == 1
    assert "serving.batching.max_latency_ms: -5 is invalid: expected a value >= 10" in result.err
    assert f"{config}:" in result.err


def test_unknown_model_is_exit_2(cli: Cli) -> None:
    result = cli("validate", "nope")
    assert result.code == 2
    assert "unknown model 'nope'" in result.err and "iris_classifier" in result.err


def test_missing_file_is_exit_2(cli: Cli, monorepo: Path) -> None:
    result = cli("validate", "--files", str(monorepo / "models/ghost/config.yaml"))
    assert result.code == 2 and "ghost/config.yaml:1: file not found" in result.err


def test_malformed_yaml_is_exit_2(cli: Cli, monorepo: Path) -> None:
    config = monorepo / "models/iris_classifier/config.yaml"
    config.write_text("name: [unclosed\n")
    result = cli("validate")
    assert result.code == 2 and "invalid YAML" in result.err


def test_folder_name_must_match(cli: Cli, monorepo: Path) -> None:
    (monorepo / "models/iris_classifier").rename(monorepo / "models/iris_v2")
    result = cli("validate")
    assert result.code == 1
    assert "must equal the model folder name 'iris_v2'" in result.err


def test_two_models_sharing_a_port_are_refused_naming_both_files(cli: Cli, monorepo: Path) -> None:
    import yaml

    from tests.conftest import bake_example

    bake_example(monorepo / "models", model_name="Fraud Scorer", framework="xgboost")
    assert cli("validate").code == 0, "a freshly baked model gets its own ports"
    iris = yaml.safe_load((monorepo / "models/iris_classifier/config.yaml").read_text())
    path = monorepo / "models/fraud_scorer/config.yaml"
    config = yaml.safe_load(path.read_text())
    config.setdefault("serving", {})["ports"] = {
        "dev": 39001,
        "staging": iris_port(iris, "staging"),
        "production": 39003,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    for args in (("validate",), ("validate", "fraud_scorer"), ("validate", "--files", str(path))):
        result = cli(*args)
        assert result.code == 1, args
        assert f"port {iris_port(iris, 'staging')} is used by" in result.err
        assert "models/fraud_scorer/config.yaml (serving.ports.staging)" in result.err
        assert "models/iris_classifier/config.yaml (serving.ports.staging)" in result.err


def iris_port(config: dict, env: str) -> int:
    return int(((config.get("serving") or {}).get("ports") or {}).get(env) or {"staging": 3100}[env])
