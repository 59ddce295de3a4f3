"""Train iris_classifier and save it to the BentoML model store.

    python train.py            # from this folder; prints the model tag and metrics

The steps are plain functions so the notebook and the retraining pipeline call the same code:
load_data() -> build_model() -> fit() -> evaluate() -> model_io.save().
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import model_io
from api_schema import CLASS_NAMES, FEATURES
from modelkit.training import git_commit, load_sql, save_reference

SEED = 42
HOLDOUT = 0.25
# Fresh data for (re)training: the query in queries/training.sql, run against this SQLAlchemy URL, e.g.
# postgresql://reader@warehouse:5432/db (read as columns) or sqlite:////data/iris_classifier.db
# (requirements.txt has both drivers). Unset: the dataset that ships with scikit-learn.
DATA_URL_ENV = "IRIS_CLASSIFIER_DATA_URL"
QUERY = Path(__file__).resolve().parent / "queries" / "training.sql"


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # shape (n_rows, len(FEATURES)), float64
    target: np.ndarray  # shape (n_rows,), class ids into CLASS_NAMES


def load_data() -> Dataset:
    """The training data: the SQL query when DATA_URL_ENV is set, else the dataset packaged with scikit-learn."""
    url = os.environ.get(DATA_URL_ENV)
    if url:
        return Dataset(*load_sql(url, QUERY, FEATURES, n_classes=len(CLASS_NAMES)))
    features, target = load_iris(return_X_y=True)
    return Dataset(np.asarray(features, dtype=np.float64), np.asarray(target, dtype=np.int64))


def split(data: Dataset, seed: int = SEED) -> tuple[Dataset, Dataset]:
    """A stratified (train, holdout) split."""
    x_train, x_test, y_train, y_test = train_test_split(
        data.features, data.target, test_size=HOLDOUT, random_state=seed, stratify=data.target
    )
    return Dataset(x_train, y_train), Dataset(x_test, y_test)


def build_model() -> Any:
    """An unfitted model."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))


def fit(model: Any, train: Dataset) -> Any:
    """Fit ``model`` on ``train`` and return it."""
    return model.fit(train.features, train.target)


def evaluate(model: Any, holdout: Dataset) -> dict[str, float]:
    """Metrics on ``holdout``; `config.yaml` `retrain.metric` names one of these."""
    probabilities = model_io.predict(model, holdout.features)
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(CLASS_NAMES)))
    return {
        "accuracy": round(float(accuracy_score(holdout.target, predicted)), 6),
        "f1_macro": round(float(f1_score(holdout.target, predicted, average="macro")), 6),
        "log_loss": round(float(log_loss(holdout.target, probabilities, labels=labels)), 6),
    }


def train(data: Dataset | None = None) -> tuple[str, dict[str, float]]:
    """Train on ``data`` (default: load_data()), save a new model version; return (tag, metrics)."""
    train_set, holdout = split(data if data is not None else load_data())
    model = fit(build_model(), train_set)
    metrics = evaluate(model, holdout)
    labels = {"framework": "sklearn", "git_commit": git_commit()}
    tag = model_io.save(model, metrics, labels)
    remember(tag, model, train_set)
    return tag, metrics


def remember(tag: str, model: Any, data: Dataset) -> None:
    """Keep what version ``tag`` learned from beside it: `modelctl monitor` measures drift against it."""
    output = model_io.predict(model, data.features)
    save_reference(tag, data.features, output, names=FEATURES, classes=CLASS_NAMES, target=data.target)


def main() -> None:
    tag, metrics = train()
    print(json.dumps({"model": tag, "metrics": metrics, "features": len(FEATURES)}))


if __name__ == "__main__":
    main()
