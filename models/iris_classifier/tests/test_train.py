from __future__ import annotations

from pathlib import Path

import bentoml
import pytest

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
    assert stored.info.labels["framework"] == "sklearn"
    assert stored.info.labels["git_commit"]
    assert stored.info.metadata["metrics"] == metrics
    model = model_io.load(stored)
    _, holdout = train.split(train.load_data())
    assert train.evaluate(model, holdout) == metrics


def test_sql_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import create_engine, text

    packaged = train.load_data()
    url = f"sqlite:///{tmp_path / 'data.db'}"
    engine = create_engine(url)
    columns = ", ".join(f"{name} REAL" for name in FEATURES)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {model_io.NAME}_training ({columns}, target INTEGER)"))
        placeholders = ", ".join(f":{name}" for name in (*FEATURES, "target"))
        rows = [
            {**dict(zip(FEATURES, map(float, x), strict=True)), "target": int(y)}
            for x, y in zip(packaged.features, packaged.target, strict=True)
        ]
        connection.execute(text(f"INSERT INTO {model_io.NAME}_training VALUES ({placeholders})"), rows)
    engine.dispose()
    monkeypatch.setenv(train.DATA_URL_ENV, url)
    loaded = train.load_data()
    assert loaded.features.shape == packaged.features.shape
    assert (loaded.target == packaged.target).all()


def test_sql_source_errors_name_the_problem(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'bad.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {model_io.NAME}_training (wrong REAL, target INTEGER)"))
        connection.execute(text(f"INSERT INTO {model_io.NAME}_training VALUES (1.0, 0)"))
    engine.dispose()
    with pytest.raises(ValueError, match="must return columns"):
        train.load_sql(url)


def test_each_training_run_is_a_new_version(trained: tuple[str, dict[str, float]]) -> None:
    tag, _ = trained
    second, _ = train.train()
    assert second != tag
    assert {str(m.tag) for m in bentoml.models.list(model_io.NAME)} >= {tag, second}
