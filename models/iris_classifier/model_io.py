"""How sklearn models are saved to, loaded from and predicted with in the BentoML store.

The one file that changes when the framework changes; `train.py` and `service.py` only call
`save`, `load` and `predict`.
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np

from api_schema import CLASS_NAMES, FEATURES

NAME = "iris_classifier"


def save(model: Any, metrics: dict[str, float], labels: dict[str, str]) -> str:
    """Store ``model`` as a new version of ``NAME``; return its tag."""
    metadata = {"metrics": metrics, "features": list(FEATURES), "classes": list(CLASS_NAMES)}
    stored = bentoml.sklearn.save_model(NAME, model, labels=labels, metadata=metadata)
    return str(stored.tag)


def load(stored: bentoml.Model) -> Any:
    """The model object of a stored version (``bentoml.models.get(tag)`` or a service's BentoModel)."""
    return bentoml.sklearn.load_model(stored)


def predict(model: Any, rows: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for a float array of shape (n_rows, n_features)."""
    return np.asarray(model.predict_proba(rows))
