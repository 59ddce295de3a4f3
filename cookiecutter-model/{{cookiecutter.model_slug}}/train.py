{%- set regression = cookiecutter.task == "regression" -%}
{%- set dataset = "diabetes" if regression else cookiecutter.__dataset -%}
"""Train {{ cookiecutter.model_slug }} and save it to the BentoML model store.

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
{%- if cookiecutter.framework == "pytorch" %}
import torch
{%- elif cookiecutter.framework == "lightgbm" %}
from lightgbm import {{ "LGBMRegressor" if regression else "LGBMClassifier" }}
{%- endif %}
from sklearn.datasets import load_{{ dataset }}
{%- if cookiecutter.framework == "sklearn" %}
from sklearn.linear_model import {{ "Ridge" if regression else "LogisticRegression" }}
{%- endif %}
{%- if regression %}
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
{%- else %}
from sklearn.metrics import accuracy_score, f1_score, log_loss
{%- endif %}
from sklearn.model_selection import train_test_split
{%- if cookiecutter.framework == "sklearn" %}
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
{%- elif cookiecutter.framework == "xgboost" %}
from xgboost import {{ "XGBRegressor" if regression else "XGBClassifier" }}
{%- endif %}

import model_io
from api_schema import {% if not regression %}CLASS_NAMES, {% endif %}FEATURES
from modelkit.training import git_commit, load_sql

SEED = 42
HOLDOUT = 0.25
# Fresh data for (re)training: the query in queries/training.sql, run against this SQLAlchemy URL, e.g.
# postgresql://reader@warehouse:5432/db (read as columns) or sqlite:////data/{{ cookiecutter.model_slug }}.db
# (requirements.txt has both drivers). Unset: the dataset that ships with scikit-learn.
DATA_URL_ENV = "{{ cookiecutter.model_slug.upper() }}_DATA_URL"
QUERY = Path(__file__).resolve().parent / "queries" / "training.sql"


@dataclass(frozen=True)
class Dataset:
    features: np.ndarray  # shape (n_rows, len(FEATURES)), float64
{%- if regression %}
    target: np.ndarray  # shape (n_rows,), float64: disease progression one year after baseline
{%- else %}
    target: np.ndarray  # shape (n_rows,), class ids into CLASS_NAMES
{%- endif %}


def load_data() -> Dataset:
    """The training data: the SQL query when DATA_URL_ENV is set, else the dataset packaged with scikit-learn."""
    url = os.environ.get(DATA_URL_ENV)
    if url:
{%- if regression %}
        return Dataset(*load_sql(url, QUERY, FEATURES))
    features, target = load_diabetes(return_X_y=True, scaled=False)
    return Dataset(np.asarray(features, dtype=np.float64), np.asarray(target, dtype=np.float64))
{%- else %}
        return Dataset(*load_sql(url, QUERY, FEATURES, n_classes=len(CLASS_NAMES)))
    features, target = load_{{ dataset }}(return_X_y=True)
    return Dataset(np.asarray(features, dtype=np.float64), np.asarray(target, dtype=np.int64))
{%- endif %}


def split(data: Dataset, seed: int = SEED) -> tuple[Dataset, Dataset]:
    """A {% if not regression %}stratified {% endif %}(train, holdout) split."""
    x_train, x_test, y_train, y_test = train_test_split(
        data.features, data.target, test_size=HOLDOUT, random_state=seed{% if not regression %}, stratify=data.target{% endif %}
    )
    return Dataset(x_train, y_train), Dataset(x_test, y_test)


def build_model() -> Any:
    """An unfitted model."""
{%- if cookiecutter.framework == "sklearn" %}
{%- if regression %}
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
{%- else %}
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
{%- endif %}
{%- elif cookiecutter.framework == "xgboost" %}
    return {{ "XGBRegressor" if regression else "XGBClassifier" }}(n_estimators=50, max_depth=3, learning_rate=0.2, random_state=SEED, n_jobs=1)
{%- elif cookiecutter.framework == "lightgbm" %}
    return {{ "LGBMRegressor" if regression else "LGBMClassifier" }}(n_estimators=50, num_leaves=15, random_state=SEED, n_jobs=1, verbose=-1)
{%- elif cookiecutter.framework == "pytorch" %}
    torch.manual_seed(SEED)
    return model_io.Network()
{%- endif %}


def fit(model: Any, train: Dataset) -> Any:
    """Fit ``model`` on ``train`` and return it."""
{%- if cookiecutter.framework == "pytorch" %}
    x = torch.as_tensor(train.features, dtype=torch.float32)
{%- if regression %}
    y = torch.as_tensor(train.target, dtype=torch.float32).reshape(-1, 1)
    model.mean.copy_(x.mean(dim=0))
    model.scale.copy_(x.std(dim=0).clamp_min(1e-6))
    model.target_mean.copy_(y.mean())
    model.target_scale.copy_(y.std().clamp_min(1e-6))
    standardised = (y - model.target_mean) / model.target_scale
    # A slow learning rate: 331 rows overfit quickly (lr 0.01 for 200 epochs scored r2 0.08 on the holdout).
    optimiser = torch.optim.Adam(model.parameters(), lr=0.001, weight_decay=1e-3)
    loss_fn = torch.nn.MSELoss()
    model.train()
    for _ in range(300):
        optimiser.zero_grad()
        loss = loss_fn(model(x), standardised)
        loss.backward()
        optimiser.step()
{%- else %}
    y = torch.as_tensor(train.target, dtype=torch.long)
    model.mean.copy_(x.mean(dim=0))
    model.scale.copy_(x.std(dim=0).clamp_min(1e-6))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(300):
        optimiser.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimiser.step()
{%- endif %}
    model.eval()
    return model
{%- else %}
    return model.fit(train.features, train.target)
{%- endif %}


def evaluate(model: Any, holdout: Dataset) -> dict[str, float]:
    """Metrics on ``holdout``; `config.yaml` `retrain.metric` names one of these."""
{%- if regression %}
    predicted = model_io.predict(model, holdout.features)
    return {
        "rmse": round(float(root_mean_squared_error(holdout.target, predicted)), 6),
        "mae": round(float(mean_absolute_error(holdout.target, predicted)), 6),
        "r2": round(float(r2_score(holdout.target, predicted)), 6),
    }
{%- else %}
    probabilities = model_io.predict(model, holdout.features)
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(CLASS_NAMES)))
    return {
        "accuracy": round(float(accuracy_score(holdout.target, predicted)), 6),
        "f1_macro": round(float(f1_score(holdout.target, predicted, average="macro")), 6),
        "log_loss": round(float(log_loss(holdout.target, probabilities, labels=labels)), 6),
    }
{%- endif %}


def train(data: Dataset | None = None) -> tuple[str, dict[str, float]]:
    """Train on ``data`` (default: load_data()), save a new model version; return (tag, metrics)."""
    train_set, holdout = split(data if data is not None else load_data())
    model = fit(build_model(), train_set)
    metrics = evaluate(model, holdout)
    labels = {"framework": "{{ cookiecutter.framework }}", "git_commit": git_commit()}
    tag = model_io.save(model, metrics, labels)
    return tag, metrics


def main() -> None:
    tag, metrics = train()
    print(json.dumps({"model": tag, "metrics": metrics, "features": len(FEATURES)}))


if __name__ == "__main__":
    main()
