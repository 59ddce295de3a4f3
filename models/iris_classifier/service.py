"""The iris_classifier prediction service (BentoML 1.4).

    bentoml serve service:IrisClassifier      # from this folder, after `python train.py`

Workers, timeouts, concurrency, batching and request limits all come from config.yaml
through modelkit, so tuning never means editing this file.
"""

from __future__ import annotations

from operator import attrgetter
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import ContentType
from pydantic import Field

import model_io
from api_schema import CLASS_NAMES, FEATURES, Features, ModelInfo, Prediction
from modelkit import RequestLimits, api_options, freeze_gc, load_config, model_ref, service_options

CONFIG = load_config(Path(__file__).with_name("config.yaml"))

Rows = Annotated[
    list[Features],
    Field(min_length=1, max_length=CONFIG.serving.max_rows, description="rows to score, at least one"),
]
# Declaring the media type stops BentoML from building the response's JSON schema on every
# request (measured: 17 % of worker CPU; see bench/serving.py).
Predictions = Annotated[list[Prediction], ContentType("application/json")]
_row_values = attrgetter(*FEATURES)


@bentoml.service(**service_options(CONFIG))
class IrisClassifier:
    # the model pinned into the bento at build time (name:latest when serving the folder)
    bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, Path(__file__).parent))

    def __init__(self) -> None:
        self.model = model_io.load(self.bento_model)
        self.info = ModelInfo(
            model=str(self.bento_model.tag),
            framework=CONFIG.framework,
            classes=list(CLASS_NAMES),
            features=list(FEATURES),
            metrics=self.bento_model.info.metadata.get("metrics", {}),
        )
        freeze_gc()

    @bentoml.api(route="/predict", **api_options(CONFIG))
    async def predict(self, instances: Rows) -> Predictions:
        """Class, class id and class probabilities for each row, in request order."""
        rows = np.array([_row_values(row) for row in instances], dtype=np.float64).reshape(len(instances), -1)
        probabilities = model_io.predict_proba(self.model, rows)
        return [_prediction(p) for p in probabilities]

    @bentoml.api(route="/metadata")
    async def metadata(self) -> ModelInfo:
        """The model version being served and its training metrics."""
        return self.info


def _prediction(probabilities: np.ndarray) -> Prediction:
    class_id = int(probabilities.argmax())
    return Prediction(
        label=CLASS_NAMES[class_id],
        class_id=class_id,
        probabilities={name: round(float(p), 6) for name, p in zip(CLASS_NAMES, probabilities, strict=True)},
    )


# BentoML has no request-size limit: refuse bodies over serving.max_request_bytes with 413.
IrisClassifier.add_asgi_middleware(RequestLimits, max_bytes=CONFIG.serving.max_request_bytes)
