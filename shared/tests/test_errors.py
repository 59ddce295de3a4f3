from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from modelkit.errors import (
    BENTOML_REQUEST_LOGGER,
    ERROR_SCHEMAS,
    MAX_ERROR_BYTES,
    MAX_ITEMS,
    ClientErrorLogFilter,
    ErrorBodies,
    bad_request,
    bounded_error_body,
    document_errors,
    quiet_client_errors,
)


def extra_forbidden(rows: int, keys: int) -> list[dict[str, Any]]:
    return [
        {"type": "extra_forbidden", "loc": ["instances", r, f"k{k}"], "msg": "Extra inputs are not permitted"}
        for r in range(rows)
        for k in range(keys)
    ]


def test_an_unknown_key_in_every_row_is_reported_once_with_its_count() -> None:
    body = bad_request(extra_forbidden(1000, 3))
    assert body["count"] == 3000
    assert [(item["loc"], item["count"]) for item in body["detail"]] == [
        (["instances", 0, "k0"], 1000),
        (["instances", 0, "k1"], 1000),
        (["instances", 0, "k2"], 1000),
    ]
    assert body["error"] == "invalid request: 3000 validation errors"


def test_at_most_max_items_kinds_and_never_more_than_the_byte_limit() -> None:
    body = bad_request(extra_forbidden(1, 500))
    assert len(body["detail"]) == MAX_ITEMS and body["count"] == 500
    huge = [{"type": "t" * 10_000, "loc": ["x" * 100_000] * 100, "msg": "m" * 100_000} for _ in range(50)]
    huge += [{"type": f"kind{i}", "loc": [f"{'y' * 60}{i}"], "msg": "z" * 190} for i in range(50)]
    assert len(json.dumps(bad_request(huge))) <= MAX_ERROR_BYTES


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error": "1 validation error", "detail": [{"type": "missing", "loc": ["a"], "msg": "m"}]}', "missing"),
        (400, b'[{"error": "bad input"}]', "invalid_request"),
        (400, b"not json", "invalid_request"),
    ],
)
def test_every_400_gets_the_bad_request_shape(status: int, body: bytes, expected: str) -> None:
    answer = json.loads(bounded_error_body(status, body))
    assert set(answer) == {"error", "detail", "count"}
    assert answer["detail"][0]["type"] == expected


@pytest.mark.parametrize("status", [404, 429, 500, 503, 504])
def test_other_errors_keep_only_a_short_error_message(status: int) -> None:
    long_body = json.dumps({"error": "x" * 10_000, "detail": "y" * 10_000}).encode()
    answer = json.loads(bounded_error_body(status, long_body))
    assert list(answer) == ["error"] and len(answer["error"]) <= 300
    phrase = json.loads(bounded_error_body(status, b"\xff not json"))
    assert phrase["error"] and list(phrase) == ["error"]


def bentoml_like_document() -> dict[str, Any]:
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/InvalidArgument"}}}}
    body = {"content": {"application/json": {"schema": {"type": "object", "required": ["instances"]}}}}
    return {
        "paths": {
            "/predict": {"post": {"responses": {"200": {"description": "ok"}, "400": ref}, "requestBody": body}},
            "/metadata": {"post": {"responses": {"200": {"description": "ok"}}, "requestBody": {"content": {}}}},
            "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
        "components": {"schemas": {"InvalidArgument": {"type": "object"}, "Features": {"type": "object"}}},
    }


def test_the_document_describes_every_error_body() -> None:
    document = document_errors(bentoml_like_document())
    schemas = document["components"]["schemas"]
    assert "InvalidArgument" not in schemas and "Features" in schemas
    assert set(ERROR_SCHEMAS) <= set(schemas)
    predict = document["paths"]["/predict"]["post"]
    for status, name in (("400", "BadRequest"), ("413", "PayloadTooLarge"), ("415", "UnsupportedMediaType")):
        assert predict["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith(name)
    assert predict["requestBody"]["required"] is True
    assert "required" not in document["paths"]["/metadata"]["post"]["requestBody"]
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    assert list(document["paths"]["/metrics"]["get"]["responses"]) == ["200"]


def test_the_error_schemas_accept_the_bodies_the_guards_produce() -> None:
    import jsonschema

    from modelkit.serving import error_body

    def validate(name: str, body: dict[str, Any]) -> None:
        schema = {**ERROR_SCHEMAS[name], "components": {"schemas": ERROR_SCHEMAS}}
        jsonschema.Draft7Validator(schema).validate(body)

    validate("BadRequest", bad_request(extra_forbidden(3, 2)))
    validate("PayloadTooLarge", error_body("request body too large", {"bytes": ">10", "max_bytes": 10}))
    validate("UnsupportedMediaType", error_body("unsupported content type", {"content_type": "a/b", "expected": "x"}))
    validate("Error", {"error": "Too many requests"})


# --- the middleware, around a Starlette app that answers like BentoML -----------------------------


async def many_errors(request: Request) -> Response:
    errors = extra_forbidden(1000, 20)
    return JSONResponse({"error": f"{len(errors)} validation error for Input", "detail": errors}, status_code=400)


async def streamed_error(request: Request) -> Response:
    async def chunks() -> Iterator[bytes]:  # type: ignore[misc]
        yield b'{"error": "boom", '
        yield b'"detail": "x"}'

    from starlette.responses import StreamingResponse

    return StreamingResponse(chunks(), status_code=503, media_type="application/json")


async def fine(request: Request) -> Response:
    return JSONResponse([{"value": 1.0}] * 3000)


async def not_found_text(request: Request) -> Response:
    return PlainTextResponse("Not Found", status_code=404)


async def docs(request: Request) -> Response:
    return JSONResponse(bentoml_like_document())


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/predict", many_errors, methods=["POST"]),
            Route("/stream", streamed_error, methods=["POST"]),
            Route("/fine", fine, methods=["POST"]),
            Route("/text", not_found_text, methods=["POST"]),
            Route("/docs.json", docs, methods=["GET"]),
        ]
    )
    app.add_middleware(ErrorBodies)
    with TestClient(app) as test_client:
        yield test_client


def test_a_3_mb_error_leaves_as_a_small_one(client: TestClient) -> None:
    response = client.post("/predict", json={})
    assert response.status_code == 400
    assert len(response.content) <= MAX_ERROR_BYTES
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["count"] == 20_000 and len(response.json()["detail"]) == 20


def test_a_streamed_error_is_rewritten_and_success_and_text_pass_untouched(client: TestClient) -> None:
    assert client.post("/stream").json() == {"error": "boom"}
    fine_response = client.post("/fine")
    assert fine_response.status_code == 200 and len(fine_response.json()) == 3000
    assert client.post("/text").text == "Not Found"


def test_the_served_document_is_rewritten(client: TestClient) -> None:
    document = client.get("/docs.json").json()
    assert "BadRequest" in document["components"]["schemas"]
    assert "413" in document["paths"]["/predict"]["post"]["responses"]


# --- the log --------------------------------------------------------------------------------------


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float


def validation_error() -> ValidationError:
    try:
        Row.model_validate({"x": "secret-value", "secret-key": 1})
    except ValidationError as exc:
        return exc
    raise AssertionError("no error")


class ClientFaultError(Exception):
    class _Code:
        value = 404

    error_code = _Code()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, Collect]]:
    logger = logging.getLogger("modelkit-test-requests")
    handler = Collect()
    logger.addHandler(handler)
    logger.addFilter(ClientErrorLogFilter())
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()


def log_exception(logger: logging.Logger, exc: BaseException) -> None:
    """What BentoML's log_exception() does: logger.error(..., exc_info=True) inside the except block."""
    try:
        raise exc
    except BaseException:
        logger.error("Exception on %s [%s]", "/predict", "POST", exc_info=True)


def test_a_validation_error_is_one_line_without_values_or_traceback(logged: tuple[logging.Logger, Collect]) -> None:
    logger, handler = logged
    log_exception(logger, validation_error())
    (record,) = handler.records
    text = logging.Formatter().format(record)
    assert text == "client error on /predict [POST]: 2 validation errors"
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "secret" not in text and "Traceback" not in text


def test_other_client_errors_are_one_line_and_server_errors_keep_their_traceback(
    logged: tuple[logging.Logger, Collect],
) -> None:
    logger, handler = logged
    log_exception(logger, ClientFaultError("secret"))
    log_exception(logger, RuntimeError("bug"))
    client_error, server_error = handler.records
    assert client_error.getMessage() == "client error on /predict [POST]: 404 ClientFaultError"
    assert server_error.levelno == logging.ERROR and server_error.exc_info is not None


def test_quiet_client_errors_attaches_one_filter_to_bentomls_request_logger() -> None:
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    quiet_client_errors()
    quiet_client_errors()
    assert sum(isinstance(f, ClientErrorLogFilter) for f in logger.filters) == 1


def test_bentoml_still_logs_request_exceptions_where_the_filter_listens() -> None:
    from bentoml._internal.server import http_app

    assert http_app.logger.name == BENTOML_REQUEST_LOGGER
