"""Reading bento.yaml and model.yaml from BentoML's store: an imported archive wrote them, so they are read as untrusted
text (no anchors or aliases, every value modelctl uses type-checked) and a bad one is an error naming the file."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelctl import bentostore
from modelctl.bentostore import StoreFileError
from modelctl.repo import Repo
from modelctl.state import State
from tests.test_archive import MODEL, MODEL_VERSION, VERSION, bento_yaml

BENTO = f"{MODEL}:{VERSION}"
MODEL_TAG = f"{MODEL}:{MODEL_VERSION}"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    return Repo(root)


def bento_file(repo: Repo) -> Path:
    return State.of(repo).bentoml_home / "bentos" / MODEL / VERSION / "bento.yaml"


def model_file(repo: Repo) -> Path:
    return State.of(repo).bentoml_home / "models" / MODEL / MODEL_VERSION / "model.yaml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def model_yaml(metrics: object) -> str:
    """A model.yaml as BentoML writes it, with the metadata the template's model_io.save() gives it."""
    info = {"name": MODEL, "version": MODEL_VERSION, "module": "bentoml.sklearn", "labels": {"owner": "ml-team"}}
    return yaml.safe_dump({**info, "metadata": {"metrics": metrics, "features": ["sepal_length"]}}, sort_keys=False)


def test_a_bento_as_bentoml_writes_it_is_read(repo: Repo) -> None:
    write(bento_file(repo), bento_yaml())
    write(model_file(repo), model_yaml({"accuracy": 0.96, "f1": 1}))
    assert bentostore.bento_exists(repo, BENTO)
    assert bentostore.model_tag_of(repo, BENTO) == MODEL_TAG
    assert bentostore.service_name(repo, BENTO) == "IrisClassifier"
    assert bentostore.bento_info(repo, BENTO)["labels"]["git_commit"] == "0123abcd"
    assert bentostore.model_metrics(repo, MODEL_TAG) == {"accuracy": 0.96, "f1": 1.0}


def test_what_the_store_does_not_hold_is_empty(repo: Repo) -> None:
    assert not bentostore.bento_exists(repo, BENTO)
    assert bentostore.model_tag_of(repo, BENTO) is None
    assert bentostore.model_metrics(repo, MODEL_TAG) == {}


def test_anchors_and_aliases_in_bento_yaml_are_refused_naming_the_file(repo: Repo) -> None:
    info = bento_yaml().replace("labels:\n", "labels: &labels\n", 1) + "copied: *labels\n"
    path = write(bento_file(repo), info)
    pattern = f"^cannot use {re.escape(str(path))}:\\d+: YAML anchor &labels is not allowed in this file"
    with pytest.raises(StoreFileError, match=pattern):
        bentostore.bento_exists(repo, BENTO)


def test_a_merge_key_bomb_in_model_yaml_is_refused_before_it_expands(repo: Repo) -> None:
    # yaml.safe_load spent 46 s and 820 MB on 8 levels (issue 20 item 12); 7 keep the old code's failure short.
    lines = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 8)]
    write(model_file(repo), model_yaml({"accuracy": 0.9}) + "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(StoreFileError, match="model.yaml:\\d+: YAML anchor &a0 is not allowed"):
        bentostore.model_metrics(repo, MODEL_TAG)
    assert time.monotonic() - started < 1


def _set(*keys: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        target: Any = info
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("labels", value=["git_commit"]), "labels: expected a mapping, got a list"),
        (_set("labels", "git_commit", value={"sha": 1}), "labels.git_commit: expected a string, got a mapping"),
        (_set("service", value=["service:X"]), "service: expected a string, got a list"),
        (_set("models", value="iris_classifier:x"), "models: expected a list, got a string"),
        (_set("services", value={"name": "X"}), "services: expected a list, got a mapping"),
        (_set("services", 0, value="IrisClassifier"), "services[0]: expected a mapping, got a string"),
        (_set("services", 0, "models", value=7), "services[0].models: expected a list, got an integer"),
        (_set("services", 0, "models", 0, value=MODEL_TAG), "services[0].models[0]: expected a mapping, got a string"),
        (_set("services", 0, "models", 0, "tag", value=[MODEL_TAG]), "services[0].models[0].tag: expected a string"),
        (_set("models", value=[{"tag": 1.5}]), "models[0].tag: expected a string, got a number"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_bento_yaml_value_of_the_wrong_type_names_file_and_key(
    repo: Repo, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    info = yaml.safe_load(bento_yaml())
    change(info)
    path = write(bento_file(repo), yaml.safe_dump(info, sort_keys=False))
    for read in (bentostore.bento_info, bentostore.model_tag_of, bentostore.bento_exists):
        with pytest.raises(StoreFileError, match=f"^{re.escape(f'{path}: {expected}')}"):
            read(repo, BENTO)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list\n", "expected a mapping, got a list"),
        ("", "expected a mapping, got nothing"),
        ("name: [unclosed\n", ":2: invalid YAML"),
    ],
    ids=["list", "empty", "invalid"],
)
def test_a_bento_yaml_that_is_no_mapping_is_an_error_not_a_missing_bento(repo: Repo, text: str, expected: str) -> None:
    path = write(bento_file(repo), text)
    with pytest.raises(StoreFileError, match=re.escape(str(path))) as info:
        bentostore.bento_exists(repo, BENTO)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"accuracy": "high"}, "metadata.metrics.accuracy: expected a number, got a string"),
        ({"accuracy": True}, "metadata.metrics.accuracy: expected a number, got a boolean"),
        ({"accuracy": [0.9]}, "metadata.metrics.accuracy: expected a number, got a list"),
        ([0.9], "metadata.metrics: expected a mapping, got a list"),
    ],
    ids=["string", "boolean", "list", "not-a-mapping"],
)
def test_model_metrics_of_the_wrong_type_name_file_and_key(repo: Repo, metrics: object, expected: str) -> None:
    path = write(model_file(repo), model_yaml(metrics))
    with pytest.raises(StoreFileError, match=f"^{re.escape(f'{path}: {expected}')}"):
        bentostore.model_metrics(repo, MODEL_TAG)
