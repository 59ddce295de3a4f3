"""build_service on a toy model: the real ASGI app, as `bentoml serve` would run it (no server process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field
from starlette.testclient import TestClient

from modelkit.errors import MAX_ERROR_BYTES

CONFIG = """\
name: toy_regressor
description: Adds two numbers, badly.
owner: team
framework: sklearn
task: regression
serving: {max_rows: 50, max_request_bytes: 20000, batching: {enabled: true, max_latency_ms: 1000}}
"""


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: Annotated[float, Field(strict=True, ge=0, le=100)]
    b: Annotated[float, Field(strict=True, ge=0, le=100)]


class Value(BaseModel):
    value: float


def load(stored: Any) -> np.ndarray:
    weights: np.ndarray = np.load(stored.path_of("weights.npy"))
    return weights


def predict(model: np.ndarray, rows: np.ndarray) -> np.ndarray:
    result: np.ndarray = rows @ model
    return result


def postprocess(values: np.ndarray) -> list[Value]:
    return [Value(value=float(v)) for v in values]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import bentoml

    from modelkit.service import build_service

    folder = tmp_path_factory.mktemp("toy_regressor")
    (folder / "config.yaml").write_text(CONFIG)
    with bentoml.models.create("toy_regressor", metadata={"metrics": {"rmse": 0.5}}) as stored:
        np.save(stored.path_of("weights.npy"), np.array([1.0, 2.0]))
    io = SimpleNamespace(load=load, predict=predict)
    return build_service(folder, features=Row, prediction=Value, model_io=io, postprocess=postprocess)


@pytest.fixture(scope="module")
def client(service: Any) -> Iterator[TestClient]:
    with TestClient(service.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_service_is_named_and_configured_from_config_yaml(service: Any) -> None:
    assert service.name == "toy_regressor"
    assert service.inner.__name__ == "ToyRegressor"
    assert service.inner.__doc__ == "Adds two numbers, badly."
    assert service.config["traffic"]["max_concurrency"] > 0
    predict_api = service.apis["predict"]
    assert predict_api.route == "/predict" and predict_api.batchable and predict_api.max_batch_size == 50
    assert len(service.models) == 1  # the BentoModel class attribute: what `bentoml build` packages
    assert [cls.__name__ for cls, _ in service.middlewares] == ["RequestLimits", "ErrorBodies"]


def test_predict_runs_preprocess_model_and_postprocess(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [{"a": 1, "b": 2}, {"a": 0.5, "b": 0}]})
    assert response.status_code == 200, response.text
    assert response.json() == [{"value": 5.0}, {"value": 0.5}]


def test_metadata(client: TestClient) -> None:
    info = client.post("/metadata", json={}).json()
    assert info["model"].startswith("toy_regressor:")
    assert info == {**info, "framework": "sklearn", "task": "regression", "features": ["a", "b"], "classes": []}
    assert info["metrics"] == {"rmse": 0.5}


def test_rows_are_limited_by_config(client: TestClient) -> None:
    assert client.post("/predict", json={"instances": []}).status_code == 400
    assert client.post("/predict", json={"instances": [{"a": 1, "b": 1}] * 51}).status_code == 400


def test_guards_and_bounded_errors_are_in_front(client: TestClient) -> None:
    rows = [{"a": 1, "b": 1, **{f"k{i}": 1 for i in range(20)}}] * 50
    body = json.dumps({"instances": rows})
    many = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert many.status_code == 400 and len(many.content) <= MAX_ERROR_BYTES and many.json()["count"] == 1000
    assert client.post("/predict", content=b"{}", headers={"content-type": "text/csv"}).status_code == 415
    too_big = client.post("/predict", content=b"x" * 20_001, headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    repeated = client.post("/predict", content=b"{}", headers=[("content-type", "application/json")] * 2)
    assert repeated.status_code == 400


def test_the_document_requires_the_body_and_describes_the_errors(client: TestClient) -> None:
    document = client.get("/docs.json").json()
    predict_operation = document["paths"]["/predict"]["post"]
    assert predict_operation["requestBody"]["required"] is True
    assert {"400", "413", "415", "429", "500", "503", "504"} <= set(predict_operation["responses"])
    assert "BadRequest" in document["components"]["schemas"]


def test_a_model_module_defines_exactly_one_service(service: Any, tmp_path: Path) -> None:
    """What modelctl's build_bento.py looks for: one bentoml.Service among the module's values."""
    import bentoml

    from modelkit import service as service_module

    namespace = {"Toy": service, "build": service_module.build_service, "helper": service_module.feature_matrix}
    assert [k for k, v in namespace.items() if isinstance(v, bentoml.Service)] == ["Toy"]
    assert not [v for v in vars(service_module).values() if isinstance(v, bentoml.Service)]


def test_feature_matrix_orders_columns_by_name() -> None:
    from modelkit.service import feature_matrix

    rows = [Row(a=1, b=2), Row(a=3, b=4)]
    assert feature_matrix(rows, ["b", "a"]).tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert feature_matrix(rows, ["a"]).shape == (2, 1)


def test_a_metric_that_is_not_finite_is_null_as_the_document_says() -> None:
    """JSON has no NaN: /metadata sent null where /docs.json promised a number (found by fuzzing a model whose
    holdout score was NaN)."""
    import json

    import jsonschema

    from modelkit.service import ModelInfo

    info = ModelInfo(
        model="m:1", framework="sklearn", task="regression", features=["a"], classes=[],
        metrics={"r2": float("nan"), "rmse": 1.5, "mae": float("inf")},
    )  # fmt: skip
    data = json.loads(info.model_dump_json())
    assert data["metrics"] == {"r2": None, "rmse": 1.5, "mae": None}
    jsonschema.validate(data, ModelInfo.model_json_schema())


# --- the class form a model's service.py takes (issue 21) ------------------------------------------------------

CLASS_SERVICE = """\
from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
from pydantic import BaseModel, ConfigDict

from modelkit import api_options, load_config, model_ref
from modelkit.service import ModelService, feature_matrix, request_rows, response_of, service_settings

HERE = Path(__file__).parent
CONFIG = load_config(HERE / "config.yaml")
STARTS = []


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: float
    b: float


class Value(BaseModel):
    value: float


Rows = request_rows(Row, CONFIG)
Values = response_of(Value)


@bentoml.service(**service_settings(CONFIG))
class ClassToy(ModelService):
    config = CONFIG
    bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, HERE))

    def setup(self) -> None:
        STARTS.append(self.bento_model.tag)
        self.weights = np.load(self.bento_model.path_of("weights.npy"))

    @bentoml.api(route="/predict", **api_options(CONFIG))
    async def predict(self, instances: Rows) -> Values:
        rows = feature_matrix(instances, ["a", "b"])
        values = await self.in_thread(np.matmul, rows, self.weights)
        return [Value(value=float(v)) for v in values]

    @bentoml.api(route="/double")
    async def double(self, x: float) -> float:
        return 2 * x
"""


@pytest.fixture(scope="module")
def class_service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import importlib.util

    import bentoml

    folder = tmp_path_factory.mktemp("class_toy")
    # metrics off: the module's first client registered BentoML's Prometheus metrics in this process already
    config = CONFIG.replace("toy_regressor", "class_toy").replace("max_rows: 50,", "max_rows: 50, metrics: false,")
    (folder / "config.yaml").write_text(config)
    (folder / "service.py").write_text(CLASS_SERVICE)
    metadata = {"metrics": {"rmse": 0.25}, "features": ["a", "b"]}
    with bentoml.models.create("class_toy", metadata=metadata) as stored:
        np.save(stored.path_of("weights.npy"), np.array([1.0, 2.0]))
    spec = importlib.util.spec_from_file_location("class_toy_service", folder / "service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # bentoml resolves the annotations in the module's namespace
    spec.loader.exec_module(module)
    return module


def test_a_service_class_gets_the_guards_metadata_and_its_own_endpoints(class_service: Any) -> None:
    service = class_service.ClassToy
    assert service.name == "class_toy" and service.apis["predict"].batchable
    assert set(service.apis) == {"predict", "metadata", "double"}
    assert [cls.__name__ for cls, _ in service.middlewares] == ["RequestLimits", "ErrorBodies"]
    with TestClient(service.to_asgi(), raise_server_exceptions=False) as test_client:
        assert len(class_service.STARTS) == 1, "setup runs once at start-up"
        response = test_client.post("/predict", json={"instances": [{"a": 1, "b": 2}]})
        assert response.status_code == 200 and response.json() == [{"value": 5.0}], response.text
        info = test_client.post("/metadata", json={}).json()
        assert (info["features"], info["classes"], info["metrics"]) == (["a", "b"], [], {"rmse": 0.25})
        assert test_client.post("/double", json={"x": 2}).json() == 4
        # the guards answer for the model's own endpoint too
        assert test_client.post("/double", content=b"{}", headers={"content-type": "text/csv"}).status_code == 415
        assert test_client.post("/predict", json={"instances": [{"a": 1}] * 51}).status_code == 400


def test_text_matrix_keeps_text_fields_as_objects() -> None:
    from modelkit.service import text_matrix

    class Message(BaseModel):
        title: str
        body: str

    rows = [Message(title="hi", body="naïve 👍"), Message(title="", body="x")]
    assert text_matrix(rows, ["body"]).tolist() == [["naïve 👍"], ["x"]]
    matrix = text_matrix(rows, ["body", "title"])
    assert matrix.dtype == object and matrix.tolist() == [["naïve 👍", "hi"], ["x", ""]]
