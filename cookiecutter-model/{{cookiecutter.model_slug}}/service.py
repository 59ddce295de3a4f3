{%- set regression = cookiecutter.task == "regression" -%}
"""The {{ cookiecutter.model_slug }} prediction service: a BentoML 1.4 service class.

    bentoml serve service:{{ cookiecutter.__service_class }}      # from this folder, after `python train.py`

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
{%- if cookiecutter.input == "image" %}
from api_schema import CLASS_NAMES, LIMITS, SIZE, Features, ImageFile, Prediction
from modelkit import api_options, load_config, model_ref
from modelkit.images import image_batch, upload_batch
from modelkit.service import ModelService, request_rows, response_of, service_settings
{%- elif cookiecutter.input == "entity" %}
from api_schema import CLASS_NAMES, ENTITY_KEY, FEATURE_NAMES, FEATURE_REFS, Features, Prediction
from modelkit import api_options, features, load_config, model_ref
from modelkit.service import ModelService, request_rows, response_of, service_settings
{%- elif cookiecutter.input == "text" %}
from api_schema import CLASS_NAMES, FEATURES, Features, Prediction
from modelkit import api_options, load_config, model_ref
from modelkit.service import ModelService, request_rows, response_of, service_settings, text_matrix
{%- else %}
from api_schema import {% if not regression %}CLASS_NAMES, {% endif %}FEATURES, Features, Prediction
from modelkit import api_options, load_config, model_ref
from modelkit.service import ModelService, feature_matrix, request_rows, response_of, service_settings
{%- endif %}

HERE = Path(__file__).parent
CONFIG = load_config(HERE / "config.yaml")
Rows = request_rows(Features, CONFIG)  # 1 to serving.max_rows rows
Predictions = response_of(Prediction)  # one per row, in request order


{% if cookiecutter.input == "image" -%}
def preprocess(rows: list[Features]) -> np.ndarray:
    """Request rows -> the model's input: grey levels 0-16, shape (n_rows, 8, 8), as in the training digits."""
    return image_batch([row.image for row in rows], LIMITS, SIZE, scale=16.0)
{%- elif cookiecutter.input == "entity" -%}
def preprocess(rows: list[Features]) -> list[int]:
    """Request rows -> the ids whose features the model reads (looked up in the feature store by `lookup`)."""
    return [row.customer_id for row in rows]
{%- elif cookiecutter.input == "text" -%}
def preprocess(rows: list[Features]) -> np.ndarray:
    """Request rows -> the model's input: the text fields, shape (n_rows, n_fields), in FEATURES order."""
    return text_matrix(rows, FEATURES)
{%- else -%}
def preprocess(rows: list[Features]) -> np.ndarray:
    """Request rows -> the model's input: floats, shape (n_rows, n_features), in FEATURES order."""
    return feature_matrix(rows, FEATURES)
{%- endif %}


{% if regression -%}
def postprocess(values: np.ndarray) -> list[Prediction]:
    """Predicted values, shape (n_rows,) -> one prediction per row."""
    return [Prediction(value=round(float(value), 6)) for value in values]
{%- else -%}
def postprocess(probabilities: np.ndarray) -> list[Prediction]:
    """Class probabilities, shape (n_rows, n_classes) -> one prediction per row."""
    predictions = []
    for row in probabilities:
        class_id = int(row.argmax())
        rounded = {name: round(float(p), 6) for name, p in zip(CLASS_NAMES, row, strict=True)}
        predictions.append(Prediction(label=CLASS_NAMES[class_id], class_id=class_id, probabilities=rounded))
    return predictions
{%- endif %}


@bentoml.service(**service_settings(CONFIG))
class {{ cookiecutter.__service_class }}(ModelService):
    config = CONFIG
    bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, HERE))  # name:latest, or the version built in

    def setup(self) -> None:
        """Start-up, once in each worker before it takes requests: open clients, read extra artifacts (e.g.
        `fsspec.open("s3://bucket/vocabulary.json")`), load more models; `self.<name>` keeps them for the endpoints."""
        self.model = model_io.load(self.bento_model)
{%- if cookiecutter.input == "entity" %}
        # The shared feature store (modelkit.features: MODEL_FEATURE_REPO, MODEL_FEATURE_DATA, and
        # MODEL_FEATURE_ONLINE_STORE for Redis); refuses to start when its registry lacks the features read here.
        self.store = features.open_online(features.locate(start=HERE), FEATURE_REFS)

    def lookup(self, ids: list[int]) -> np.ndarray:
        """The features of ``ids`` from the online store, shape (n_rows, len(FEATURE_REFS)); 404 naming the ids the
        store holds nothing for, 503 while the online store does not answer."""
        try:
            return features.online_matrix(self.store, FEATURE_REFS, ENTITY_KEY, ids)
        except features.UnknownEntities as exc:
            raise bentoml.exceptions.NotFound(str(exc)) from None
        except features.FeatureStoreUnavailable as exc:
            raise bentoml.exceptions.ServiceUnavailable(str(exc)) from None
{%- endif %}

    @bentoml.api(route="/predict", **api_options(CONFIG))
    async def predict(self, instances: Rows) -> Predictions:
        """One prediction per row, in request order."""
{%- if cookiecutter.input == "entity" %}
        # The feature store is read in a worker thread too: a slow online store never holds up the event loop.
        inputs = await self.in_thread(self.lookup, preprocess(instances))
{%- else %}
        inputs = preprocess(instances)
{%- endif %}
        # In a worker thread: the server keeps answering health checks, metrics and other requests meanwhile.
        outputs = await self.in_thread(model_io.predict, self.model, inputs)
{%- if cookiecutter.input == "entity" %}
        # The prediction log (config.yaml `monitor`; a no-op when off): each id with the features the model read,
        # so drift is measured on the features (as the training reference keeps them); labels join on the id.
        logged = [
            {ENTITY_KEY: row.customer_id, **dict(zip(FEATURE_NAMES, values.tolist(), strict=True))}
            for row, values in zip(instances, inputs, strict=True)
        ]
        self.log_predictions(logged, outputs, keys=instances)
{%- else %}
        self.log_predictions(instances, outputs)  # the prediction log (config.yaml `monitor`); a no-op when off
{%- endif %}
        return postprocess(outputs)
{%- if cookiecutter.input == "image" %}

    @bentoml.api(route="/predict_file")
    async def predict_file(self, image: ImageFile) -> Prediction:
        """One prediction for one uploaded image file (multipart/form-data, field `image`):
        `curl -F image=@digit.png http://127.0.0.1:<port>/predict_file`. Same limits and errors as `/predict`."""
        inputs = upload_batch([image], LIMITS, SIZE, scale=16.0)
        outputs = await self.in_thread(model_io.predict, self.model, inputs)
        return postprocess(outputs)[0]
{%- endif %}

    # Another endpoint: a method with its own `@bentoml.api(route="/<name>")`; modelkit's request guards and error
    # bodies answer for it too, and fuzzing tries every route in /docs.json.
