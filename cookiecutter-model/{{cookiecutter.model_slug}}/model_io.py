{%- set regression = cookiecutter.task == "regression" -%}
{%- set framework = cookiecutter.framework -%}
{%- set image_network = cookiecutter.input == "image" and framework in ("pytorch", "tensorflow") -%}
"""How {{ framework }} models are saved to, loaded from and predicted with in the BentoML store.

The one file that changes when the framework changes; `train.py` and `service.py` only call
`save`, `load` and `predict`.
{%- if framework == "custom" %}

`custom`: this file is yours. The example is an ONNX graph (converted from scikit-learn by `train.fit`) run
with onnxruntime; anything else works the same way: write your files into the new model version's folder in
`save`, read them back in `load`, and call the model in `predict`.
{%- endif %}
"""

from __future__ import annotations

{% if framework == "custom" -%}
from dataclasses import dataclass
from pathlib import Path
{% endif -%}
from typing import Any

import bentoml
{%- if framework == "tensorflow" %}
import keras  # Keras 3, on TensorFlow's CPU build
{%- endif %}
import numpy as np
{%- if framework == "pytorch" %}
import torch
from torch import nn
{%- elif framework == "custom" %}
import onnxruntime as ort
{%- endif %}

from api_schema import {% if not regression %}CLASS_NAMES, {% endif %}FEATURES{% if image_network %}, SIZE{% endif %}

NAME = "{{ cookiecutter.model_slug }}"
{%- if image_network %}
WHITE = 16.0  # the grey level of white in the training digits and in service.preprocess's output (black: 0)
{%- endif %}
{%- if framework == "pytorch" %}
WEIGHTS = "weights.pt"
{%- if image_network %}


class Network(nn.Module):
    """A small convolutional network over grey-level images, shape (n, height, width): one logit per class."""

    def __init__(self, size: tuple[int, int] = SIZE, n_outputs: int = len(CLASS_NAMES), channels: int = 16) -> None:
        super().__init__()
        width, height = size
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * channels * (height // 4) * (width // 4), n_outputs),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images.unsqueeze(1) / WHITE)  # one channel, grey levels 0 to 1
{%- else %}


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
{%- elif framework == "tensorflow" %}
MODEL_FILE = "model.keras"  # Keras 3's own format: architecture{% if image_network %} and weights{% else %}, weights and the fitted normalisation{% endif %}
{%- if image_network %}


def network(channels: int = 16) -> keras.Model:
    """A small convolutional network over grey-level images, shape (n, height, width): class probabilities."""
    width, height = SIZE
    return keras.Sequential(
        [
            keras.Input(shape=(height, width)),
            keras.layers.Reshape((height, width, 1)),  # one channel
            keras.layers.Rescaling(1 / WHITE),  # grey levels 0 to 1
            keras.layers.Conv2D(channels, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(2 * channels, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(len(CLASS_NAMES), activation="softmax"),
        ]
    )
{%- else %}


def network(hidden: int = 32) -> keras.Model:
    """A small multi-layer perceptron: standardises its input (fitted by `train.fit`), {% if regression %}predicts the target{% else %}outputs class probabilities{% endif %}."""
    return keras.Sequential(
        [
            keras.Input(shape=(len(FEATURES),)),
            keras.layers.Normalization(name="standardise"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
{%- if regression %}
            keras.layers.Dense(1),
            keras.layers.Normalization(invert=True, name="unstandardise_target"),  # back to the target's scale
{%- else %}
            keras.layers.Dense(len(CLASS_NAMES), activation="softmax"),
{%- endif %}
        ]
    )
{%- endif %}
{%- elif framework == "custom" %}
MODEL_FILE = "model.onnx"
INPUT = "features"  # the graph's input name (train.fit names it so when converting)
OUTPUT = "{{ 'variable' if regression else 'probabilities' }}"  # the graph's output that `predict` reads


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX graph and the onnxruntime session that runs it."""

    graph: bytes
    session: ort.InferenceSession

    @classmethod
    def from_bytes(cls, graph: bytes) -> OnnxModel:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # requests run in parallel already; one thread each
        options.inter_op_num_threads = 1
        return cls(graph, ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"]))
{%- endif %}


def save(model: Any, metrics: dict[str, float], labels: dict[str, str]) -> str:
    """Store ``model`` as a new version of ``NAME``; return its tag."""
    metadata = {"metrics": metrics, "features": list(FEATURES){% if not regression %}, "classes": list(CLASS_NAMES){% endif %}}
{%- if framework == "pytorch" %}
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as stored:
        torch.save(model.state_dict(), stored.path_of(WEIGHTS))
    return str(stored.tag)
{%- elif framework == "tensorflow" %}
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as stored:
        model.save(stored.path_of(MODEL_FILE))
    return str(stored.tag)
{%- elif framework == "custom" %}
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as stored:
        Path(stored.path_of(MODEL_FILE)).write_bytes(model.graph)
    return str(stored.tag)
{%- elif framework == "lightgbm" %}
    # bentoml.lightgbm stores the Booster; it predicts {% if regression %}values{% else %}class probabilities for multiclass objectives{% endif %}.
    stored = bentoml.lightgbm.save_model(NAME, model.booster_, labels=labels, metadata=metadata)
    return str(stored.tag)
{%- else %}
    stored = bentoml.{{ framework }}.save_model(NAME, model, labels=labels, metadata=metadata)
    return str(stored.tag)
{%- endif %}


def load(stored: bentoml.Model) -> Any:
    """The model object of a stored version (``bentoml.models.get(tag)`` or a service's BentoModel)."""
{%- if framework == "pytorch" %}
{%- if image_network %}
    # One thread per call: requests already run in parallel, and waking a second thread costs more than this network's
    # work (a 1-row call on 2 busy cores: 0.06 ms with one thread, 2.6 to 9 ms with two).
    torch.set_num_threads(1)
{%- endif %}
    network = Network()
    network.load_state_dict(torch.load(stored.path_of(WEIGHTS), weights_only=True))
    network.eval()
    return network
{%- elif framework == "tensorflow" %}
    return keras.saving.load_model(stored.path_of(MODEL_FILE))
{%- elif framework == "custom" %}
    return OnnxModel.from_bytes(Path(stored.path_of(MODEL_FILE)).read_bytes())
{%- else %}
    return bentoml.{{ framework }}.load_model(stored)
{%- endif %}


{% if image_network -%}
def predict(model: Any, images: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for grey levels of shape (n_rows, height, width)."""
{%- if framework == "pytorch" %}
    with torch.inference_mode():
        logits = model(torch.as_tensor(images, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()
{%- else %}
    # Calling the model (not model.predict, which sets up a data pipeline per call: ~30 ms more here).
    return np.asarray(model(images.astype(np.float32), training=False), dtype=np.float64)
{%- endif %}
{%- elif cookiecutter.input == "image" -%}
def flatten(images: np.ndarray) -> np.ndarray:
    """Images, shape (n, height, width) -> rows of pixels, shape (n, height * width): what the model reads."""
    return images.reshape(len(images), -1)


def predict(model: Any, images: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for grey levels of shape (n_rows, height, width)."""
    return np.asarray(model.predict_proba(flatten(images)))
{%- elif cookiecutter.input == "text" -%}
def predict(model: Any, texts: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for the text fields, shape (n_rows, n_fields) of str."""
    return np.asarray(model.predict_proba(texts))
{%- elif regression -%}
def predict(model: Any, rows: np.ndarray) -> np.ndarray:
    """Predicted values, shape (n_rows,), for a float array of shape (n_rows, n_features)."""
{%- if framework == "pytorch" %}
    with torch.inference_mode():
        standardised = model(torch.as_tensor(rows, dtype=torch.float32)).reshape(-1)
        return (standardised * model.target_scale + model.target_mean).numpy().astype(np.float64)
{%- elif framework == "tensorflow" %}
    # Calling the model (not model.predict, which sets up a data pipeline per call: ~30 ms more here).
    return np.asarray(model(rows.astype(np.float32), training=False), dtype=np.float64).reshape(-1)
{%- elif framework == "custom" %}
    (values,) = model.session.run([OUTPUT], {INPUT: rows.astype(np.float32)})
    return np.asarray(values, dtype=np.float64).reshape(-1)
{%- else %}
    return np.asarray(model.predict(rows), dtype=np.float64).reshape(-1)
{%- endif %}
{%- else -%}
def predict(model: Any, rows: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n_rows, n_classes), for a float array of shape (n_rows, n_features)."""
{%- if framework == "pytorch" %}
    with torch.inference_mode():
        logits = model(torch.as_tensor(rows, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy()
{%- elif framework == "tensorflow" %}
    # Calling the model (not model.predict, which sets up a data pipeline per call: ~30 ms more here).
    return np.asarray(model(rows.astype(np.float32), training=False), dtype=np.float64)
{%- elif framework == "custom" %}
    (probabilities,) = model.session.run([OUTPUT], {INPUT: rows.astype(np.float32)})
    return np.asarray(probabilities, dtype=np.float64)
{%- elif framework == "lightgbm" %}
    if hasattr(model, "predict_proba"):  # the LGBMClassifier being trained
        return np.asarray(model.predict_proba(rows))
    return np.asarray(model.predict(rows))  # the stored Booster: probabilities for multiclass objectives
{%- else %}
    return np.asarray(model.predict_proba(rows))
{%- endif %}
{%- endif %}
