"""Build a model's BentoML 1.4 service from its folder: what every model serves the same way.

A model's ``service.py`` keeps what is its own (how request rows become the model's input and how
the model's output becomes predictions) and calls :func:`build_service`::

    IrisClassifier = build_service(
        Path(__file__).parent, features=Features, prediction=Prediction, model_io=model_io,
        preprocess=preprocess, postprocess=postprocess, classes=CLASS_NAMES,
    )

The service gets, from ``config.yaml``: its options (workers, traffic, tracing, metrics, access log),
adaptive batching of ``POST /predict``, the request guards (``BodyDeadline`` in front of everything:
bodies are read, in time, before a request counts against ``max_concurrency``; ``RequestLimits``: 400 for
repeated headers, 408 for a body too slow, 415, 413), bounded and documented error bodies
(``ErrorBodies``), ``POST /metadata``, the model pinned at build time (``model_ref``), one-line logs for
client errors and a frozen GC after loading.

The class is built here and decorated with ``bentoml.service`` (a plain decorator, usable as a call);
``bentoml serve service:<Name>`` and ``bentoml build`` import it by name from the model's module.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from operator import attrgetter
from pathlib import Path
from types import GenericAlias
from typing import Annotated, Any, Protocol

import bentoml
import numpy as np
from bentoml.validators import ContentType
from pydantic import BaseModel, Field, field_validator

from modelkit.errors import ErrorBodies, quiet_client_errors
from modelkit.loader import load_config
from modelkit.serving import (
    BodyDeadline,
    RequestLimits,
    api_options,
    body_deadline,
    freeze_gc,
    model_ref,
    service_class,
    service_options,
)


class ModelIO(Protocol):
    """What a model's ``model_io`` module provides to the service."""

    def load(self, stored: Any) -> Any: ...

    def predict(self, model: Any, inputs: Any) -> Any: ...


class ModelInfo(BaseModel):
    """What is serving: the model version, its inputs and outputs, and how it scored when trained."""

    model: str = Field(description="the model version (tag in the BentoML store)")
    framework: str
    task: str
    features: list[str] = Field(description="request row fields, in the order the model reads them")
    classes: list[str] = Field(description="class labels (classification); empty for regression")
    metrics: dict[str, float | None] = Field(
        description="holdout metrics recorded when the model was trained (null where one was not a finite number)"
    )

    @field_validator("metrics")
    @classmethod
    def _finite_or_null(cls, metrics: dict[str, float | None]) -> dict[str, float | None]:
        # JSON has no NaN: a NaN metric would be sent as null where the document promised a number (fuzzing found
        # it on a model trained on data that gave a NaN score).
        return {name: value if value is not None and math.isfinite(value) else None for name, value in metrics.items()}


class GuardedService(bentoml.Service):  # type: ignore[misc]  # bentoml is untyped
    """A ``bentoml.Service`` whose ASGI app (what ``bentoml serve`` runs) reads each request's body first.

    Middlewares added with ``add_asgi_middleware`` run inside BentoML's own, so inside
    ``traffic.max_concurrency``: a body read there holds a slot while it arrives. :class:`BodyDeadline`
    wraps the whole app instead (``bentoml.service(service_class=...)`` builds this class).
    """

    body_deadline: dict[str, Any] | None = None  # BodyDeadline's options; set by build_service

    def to_asgi(self, is_main: bool = True) -> Any:
        app = super().to_asgi(is_main=is_main)
        return app if self.body_deadline is None else BodyDeadline(app, **self.body_deadline)


@functools.lru_cache(maxsize=16)
def _getter(names: tuple[str, ...]) -> Callable[[Any], Any]:
    return attrgetter(*names)


def feature_matrix(rows: Sequence[BaseModel], names: Sequence[str]) -> np.ndarray:
    """Request rows -> a float64 array of shape (n_rows, len(names)), columns in ``names`` order."""
    values = _getter(tuple(names))
    return np.array([values(row) for row in rows], dtype=np.float64).reshape(len(rows), -1)


def build_service(
    folder: Path | str,
    *,
    features: type[BaseModel],
    prediction: type[BaseModel],
    model_io: ModelIO,
    postprocess: Callable[[Any], Sequence[BaseModel]],
    preprocess: Callable[[list[Any]], Any] | None = None,
    classes: Sequence[str] = (),
    name: str | None = None,
) -> bentoml.Service[Any]:
    """The BentoML service of the model in ``folder`` (the folder holding its ``config.yaml``).

    ``POST /predict`` takes ``{"instances": [<features row>, ...]}`` (1 to ``serving.max_rows``
    rows) and answers ``postprocess(model_io.predict(model, preprocess(rows)))``: one
    ``prediction`` per row, in request order. ``preprocess`` defaults to :func:`feature_matrix`
    over the fields of ``features``. ``name`` is the class name (default: from the model's name).
    """
    folder = Path(folder).resolve()
    config = load_config(folder / "config.yaml")
    fields = tuple(features.model_fields)
    prepare = preprocess if preprocess is not None else functools.partial(feature_matrix, names=fields)
    rows_type = Annotated[  # type: ignore[valid-type]
        GenericAlias(list, (features,)),
        Field(min_length=1, max_length=config.serving.max_rows, description="rows to score, at least one"),
    ]
    # Declaring the media type stops BentoML from building the response's JSON schema on every
    # request (measured: 15-17 % of worker CPU; see bench/serving.py).
    predictions_type = Annotated[GenericAlias(list, (prediction,)), ContentType("application/json")]  # type: ignore[valid-type]

    def __init__(self: Any) -> None:  # noqa: N807 - the class's __init__, defined before the class
        self.model = model_io.load(self.bento_model)
        self.info = ModelInfo(
            model=str(self.bento_model.tag),
            framework=config.framework,
            task=config.task,
            features=list(fields),
            classes=list(classes),
            metrics=self.bento_model.info.metadata.get("metrics", {}),
        )
        quiet_client_errors()
        freeze_gc()

    async def predict(self: Any, instances: Any) -> Any:
        return postprocess(model_io.predict(self.model, prepare(instances)))

    async def metadata(self: Any) -> ModelInfo:
        info: ModelInfo = self.info
        return info

    # The API's input and output models come from the annotations (bentoml.api reads the signature).
    predict.__annotations__ = {"instances": rows_type, "return": predictions_type}
    predict.__doc__ = "One prediction per row, in request order."
    metadata.__annotations__ = {"return": ModelInfo}
    metadata.__doc__ = "The model version being served, its features and classes, and its training metrics."

    namespace: dict[str, Any] = {
        "__doc__": config.description,
        "__init__": __init__,
        # the model pinned into the bento at build time (name:latest when serving the folder)
        "bento_model": bentoml.models.BentoModel(model_ref(config.name, folder)),
        "predict": bentoml.api(route="/predict", **api_options(config))(predict),
        "metadata": bentoml.api(route="/metadata")(metadata),
    }
    inner = type(name or service_class(config.name), (), namespace)
    service: bentoml.Service[Any] = bentoml.service(service_class=GuardedService, **service_options(config))(inner)
    service.body_deadline = body_deadline(config)
    # Outermost first: the guards answer before anything is parsed; ErrorBodies sees BentoML's errors.
    service.add_asgi_middleware(RequestLimits, max_bytes=config.serving.max_request_bytes)
    service.add_asgi_middleware(ErrorBodies)
    return service
