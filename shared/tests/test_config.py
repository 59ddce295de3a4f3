from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from modelkit import ConfigError, ModelConfig, load_config, parse_config
from modelkit.schema import render

MINIMAL = "name: churn\ndescription: d\nowner: team\nframework: sklearn\n"


def problems(text: str, **kwargs: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "models/churn/config.yaml", **kwargs)
    return [str(p) for p in info.value.problems]


def test_defaults_are_applied() -> None:
    config = parse_config(MINIMAL)
    assert config.serving.workers == 1
    assert config.serving.batching.max_latency_ms == 1000
    assert config.loadtest.max_p90_ms == 500
    assert config.deploy.targets == ["local"]
    assert config.deploy.environments["production"].approval is True
    assert config.deploy.environments["staging"].approval is False
    assert config.ci.ignore == ["notebooks/**", "**/*.ipynb", "**/*.md"]
    assert config.retrain.schedule is None
    assert config.port("staging") == 3100


def test_nested_defaults_fill_a_partial_section() -> None:
    config = parse_config(MINIMAL + "serving:\n  batching:\n    enabled: true\n")
    assert config.serving.batching.enabled is True
    assert config.serving.batching.max_batch_size is None
    assert config.serving.batch_rows == config.serving.max_rows == 1000  # a request is never split into chunks


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "serving:\n  batching:\n    max_latency_ms: -5\n",
            "models/churn/config.yaml:7: serving.batching.max_latency_ms: -5 is invalid: expected a value >= 10",
        ),
        (
            "serving:\n  max_rows: 1000\n  batching: {enabled: true, max_batch_size: 64}\n",
            "config.yaml:7: serving.batching: {'enabled': True, 'max_batch_size': 64} is invalid: "
            "max_batch_size (64) is below serving.max_rows (1000): BentoML would split a request",
        ),
        ("serving:\n  workers: '2'\n", "config.yaml:6: serving.workers: '2' is invalid: expected a valid integer"),
        ("serving:\n  workerz: 2\n", "serving.workerz: unknown key 'workerz'; expected one of: workers, concurrency"),
        ("loadtest:\n  max_error_rate: 1.5\n", "loadtest.max_error_rate: 1.5 is invalid: expected a value <= 1"),
        (
            "deploy:\n  targets: [local, heroku]\n",
            "deploy.targets[1]: 'heroku' is invalid: expected 'local', 'kubernetes'",
        ),
        ("deploy:\n  targets: []\n", "deploy.targets: [] is invalid: expected a list with at least 1 item"),
        (
            "deploy:\n  environments: {qa: {}}\n",
            "deploy.environments.qa: 'qa' is invalid: expected 'staging' or 'production'",
        ),
        (
            "deploy:\n  resources: {memory: lots}\n",
            "deploy.resources.memory: 'lots' is invalid: expected a string matching",
        ),
        (
            "deploy:\n  scaling: {min_replicas: 5, max_replicas: 2}\n",
            "deploy.scaling: {'min_replicas': 5, 'max_replicas': 2} is invalid: min_replicas (5) must not exceed",
        ),
        (
            "retrain:\n  schedule: '0 25 * * *'\n",
            "retrain.schedule: '0 25 * * *' is invalid: cron hour value 25 is outside 0-23",
        ),
        (
            "retrain:\n  schedule: daily\n",
            "retrain.schedule: 'daily' is invalid: cron expression 'daily' must have 5 fields",
        ),
        ("retrain:\n  direction: up\n", "retrain.direction: 'up' is invalid: expected 'maximize' or 'minimize'"),
        (
            "notify:\n  slack_channel: general\n",
            "notify.slack_channel: 'general' is invalid: expected a string matching",
        ),
        (
            "serving:\n  ports: {dev: 3000, staging: 3000}\n",
            "serving.ports: {'dev': 3000, 'staging': 3000} is invalid: dev, staging",
        ),
        ("serving:\n  tracing: yes please\n", "serving.tracing: 'yes please' is invalid: expected a valid boolean"),
    ],
)
def test_each_bad_value_names_file_line_key_value_and_expectation(snippet: str, expected: str) -> None:
    found = problems(MINIMAL + snippet)
    assert any(expected in p for p in found), found


def test_missing_required_keys_are_all_reported() -> None:
    found = problems("framework: sklearn\n")
    assert "models/churn/config.yaml:1: name: required key is missing" in found
    assert any(p.endswith("owner: required key is missing") for p in found)
    assert any(p.endswith("description: required key is missing") for p in found)


def test_malformed_yaml_names_the_line() -> None:
    (found,) = problems(MINIMAL + "serving:\n  workers: [1\n")
    assert found.startswith("models/churn/config.yaml:") and "invalid YAML" in found
    assert found.split(":")[1] in {"6", "7"}


def test_duplicate_keys_are_errors() -> None:
    found = problems(MINIMAL + "owner: other\n")
    assert "models/churn/config.yaml:5: owner: duplicate key; the later value would silently win" in found


def test_not_a_mapping() -> None:
    assert problems("") == ["models/churn/config.yaml:1: expected a mapping of keys, got an empty file"]
    assert problems("- a\n") == ["models/churn/config.yaml:1: expected a mapping of keys, got a list"]


def test_name_must_match_folder(tmp_path: Path) -> None:
    folder = tmp_path / "fraud"
    folder.mkdir()
    (folder / "config.yaml").write_text(MINIMAL)
    with pytest.raises(ConfigError, match=r"name: 'churn' is invalid: must equal the model folder name 'fraud'"):
        load_config(folder / "config.yaml", check_folder_name=True)
    assert load_config(folder / "config.yaml").name == "churn"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.yaml:1: file not found"):
        load_config(tmp_path / "config.yaml")


def test_committed_json_schema_is_up_to_date() -> None:
    committed = (Path(__file__).parents[1] / "src" / "modelkit" / "config.schema.json").read_text()
    assert committed == render(), "run: python -m modelkit.schema"


def test_json_schema_agrees_with_the_models() -> None:
    schema = json.loads(render())
    good = yaml.safe_load(MINIMAL + "serving: {workers: 2, batching: {enabled: true}}\n")
    jsonschema.validate(good, schema)
    for bad in ({"serving": {"workerz": 2}}, {"serving": {"workers": 0}}, {"framework": "spark"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**yaml.safe_load(MINIMAL), **bad}, schema)
    assert schema["properties"]["serving"]["$ref"].endswith("Serving")
    assert schema["$defs"]["Serving"]["properties"]["max_request_bytes"]["default"] == 1_048_576


def test_example_model_configs_are_valid() -> None:
    root = Path(__file__).parents[2]
    configs = sorted((root / "models").glob("*/config.yaml"))
    assert configs, "the repo ships at least the example model"
    for path in configs:
        assert isinstance(load_config(path, check_folder_name=True), ModelConfig)


# --- hostile YAML (issue 15.5): refused before anything walks it, in bounded time --------------------------------


def alias_bomb(levels: int) -> str:
    """``levels`` nested lists of nine aliases each: a few hundred bytes that expand to 9**levels values."""
    lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return MINIMAL + "\n".join(lines) + "\n"


def parse_in_subprocess(text: str, timeout: float = 60) -> list[str]:
    """parse_config(text) in a fresh interpreter, killed after ``timeout`` s: the time bound is the harness's."""
    script = (
        "import json, sys\n"
        "from modelkit import ConfigError, parse_config\n"
        "try:\n"
        "    parse_config(sys.stdin.read(), 'models/churn/config.yaml')\n"
        "except ConfigError as exc:\n"
        "    print(json.dumps([str(p) for p in exc.problems]))\n"
        "else:\n"
        "    print('[]')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], input=text, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return list(json.loads(result.stdout))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (alias_bomb(5), "models/churn/config.yaml:5: YAML anchor &x0 is not allowed in a model config"),
        (alias_bomb(7), "models/churn/config.yaml:5: YAML anchor &x0 is not allowed in a model config"),
        (alias_bomb(9), "models/churn/config.yaml:5: YAML anchor &x0 is not allowed in a model config"),
        (MINIMAL + "x: &a [*a]\n", "models/churn/config.yaml:5: YAML anchor &a is not allowed"),
        (MINIMAL + "serving:\n  ports: *p\n", "models/churn/config.yaml:6: YAML alias *p is not allowed"),
        (
            "base: &base {workers: 2}\n" + MINIMAL + "serving:\n  <<: *base\n",
            "models/churn/config.yaml:1: YAML anchor &base is not allowed",
        ),
    ],
    ids=["bomb-5", "bomb-7", "bomb-9", "cycle", "alias", "merge-key"],
)
def test_anchors_and_aliases_are_refused_quickly(text: str, expected: str) -> None:
    (found,) = parse_in_subprocess(text)
    assert found.startswith(expected), found
    assert "write the value out in full" in found


def test_ampersands_and_stars_in_values_are_not_anchors() -> None:
    config = parse_config(
        MINIMAL.replace("description: d", 'description: "fraud & risk, *all* of it"')
        + 'ci:\n  ignore: ["**/*.md", "data/*"]\n'
    )
    assert config.description == "fraud & risk, *all* of it"
    assert config.ci.ignore == ["**/*.md", "data/*"]


def test_python_tags_are_invalid_yaml() -> None:
    (found,) = problems(MINIMAL + "x: !!python/object/apply:os.system ['true']\n")
    assert found.startswith("models/churn/config.yaml:5: invalid YAML") and "constructor" in found


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    found = parse_in_subprocess(MINIMAL.replace("owner: team", "owner: " + "[" * 5000 + "]" * 5000))
    # PyYAML 6.0.4 stops at its nesting limit (invalid YAML); 6.0.3 loads it and the schema refuses it
    assert found[0].startswith("models/churn/config.yaml:3: "), found
    assert "nesting depth" in found[0] or found[0].startswith("models/churn/config.yaml:3: owner: [[[["), found


def test_duplicate_keys_in_nested_sections_name_the_path() -> None:
    found = problems(MINIMAL + "serving:\n  workers: 2\n  batching: {enabled: true}\n  workers: 3\n")
    assert "models/churn/config.yaml:8: serving.workers: duplicate key; the later value would silently win" in found


def test_a_long_value_is_shortened_in_the_message() -> None:
    (found,) = problems(MINIMAL + f"notify:\n  slack_channel: {'x' * 5000}\n")
    assert "notify.slack_channel: 'xxx" in found and "..." in found and len(found) < 400
