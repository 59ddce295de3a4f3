"""The iris_classifier prediction service: a BentoML 1.4 service class.

    bentoml serve service:IrisClassifier      # from this folder, after `python train.py`

Yours to change: start-up (`setup`), how request rows become the model's input (`preprocess`), how the model's output
becomes one prediction per row (`postprocess`), and the endpoints. modelkit adds what every model serves the same
way: options from config.yaml (workers, batching, limits), the request guards and bounded error bodies in front of
every endpoint, `POST /metadata`, the prediction log and the model pinned into the bento at build time.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np

import model_io
from api_schema import CLASS_NAMES, FEATURES, Features, Prediction
from modelkit import api_options, load_config, model_ref
from modelkit.service import ModelService, feature_matrix, request_rows, response_of, service_settings

HERE = Path(__file__).parent
CONFIG = load_config(HERE / "config.yaml")
Rows = request_rows(Features, CONFIG)  # 1 to serving.max_rows rows
Predictions = response_of(Prediction)  # one per row, in request order


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


@bentoml.service(**service_settings(CONFIG))
class IrisClassifier(ModelService):
    config = CONFIG
    bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, HERE))  # name:latest, or the version built in

    def setup(self) -> None:
        """Start-up, once in each worker before it takes requests: open clients, read extra artifacts (e.g.
        `fsspec.open("s3://bucket/vocabulary.json")`), load more models; `self.<name>` keeps them for the endpoints."""
        self.model = model_io.load(self.bento_model)

    @bentoml.api(route="/predict", **api_options(CONFIG))
    async def predict(self, instances: Rows) -> Predictions:
        """One prediction per row, in request order."""
        inputs = preprocess(instances)
        # In a worker thread: the server keeps answering health checks, metrics and other requests meanwhile.
        outputs = await self.in_thread(model_io.predict, self.model, inputs)
        self.log_predictions(instances, outputs)  # the prediction log (config.yaml `monitor`); a no-op when off
        return postprocess(outputs)

    # Another endpoint: a method with its own `@bentoml.api(route="/<name>")`; modelkit's request guards and error
    # bodies answer for it too, and fuzzing tries every route in /docs.json.
