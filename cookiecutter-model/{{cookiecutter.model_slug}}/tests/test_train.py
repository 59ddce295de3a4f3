from __future__ import annotations

import bentoml

import model_io
import train
from api_schema import CLASS_NAMES, FEATURES

MIN_ACCURACY = 0.85


def test_data_matches_the_api_contract() -> None:
    data = train.load_data()
    assert data.features.shape[1] == len(FEATURES)
    assert set(data.target.tolist()) == set(range(len(CLASS_NAMES)))


def test_training_reaches_the_minimum_metric(trained: tuple[str, dict[str, float]]) -> None:
    _, metrics = trained
    assert metrics["accuracy"] >= MIN_ACCURACY, metrics
    assert 0 <= metrics["log_loss"] < 1.0, metrics


def test_saved_model_is_labelled_and_loads(trained: tuple[str, dict[str, float]]) -> None:
    tag, metrics = trained
    stored = bentoml.models.get(tag)
    assert stored.info.labels["framework"] == "{{ cookiecutter.framework }}"
    assert stored.info.labels["git_commit"]
    assert stored.info.metadata["metrics"] == metrics
    model = model_io.load(stored)
    _, holdout = train.split(train.load_data())
    assert train.evaluate(model, holdout) == metrics


def test_each_training_run_is_a_new_version(trained: tuple[str, dict[str, float]]) -> None:
    tag, _ = trained
    second, _ = train.train()
    assert second != tag
    assert {str(m.tag) for m in bentoml.models.list(model_io.NAME)} >= {tag, second}
