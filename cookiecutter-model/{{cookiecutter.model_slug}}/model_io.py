{%- set regression = cookiecutter.task == "regression" -%}
"""How {{ cookiecutter.framework }} models are saved to, loaded from and predicted with in the BentoML store.

The one file that changes when the framework changes; `train.py` and `service.py` only call
`save`, `load` and `predict`.
"""

from __future__ import annotations

from typing import Any

import bentoml
import numpy as np
{%- if cookiecutter.framework == "pytorch" %}
import torch
from torch import nn
{%- endif %}

from api_schema import {% if not regression %}CLASS_NAMES, {% endif %}FEATURES

NAME = "{{ cookiecutter.model_slug }}"
{%- if cookiecutter.framework == "pytorch" %}
WEIGHTS = "weights.pt"


class Network(nn.Module):
    """A small multi-layer perceptron over standardised features{% if regression %}, predicting a standardised target{% endif %}."""

    def __init__(self, n_features: int = len(FEATURES), {% if regression %}n_outputs: int = 1{% else %}n_outputs: int = len(CLASS_NAMES){% endif %}, hidden: int = 32) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
{%- if regression %}
        self.register_buffer("target_mean", torch.zeros(1))
        self.register_buffer("target_scale", torch.ones(1))
{%- endif %}
        self.layers = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.mean) / self.scale)
{%- endif %}


def save(model: Any, metrics: dict[str, float], labels: dict[str, str]) -> str:
    """Store ``model`` as a new version of ``NAME``; return its tag."""
    metadata = {"metrics": metrics, "features": list(FEATURES){% if not regression %}, "classes": list(CLASS_NAMES){% endif %}}
{%- if cookiecutter.framework == "pytorch" %}
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as stored:
        torch.save(model.state_dict(), stored.path_of(WEIGHTS))
    return str(stored.tag)
{%- elif cookiecutter.framework == "lightgbm" %}
    # bentoml.lightgbm stores the Booster; it predicts {% if regression %}values{% else %}class probabilities for multiclass objectives{% endif %}.
    stored = bentoml.lightgbm.save_model(NAME, model.booster_, labels=labels, metadata=metadata)
    return str(stored.tag)
{%- else %}
    stored = bentoml.{{ cookiecutter.framework }}.save_model(NAME, model, labels=labels, metadata=metadata)
    return str(stored.tag)
{%- endif %}


def load(stored: bentoml.Model) -> Any:
    """The model object of a stored version (``bentoml.models.get(tag)`` or a service's BentoModel)."""
{%- if cookiecutter.framework == "pytorch" %}
    network = Network()
    network.load_state_dict(torch.load(stored.path_of(WEIGHTS), weights_only=True))
    network.eval()
    return network
{%- else %}
    return bentoml.{{ cookiecutter.framework }}.load_model(stored)
{%- endif %}


{% if regression -%}
def predict(model: Any, rows: np.ndarray) -> np.ndarray:
    """Predicted values, shape (n_rows,), for a float array of shape (n_rows, n_features)."""
{%- if cookiecutter.framework == "pytorch" %}
    with torch.inference_mode():
        standardised = model(torch.as_tensor(rows, dtype=torch.float32)).reshape(-1)
        return (standardised * model.target_scale + model.target_mean).numpy().astype(np.float64)
{%- else %}
    return np.asarray(model.predict(rows), dtype=np.float64).reshape(-1)
{%- endif %}
{%- else -%}
def predict(model: Any, rows: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for a float array of shape (n_rows, n_features)."""
{%- if cookiecutter.framework == "pytorch" %}
    with torch.inference_mode():
        logits = model(torch.as_tensor(rows, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()
{%- elif cookiecutter.framework == "lightgbm" %}
    if hasattr(model, "predict_proba"):  # the LGBMClassifier being trained
        return np.asarray(model.predict_proba(rows))
    return np.asarray(model.predict(rows))  # the stored Booster: probabilities for multiclass objectives
{%- else %}
    return np.asarray(model.predict_proba(rows))
{%- endif %}
{%- endif %}
