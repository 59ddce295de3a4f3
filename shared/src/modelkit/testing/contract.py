"""The contract every model meets, classifier or regressor (collected by the ``modelkit.testing`` plugin).

It relies on the template's conventions only: ``train.py`` (``load_data``, ``split``, ``evaluate``,
``train``), ``model_io.py`` (``NAME``, ``load``), ``api_schema.py`` (``Features``, ``Prediction``),
``sample_request.json``, ``config.yaml`` and ``notebooks/*.ipynb``. Requests go through the real ASGI
app (``Service.to_asgi()``), so middleware and pydantic validation answer as they do when served.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelkit.config import ModelConfig
from modelkit.errors import BENTOML_REQUEST_LOGGER, MAX_ERROR_BYTES, MAX_ITEMS


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _post(client: Any, body: Any, path: str = "/predict") -> Any:
    return client.post(path, json=body)


def _raw(client: Any, body: Any, content_type: str | None = "application/json", path: str = "/predict") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return client.post(path, content=body, headers=headers)


def _row(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"instances": [dict(sample["instances"][0], **changes)]}


def _numeric_field(sample: dict[str, Any]) -> str:
    for name, value in sample["instances"][0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(name)
    pytest.skip("the sample's first row has no numeric field (text and image rows are checked by their own tests)")


def _invalid_row(sample: dict[str, Any], value: str) -> tuple[dict[str, Any], str]:
    """A one-row request that ``value`` makes invalid, and the field the 400 names: a numeric field set to the
    string ``value``, or (a row without numbers: text, image) an unknown field carrying it."""
    for name, current in sample["instances"][0].items():
        if isinstance(current, int | float) and not isinstance(current, bool):
            return _row(sample, **{name: value}), str(name)
    return _row(sample, unknown_field=value), "unknown_field"


def _documented(openapi: dict[str, Any], path: str, response: Any) -> None:
    """``response`` has a status documented for ``path`` and a body that matches its schema."""
    import jsonschema

    operation = openapi["paths"][path]["post"]
    documented = operation["responses"].get(str(response.status_code))
    status = response.status_code
    assert documented is not None, f"{status} is not documented for {path}: {sorted(operation['responses'])}"
    schema = documented["content"]["application/json"]["schema"]
    validator = jsonschema.Draft7Validator({**schema, "components": openapi["components"]})
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(response.json())]
    assert not problems, f"{response.status_code} body of {path} differs from /docs.json: {problems[:3]}"


# --- training --------------------------------------------------------------------------------


def test_data_matches_the_api_contract(model_config: ModelConfig) -> None:
    train, schema = _module("train"), _module("api_schema")
    data = train.load_data()
    if model_config.input == "image":  # (rows, height, width): one image per row, as preprocess makes them
        assert data.features.ndim == 3 and len(schema.Features.model_fields) == 1
    elif model_config.input == "entity":  # a request row is an id; the model reads FEATURE_REFS from the store
        assert data.features.ndim == 2 and data.features.shape[1] == len(schema.FEATURE_REFS)
        assert len(schema.Features.model_fields) == 1 and len(data.ids) == len(data.target)
    else:  # one column per request field (numbers, or text)
        assert data.features.ndim == 2 and data.features.shape[1] == len(schema.Features.model_fields)
    assert len(data.target) == data.features.shape[0] > 0


def test_training_reports_the_retrain_metric(trained: tuple[str, dict[str, float]], model_config: ModelConfig) -> None:
    _, metrics = trained
    assert model_config.retrain.metric in metrics, (
        f"config.yaml retrain.metric {model_config.retrain.metric!r} is not among train.evaluate()'s {sorted(metrics)}"
    )
    assert all(math.isfinite(value) for value in metrics.values()), metrics


def test_saved_model_is_labelled_and_loads(trained: tuple[str, dict[str, float]], model_config: ModelConfig) -> None:
    import bentoml

    train, model_io = _module("train"), _module("model_io")
    tag, metrics = trained
    stored = bentoml.models.get(tag)
    assert stored.info.labels["framework"] == model_config.framework
    assert stored.info.labels["git_commit"]
    assert stored.info.metadata["metrics"] == metrics
    _, holdout = train.split(train.load_data())
    assert train.evaluate(model_io.load(stored), holdout) == pytest.approx(metrics, rel=1e-6)


def test_each_training_run_is_a_new_version(trained: tuple[str, dict[str, float]]) -> None:
    import bentoml

    train, model_io = _module("train"), _module("model_io")
    tag, _ = trained
    second, _ = train.train()
    assert second != tag
    assert {str(m.tag) for m in bentoml.models.list(model_io.NAME)} >= {tag, second}


def test_training_data_can_come_from_sql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_config: ModelConfig
) -> None:
    from sqlalchemy import create_engine, text

    train, schema = _module("train"), _module("api_schema")
    env, query = getattr(train, "DATA_URL_ENV", None), getattr(train, "QUERY", None)
    table = f"{model_config.name}_training"
    if env is None or query is None or table not in Path(query).read_text(encoding="utf-8"):
        pytest.skip(f"train.py has no DATA_URL_ENV/QUERY reading the table {table}")
    packaged = train.load_data()
    features = list(schema.Features.model_fields)
    integer_target = packaged.target.dtype.kind in "iu"
    url = f"sqlite:///{tmp_path / 'data.db'}"
    engine = create_engine(url)
    columns = ", ".join(f"{name} REAL" for name in features)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {table} ({columns}, target {'INTEGER' if integer_target else 'REAL'})"))
        placeholders = ", ".join(f":{name}" for name in (*features, "target"))
        rows = [
            {**dict(zip(features, map(float, x), strict=True)), "target": int(y) if integer_target else float(y)}
            for x, y in zip(packaged.features, packaged.target, strict=True)
        ]
        connection.execute(text(f"INSERT INTO {table} VALUES ({placeholders})"), rows)
    engine.dispose()
    monkeypatch.setenv(env, url)
    loaded = train.load_data()
    assert loaded.features.shape == packaged.features.shape
    assert loaded.target.tolist() == pytest.approx(packaged.target.tolist())


# --- the service: answers --------------------------------------------------------------------


def test_sample_request_is_answered(client: Any, sample: dict[str, Any], openapi: dict[str, Any]) -> None:
    schema = _module("api_schema")
    response = _post(client, sample)
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert isinstance(predictions, list) and len(predictions) == len(sample["instances"])
    for prediction in predictions:
        schema.Prediction.model_validate(prediction)
    operation = openapi["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    import jsonschema

    jsonschema.Draft7Validator({**operation["schema"], "components": openapi["components"]}).validate(predictions)


def test_metadata_names_the_served_model(
    client: Any, trained: tuple[str, dict[str, float]], model_config: ModelConfig
) -> None:
    schema = _module("api_schema")
    tag, metrics = trained
    response = client.post("/metadata", json={})
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["model"].startswith(model_config.name + ":")
    assert info["framework"] == model_config.framework and info["task"] == model_config.task
    assert info["features"] == list(schema.Features.model_fields)
    assert info["metrics"] == pytest.approx(bentoml_metrics(info["model"]))
    assert set(metrics) == set(info["metrics"])


def bentoml_metrics(tag: str) -> dict[str, float]:
    import bentoml

    return dict(bentoml.models.get(tag).info.metadata["metrics"])  # type: ignore[arg-type]


def test_health_endpoints(client: Any) -> None:
    for path in ("/livez", "/readyz", "/healthz"):
        assert client.get(path).status_code == 200, path


# --- the service: bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"), [("5.1", "string for a number"), (None, "null"), (True, "boolean"), ([], "array")]
)
def test_bad_value_is_400_naming_the_field(client: Any, sample: dict[str, Any], value: Any, why: str) -> None:
    field = _numeric_field(sample)
    response = _post(client, _row(sample, **{field: value}))
    assert response.status_code == 400, (why, response.text)
    assert field in response.text


def test_out_of_range_value_is_400(client: Any, sample: dict[str, Any]) -> None:
    schema = _module("api_schema")
    properties = schema.Features.model_json_schema().get("properties", {})
    for field, spec in properties.items():
        for key, outside in (("maximum", 1), ("exclusiveMaximum", 1), ("minimum", -1), ("exclusiveMinimum", -1)):
            if key in spec:
                value = spec[key] + outside * max(1.0, abs(spec[key]))
                response = _post(client, _row(sample, **{field: value}))
                assert response.status_code == 400, (field, value, response.text)
                assert field in response.text
                return
    pytest.skip("api_schema.Features bounds no field")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400(client: Any, sample: dict[str, Any], token: str) -> None:
    field = _numeric_field(sample)
    body = json.dumps(_row(sample, **{field: "__TOKEN__"})).replace('"__TOKEN__"', token)
    response = _raw(client, body)
    assert response.status_code == 400, response.text


def test_missing_and_unknown_fields_are_400(client: Any, sample: dict[str, Any]) -> None:
    row = dict(sample["instances"][0])
    last = list(row)[-1]
    del row[last]
    response = _post(client, {"instances": [row]})
    assert response.status_code == 400 and last in response.text, response.text
    response = _post(client, _row(sample, colour="blue"))
    assert response.status_code == 400 and "colour" in response.text, response.text


def test_row_count_limits(client: Any, sample: dict[str, Any], model_config: ModelConfig) -> None:
    assert _post(client, {"instances": []}).status_code == 400
    too_many = {"instances": [sample["instances"][0]] * (model_config.serving.max_rows + 1)}
    assert len(json.dumps(too_many)) < model_config.serving.max_request_bytes, "the body limit would answer first"
    assert _post(client, too_many).status_code == 400


@pytest.mark.parametrize(
    "body", [b"{", b"not json", b"", b"[]", b'{"instances": {}}', b"\xff\xfe", b'{"instances": [1, 2]}']
)
def test_malformed_json_is_400_never_500(client: Any, body: bytes) -> None:
    response = _raw(client, body)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["error"], str)


def test_body_over_the_limit_is_413(client: Any, model_config: ModelConfig) -> None:
    big = b'{"instances": [' + b" " * model_config.serving.max_request_bytes + b"]}"
    response = _raw(client, big)
    assert response.status_code == 413
    assert response.json()["detail"]["max_bytes"] == model_config.serving.max_request_bytes


def test_chunked_body_over_the_limit_is_413(client: Any, model_config: ModelConfig) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(model_config.serving.max_request_bytes // 65536 + 2):
            yield b" " * 65536
        yield b"]}"

    response = _raw(client, chunks())
    assert response.status_code == 413


def test_wrong_content_type_is_415(client: Any, sample: dict[str, Any]) -> None:
    response = _raw(client, json.dumps(sample), "text/csv")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported content type"


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "application/x-www-form-urlencoded"), ("content-type", "application/json")],
        [("content-type", "application/json"), ("content-type", "application/json")],
    ],
)
def test_repeated_content_type_is_400(client: Any, sample: dict[str, Any], headers: list[tuple[str, str]]) -> None:
    response = client.post("/predict", content=json.dumps(sample), headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["detail"][0]["type"] == "duplicate_header"


def _many_errors(sample: dict[str, Any], config: ModelConfig, keys: int = 20) -> tuple[bytes, int, list[str]]:
    """Up to max_rows rows (within max_request_bytes), each with ``keys`` unknown keys: (body, rows, keys)."""
    unknown = [f"unknown_{i}" for i in range(keys)]
    row = {**sample["instances"][0], **dict.fromkeys(unknown, 1.5)}
    rows = config.serving.max_rows
    body = json.dumps({"instances": [row] * rows}).encode()
    while len(body) > config.serving.max_request_bytes and rows > 1:
        rows //= 2
        body = json.dumps({"instances": [row] * rows}).encode()
    return body, rows, unknown


def test_many_errors_get_a_small_answer_naming_each_unknown_key_once(
    client: Any, sample: dict[str, Any], model_config: ModelConfig
) -> None:
    body, rows, unknown = _many_errors(sample, model_config)
    response = _raw(client, body)
    assert response.status_code == 400
    assert len(response.content) <= MAX_ERROR_BYTES, f"{len(response.content)} bytes answered a bad request"
    answer = response.json()
    assert answer["count"] == rows * len(unknown)
    reported = [item["loc"][-1] for item in answer["detail"] if item["type"] == "extra_forbidden"]
    assert sorted(reported) == sorted(unknown)[:MAX_ITEMS]
    assert all(item["count"] == rows for item in answer["detail"])


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.tracebacks += record.exc_info is not None


@pytest.fixture
def request_log() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_client_errors_are_logged_in_one_line_without_values(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, request_log: _Records
) -> None:
    secret = "value-that-must-not-be-logged"  # pragma: allowlist secret
    invalid, _ = _invalid_row(sample, secret)
    assert _post(client, invalid).status_code == 400
    body, _, _ = _many_errors(sample, model_config)
    assert _raw(client, body).status_code == 400
    assert len(request_log.lines) == 2 and request_log.tracebacks == 0, request_log.lines
    assert not [line for line in request_log.lines if secret in line or "Traceback" in line or len(line) > 500]


def test_error_bodies_match_the_openapi_document(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, openapi: dict[str, Any]
) -> None:
    invalid, _ = _invalid_row(sample, "x")
    big = b'{"instances": [' + b" " * model_config.serving.max_request_bytes + b"]}"
    for path in ("/predict", "/metadata"):
        answers = [
            _raw(client, b"{", path=path),
            _raw(client, b"[]", path=path),
            _raw(client, big, path=path),
            _raw(client, b"{}", "text/plain", path=path),
            client.post(path, content=b"{}", headers=[("content-type", "application/json")] * 2),
        ]
        if path == "/predict":
            many, _, _ = _many_errors(sample, model_config)
            answers += [_post(client, invalid), _raw(client, many)]
        assert {a.status_code for a in answers} == {400, 413, 415}
        for answer in answers:
            _documented(openapi, path, answer)


# --- entity rows (input: entity) -------------------------------------------------------------------


def test_unknown_ids_get_a_documented_404_naming_them(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, openapi: dict[str, Any]
) -> None:
    if model_config.input != "entity":
        pytest.skip("not an entity model (config.yaml input)")
    schema = _module("api_schema")
    (field,) = schema.Features.model_fields
    unknown = int(schema.Features.model_json_schema()["properties"][field]["maximum"])  # valid, never in the data
    known = sample["instances"][0][field]
    response = _post(client, {"instances": [{field: known}, {field: unknown}, {field: unknown - 1}]})
    assert response.status_code == 404, response.text
    assert response.json() == {
        "error": f"{schema.ENTITY_KEY} {unknown}, {unknown - 1} have no features in the feature store"
    }
    _documented(openapi, "/predict", response)
    assert _post(client, {"instances": [{field: known}]}).status_code == 200  # the known id alone is answered
    assert client.get("/readyz").status_code == 200


# --- text and image rows (input: text, image) ------------------------------------------------------


def _text_fields(model_config: ModelConfig) -> list[tuple[str, int]]:
    """(field, maxLength) of every string field of a text model's request row."""
    if model_config.input != "text":
        pytest.skip("not a text model (config.yaml input)")
    properties = _module("api_schema").Features.model_json_schema().get("properties", {})
    fields = [(name, int(spec["maxLength"])) for name, spec in properties.items() if spec.get("type") == "string"]
    assert fields and all(limit == model_config.serving.max_text_chars for _, limit in fields), (
        f"every text field is limited by serving.max_text_chars: {fields}"
    )
    return fields


UNICODE_TEXTS = [
    "naïve café, crème brûlée",
    "日本語のテキストです",
    "مرحبا بالعالم",  # right to left
    "👩‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👍🏽 thumbs",  # joiners, modifiers
    "e\u0301\u0301\u0301 combining marks",
    "zero\u200bwidth\u200d and a BOM \ufeff",
    "\u202eright-to-left override",
    "tab\tnew\nline\rcarriage",
    "nul \u0000 inside",
    "\U0001d54f\U0001d560\U0001d565 astral",
    " ",
]


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_any_unicode_text_is_answered(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, text: str
) -> None:
    for field, _ in _text_fields(model_config):
        response = _post(client, _row(sample, **{field: text}))
        assert response.status_code == 200, (field, text, response.text)


def test_lone_surrogates_get_an_answer_not_a_server_error(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, openapi: dict[str, Any]
) -> None:
    for field, _ in _text_fields(model_config):
        body = json.dumps(_row(sample, **{field: "__TOKEN__"})).replace("__TOKEN__", "\\ud800 and \\udfff")
        response = _raw(client, body)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            _documented(openapi, "/predict", response)


def test_text_over_the_limit_is_400_naming_the_field(
    client: Any, sample: dict[str, Any], model_config: ModelConfig
) -> None:
    for field, limit in _text_fields(model_config):
        assert limit + 100 < model_config.serving.max_request_bytes, "the body limit would answer first"
        at_limit = _post(client, _row(sample, **{field: "é" * limit}))
        assert at_limit.status_code == 200, at_limit.text
        response = _post(client, _row(sample, **{field: "é" * (limit + 1)}))
        assert response.status_code == 400 and field in response.text, response.text
        for value in (5, None, ["a"], {"text": "a"}, ""):
            response = _post(client, _row(sample, **{field: value}))
            assert response.status_code == 400 and field in response.text, (value, response.text)


def test_hostile_images_get_a_documented_400_or_413_never_a_server_error(
    client: Any, sample: dict[str, Any], model_config: ModelConfig, openapi: dict[str, Any]
) -> None:
    from modelkit.testing.hostile import hostile_images

    if model_config.input != "image":
        pytest.skip("not an image model (config.yaml input)")
    (field,) = _module("api_schema").Features.model_fields
    answers = {}
    for name, text in hostile_images(model_config).items():
        response = _post(client, _row(sample, **{field: text}))
        answers[name] = response.status_code
        assert response.status_code in (400, 413), (name, response.text)
        _documented(openapi, "/predict", response)
        if response.status_code == 400:
            assert field in response.text, (name, response.text)
    assert client.get("/readyz").status_code == 200
    assert answers["decompression bomb (declares 2 gigapixels)"] == 400, answers


# --- the notebook ----------------------------------------------------------------------------


def _notebooks(folder: Path) -> list[Path]:
    return sorted((folder / "notebooks").glob("*.ipynb"))


def test_notebook_executes_top_to_bottom(model_dir: Path, trained: tuple[str, dict[str, float]]) -> None:
    import nbformat
    from nbclient import NotebookClient

    _, metrics = trained
    notebooks = _notebooks(model_dir)
    assert notebooks, f"no notebook in {model_dir / 'notebooks'}"
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        resources = {"metadata": {"path": str(path.parent)}}
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources=resources).execute()
        outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
        assert any(name in str(o) for o in outputs for name in metrics), f"{path.name} shows no metric"
