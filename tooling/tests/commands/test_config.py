from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from modelkit import load_config, parse_config
from modelkit.config import ModelConfig
from tests.conftest import Cli


def effective(config: ModelConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["serving"]["batching"]["max_batch_size"] = config.serving.batch_rows
    return data


def test_prints_the_effective_config_as_yaml(cli: Cli, monorepo: Path) -> None:
    path = monorepo / "models/iris_classifier/config.yaml"
    result = cli("config", "iris_classifier").assert_success()
    printed = yaml.safe_load(result.out)
    assert printed == effective(load_config(path))
    # config.yaml lists what the model sets; the rest comes from the schema and is printed here
    assert "workers" not in path.read_text() and printed["serving"]["workers"] == 1
    assert printed["serving"]["batching"]["enabled"] is True
    assert printed["serving"]["batching"]["max_batch_size"] == 1000  # unset: what is in effect (max_rows), not null
    assert printed["deploy"]["environments"]["production"]["approval"] is True
    reparsed = parse_config(result.out)  # what it prints is a valid config too, with the same effect
    assert effective(reparsed) == printed and reparsed.serving.batch_rows == load_config(path).serving.batch_rows


def test_json(cli: Cli, monorepo: Path) -> None:
    result = cli("config", "iris_classifier", "--json").assert_success()
    assert json.loads(result.out) == effective(load_config(monorepo / "models/iris_classifier/config.yaml"))


def test_text_is_printed_as_is(cli: Cli, monorepo: Path) -> None:
    path = monorepo / "models/iris_classifier/config.yaml"
    description = "[bold]not markup[/bold] :smile: {{ 7*191 }} 😀"
    path.write_text(path.read_text().replace('description: "', f'description: "{description} ', 1))
    as_json = cli("config", "iris_classifier", "--json").assert_success().out
    assert json.loads(as_json)["description"].startswith(description)
    as_yaml = cli("config", "iris_classifier").assert_success().out
    assert yaml.safe_load(as_yaml)["description"].startswith(description)


def test_unknown_model_is_exit_2(cli: Cli) -> None:
    result = cli("config", "nope")
    assert result.code == 2 and "unknown model 'nope'" in result.err


def test_invalid_config_is_exit_2_naming_file_and_line(cli: Cli, monorepo: Path) -> None:
    path = monorepo / "models/iris_classifier/config.yaml"
    path.write_text(path.read_text() + "extra: &x 1\n")
    result = cli("config", "iris_classifier")
    assert result.code == 2
    assert f"{path}:" in result.err and "anchor &x is not allowed" in result.err
