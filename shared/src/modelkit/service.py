"""What every model's BentoML 1.4 service shares: a base class, its options and guards from config.yaml.

A model's ``service.py`` is a BentoML service class of its own (the template writes it)::

    @bentoml.service(**service_settings(CONFIG))      # options from config.yaml, plus the request guards
    class IrisClassifier(ModelService):
        config = CONFIG
        bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, HERE))

        def setup(self) -> None:                       # start-up, once per worker
            self.model = model_io.load(self.bento_model)

        @bentoml.api(route="/predict", **api_options(CONFIG))
        async def predict(self, instances: Rows) -> Predictions:
            inputs = preprocess(instances)
            outputs = await self.in_thread(model_io.predict, self.model, inputs)   # off the event loop
            self.log_predictions(instances, outputs)
            return postprocess(outputs)

:class:`ModelService` gives it ``POST /metadata``, a thread pool for the model call (``in_thread``: the event
loop keeps answering ``/readyz``, ``/metrics`` and other requests while a model runs), the prediction log, one-line
logs for client errors and a frozen GC after start-up. :func:`service_settings` gives ``bentoml.service`` the
options from ``config.yaml`` (workers, traffic, tracing, metrics, access log) and a service class that puts the
request guards in front (``BodyDeadline`` outermost: bodies are read, in time, before a request counts against
``max_concurrency``; ``RequestLimits``: 400 for repeated headers, 408 for a body too slow, 415, 413) and bounded,
documented error bodies (``ErrorBodies``) behind them.

:func:`build_service` builds the same kind of class from functions: the form models baked before issue 21 use
(`modelctl upgrade` moves them to the class).
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import attrgetter
from pathlib import Path
from types import GenericAlias
from typing import Annotated, Any, ClassVar, ParamSpec, Protocol, TypeVar

import bentoml
import numpy as np
from bentoml.validators import ContentType
from pydantic import BaseModel, Field, field_validator

from modelkit import predlog
from modelkit.config import ModelConfig
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
from modelkit.uploads import UploadGuard, upload_routes


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
    """A ``bentoml.Service`` whose ASGI app (what ``bentoml serve`` runs) reads each request's body first, behind
    the request guards and error bodies of ``config.yaml``'s serving section (:func:`service_settings` makes the
    subclass that carries them).

    Middlewares added with ``add_asgi_middleware`` run inside BentoML's own, so inside
    ``traffic.max_concurrency``: a body read there holds a slot while it arrives. :class:`BodyDeadline`
    wraps the whole app instead.
    """

    body_deadline: dict[str, Any] | None = None  # BodyDeadline's options
    max_request_bytes: int | None = None  # RequestLimits' limit; None: no guards (added by hand)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if self.max_request_bytes is not None:
            # Outermost first: the guards answer before anything is parsed; ErrorBodies sees BentoML's errors.
            uploads = upload_routes(self)  # endpoints with file parameters (multipart/form-data), issue 21
            self.add_asgi_middleware(RequestLimits, max_bytes=self.max_request_bytes, upload_routes=uploads)
            if uploads:
                self.add_asgi_middleware(UploadGuard, routes=uploads)
            self.add_asgi_middleware(ErrorBodies)

    def to_asgi(self, is_main: bool = True) -> Any:
        app = super().to_asgi(is_main=is_main)
        return app if self.body_deadline is None else BodyDeadline(app, **self.body_deadline)


def service_settings(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for ``@bentoml.service(...)`` on a model's service class: ``config.yaml``'s serving
    options, and a service class that puts modelkit's request guards and bounded error bodies in front."""
    guarded = type(
        "GuardedService",
        (GuardedService,),
        {"body_deadline": body_deadline(config), "max_request_bytes": config.serving.max_request_bytes},
    )
    return {**service_options(config), "service_class": guarded}


def request_rows(row: type[BaseModel], config: ModelConfig) -> Any:
    """The type of ``POST /predict``'s ``instances``: a list of ``row``, 1 to ``serving.max_rows`` long."""
    return Annotated[
        GenericAlias(list, (row,)),
        Field(min_length=1, max_length=config.serving.max_rows, description="rows to score, at least one"),
    ]


def response_of(prediction: type[BaseModel]) -> Any:
    """The return type of ``POST /predict``: one ``prediction`` per row, sent as JSON.

    Declaring the media type stops BentoML from building the response's JSON schema on every request
    (measured: 15-17 % of worker CPU; see bench/serving.py).
    """
    return Annotated[GenericAlias(list, (prediction,)), ContentType("application/json")]


_P = ParamSpec("_P")
_R = TypeVar("_R")


class ModelService:
    """The base of a model's service class: ``POST /metadata``, start-up, the model call off the event loop.

    A subclass sets ``config`` (its ``config.yaml``, loaded) and ``bento_model`` (a ``BentoModel``: what
    ``bentoml build`` packages), overrides :meth:`setup` and defines its endpoints with ``@bentoml.api``.
    """

    config: ClassVar[ModelConfig]
    bento_model: ClassVar[Any]
    # Request fields and class labels that /metadata shows; None: as the model version recorded them when saved
    # (model_io.save's "features" and "classes").
    features: ClassVar[Sequence[str] | None] = None
    classes: ClassVar[Sequence[str] | None] = None

    def __init__(self) -> None:
        config = self.config
        stored = self.bento_model
        metadata = stored.info.metadata
        classes = list(self.classes if self.classes is not None else metadata.get("classes", []))
        self.info = ModelInfo(
            model=str(stored.tag),
            framework=config.framework,
            task=config.task,
            features=list(self.features if self.features is not None else metadata.get("features", [])),
            classes=classes,
            metrics=metadata.get("metrics", {}),
        )
        # Model calls run here, so the event loop stays free; serving.threads of them at a time per worker.
        self.executor = ThreadPoolExecutor(max_workers=config.serving.threads, thread_name_prefix="model")
        # the prediction log (issue 22): None unless MODELKIT_PREDLOG_URL names a store
        self.predlog = predlog.from_env(config, str(stored.tag), classes)
        quiet_client_errors()
        self.setup()
        freeze_gc()

    def setup(self) -> None:
        """Start-up, once in each worker before it takes requests (override it): load the model, open clients,
        read extra artifacts. The default loads nothing."""

    async def in_thread(self, function: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """``function(*args, **kwargs)``, run in this worker's model threads: the event loop keeps serving
        (health checks, metrics, other requests) while it runs."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args, **kwargs))

    def log_predictions(self, instances: Sequence[Any], outputs: Any, keys: Sequence[Any] | None = None) -> None:
        """Record the request rows and the model's raw output in the prediction log (``config.yaml`` ``monitor``);
        an append, written off the request path; nothing when the log is off. ``keys``: the request rows ground truth
        joins on, when ``instances`` are something else (an entity model's ids with the features it read)."""
        if self.predlog is not None:
            self.predlog.record(instances, outputs, keys)

    @bentoml.on_shutdown  # type: ignore[untyped-decorator]
    def close_prediction_log(self) -> None:
        """Write what the prediction log still holds before the worker exits (atexit does not run in BentoML's
        workers: without this, a stopped server lost up to monitor.flush_s of logged rows)."""
        if self.predlog is not None:
            self.predlog.close()

    @bentoml.api(route="/metadata")  # type: ignore[untyped-decorator]
    async def metadata(self) -> ModelInfo:
        """The model version being served, its features and classes, and its training metrics."""
        return self.info


@functools.lru_cache(maxsize=16)
def _getter(names: tuple[str, ...]) -> Callable[[Any], Any]:
    return attrgetter(*names)


def feature_matrix(rows: Sequence[BaseModel], names: Sequence[str]) -> np.ndarray:
    """Request rows -> a float64 array of shape (n_rows, len(names)), columns in ``names`` order."""
    values = _getter(tuple(names))
    return np.array([values(row) for row in rows], dtype=np.float64).reshape(len(rows), -1)


def text_matrix(rows: Sequence[BaseModel], names: Sequence[str]) -> np.ndarray:
    """Request rows -> an object array of shape (n_rows, len(names)) holding the text fields, in ``names`` order."""
    values = _getter(tuple(names))
    matrix = np.empty((len(rows), len(names)), dtype=object)
    for index, row in enumerate(rows):
        matrix[index, :] = values(row) if len(names) > 1 else (values(row),)
    return matrix


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
    """The BentoML service of the model in ``folder`` (the folder holding its ``config.yaml``), from functions.

    ``POST /predict`` takes ``{"instances": [<features row>, ...]}`` (1 to ``serving.max_rows``
    rows) and answers ``postprocess(model_io.predict(model, preprocess(rows)))``: one
    ``prediction`` per row, in request order. ``preprocess`` defaults to :func:`feature_matrix`
    over the fields of ``features``. ``name`` is the class name (default: from the model's name).
    """
    folder = Path(folder).resolve()
    config = load_config(folder / "config.yaml")
    fields = tuple(features.model_fields)
    prepare = preprocess if preprocess is not None else functools.partial(feature_matrix, names=fields)

    def setup(self: Any) -> None:
        self.model = model_io.load(self.bento_model)

    async def predict(self: Any, instances: Any) -> Any:
        outputs = await self.in_thread(model_io.predict, self.model, prepare(instances))
        self.log_predictions(instances, outputs)
        return postprocess(outputs)

    # The API's input and output models come from the annotations (bentoml.api reads the signature).
    predict.__annotations__ = {"instances": request_rows(features, config), "return": response_of(prediction)}
    predict.__doc__ = "One prediction per row, in request order."

    namespace: dict[str, Any] = {
        "__doc__": config.description,
        "config": config,
        "features": fields,
        "classes": tuple(classes),
        # the model pinned into the bento at build time (name:latest when serving the folder)
        "bento_model": bentoml.models.BentoModel(model_ref(config.name, folder)),
        "setup": setup,
        "predict": bentoml.api(route="/predict", **api_options(config))(predict),
    }
    inner = type(name or service_class(config.name), (ModelService,), namespace)
    service: bentoml.Service[Any] = bentoml.service(**service_settings(config))(inner)
    return service
