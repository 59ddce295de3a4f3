"""The iris_classifier prediction service (BentoML 1.4).

    bentoml serve service:IrisClassifier      # from this folder, after `python train.py`

modelkit builds the service from config.yaml (workers, batching, request limits, error bodies,
`POST /predict`, `POST /metadata`); this file holds what is this model's own: how request rows
become the model's input, and how the model's output becomes one prediction per row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import model_io
from api_schema import CLASS_NAMES, FEATURES, Features, Prediction
from modelkit.service import build_service, feature_matrix


def preprocess(rows: list[Features]) -> np.ndarray:
    """Request rows -> the model's input: floats, shape (n_rows, n_features), in FEATURES order."""
    return feature_matrix(rows, FEATURES)


def postprocess(probabilities: np.ndarray) -> list[Prediction]:
    """Class probabilities, shape (n_rows, n_classes) -> one prediction per row."""
    predictions = []
    for row in probabilities:
        class_id = int(row.argmax())
        rounded = {name: round(float(p), 6) for name, p in zip(CLASS_NAMES, row, strict=True)}
        predictions.append(Prediction(label=CLASS_NAMES[class_id], class_id=class_id, probabilities=rounded))
    return predictions


IrisClassifier = build_service(
    Path(__file__).parent,
    features=Features,
    prediction=Prediction,
    model_io=model_io,
    preprocess=preprocess,
    postprocess=postprocess,
    classes=CLASS_NAMES,
)
