from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from modelkit import RequestLimits, api_options, parse_config, service_options

MINIMAL = "name: churn\ndescription: d\nowner: team\nframework: sklearn\n"
LIMIT = 2048


async def echo(request: Request) -> JSONResponse:
    try:
        body = await request.body()
    except Exception:  # noqa: BLE001 - mimic BentoML, which turns any error into a 500
        return JSONResponse({"error": "boom"}, status_code=500)
    return JSONResponse({"bytes": len(body)})


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = Starlette(routes=[Route("/predict", echo, methods=["POST"]), Route("/readyz", echo, methods=["GET"])])
    app.add_middleware(RequestLimits, max_bytes=LIMIT)
    with TestClient(app) as test_client:
        yield test_client


def test_within_limit_passes(client: TestClient) -> None:
    response = client.post("/predict", content=b"x" * LIMIT, headers={"content-type": "application/json"})
    assert response.json() == {"bytes": LIMIT}


def test_declared_length_over_limit_is_413(client: TestClient) -> None:
    response = client.post("/predict", content=b"x" * (LIMIT + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {
        "error": "request body too large",
        "detail": {"bytes": str(LIMIT + 1), "max_bytes": LIMIT},
    }


def test_streamed_body_over_limit_is_413_not_500(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml"])
def test_non_json_is_415(client: TestClient, content_type: str) -> None:
    response = client.post("/predict", content=b"{}", headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.json()["detail"]["expected"] == "application/json"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "application/ld+json"])
def test_json_variants_pass(client: TestClient, content_type: str) -> None:
    assert client.post("/predict", content=b"{}", headers={"content-type": content_type}).status_code == 200


def test_get_requests_are_untouched(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_service_options_follow_config() -> None:
    config = parse_config(
        MINIMAL + "serving: {workers: 2, concurrency: threads, threads: 8, timeout_s: 12, max_concurrency: 99}\n"
    )
    options = service_options(config)
    assert options["workers"] == 2
    assert options["threads"] == 8
    assert options["traffic"] == {"timeout": 12, "max_concurrency": 99}
    assert options["tracing"] == {"excluded_urls": [".*"]}
    assert options["labels"] == {"owner": "team", "framework": "sklearn"}


def test_async_mode_sets_no_threads_and_tracing_can_be_kept() -> None:
    options = service_options(parse_config(MINIMAL + "serving: {tracing: true, metrics: false}\n"))
    assert "threads" not in options and "tracing" not in options
    assert options["metrics"] == {"enabled": False}


def test_service_options_are_accepted_by_bentoml() -> None:
    from _bentoml_sdk.service import config as bentoml_config

    options = service_options(parse_config(MINIMAL + "serving: {concurrency: threads}\n"))
    for key in ("name", "description", "labels"):
        options.pop(key)
    bentoml_config.validate(options)


def test_api_options_from_batching() -> None:
    assert api_options(parse_config(MINIMAL)) == {}
    enabled = parse_config(MINIMAL + "serving: {max_rows: 20, batching: {enabled: true, max_batch_size: 32}}\n")
    assert api_options(enabled) == {"batchable": True, "max_batch_size": 32, "max_latency_ms": 1000}
    # Unset, it follows max_rows: a request of max_rows rows is one model call, never chunks BentoML may cancel.
    following = parse_config(MINIMAL + "serving: {max_rows: 300, batching: {enabled: true, max_latency_ms: 500}}\n")
    assert api_options(following) == {"batchable": True, "max_batch_size": 300, "max_latency_ms": 500}


@pytest.mark.parametrize(
    "headers",
    [
        [("content-type", "application/x-www-form-urlencoded"), ("content-type", "application/json")],
        [("content-type", "application/json"), ("content-type", "application/json")],
        [("Content-Type", "application/json"), ("content-TYPE", "text/plain")],
    ],
)
def test_repeated_content_type_is_400(client: TestClient, headers: list[tuple[str, str]]) -> None:
    response = client.post("/predict", content=b"{}", headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == [
        {"loc": ["header", "content-type"], "msg": "header sent more than once", "type": "duplicate_header", "count": 1}
    ]


async def call(app: RequestLimits, headers: list[tuple[bytes, bytes]], method: str = "POST") -> tuple[int, bytes]:
    """One request straight through the ASGI interface: HTTP clients merge or refuse repeated Content-Length."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/predict", "headers": headers}
    await app(scope, receive, send)  # type: ignore[arg-type]
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status, b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]


async def reached(scope: object, receive: object, send: object) -> None:
    raise AssertionError("a refused request reached the app")


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_repeated_content_length_is_400_before_the_app(method: str) -> None:
    import asyncio

    app = RequestLimits(reached, max_bytes=LIMIT)  # type: ignore[arg-type]
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2"), (b"content-length", b"2")]
    status, body = asyncio.run(call(app, headers, method))
    assert status == 400
    assert b'"loc":["header","content-length"]' in body


def test_values_repeated_in_error_bodies_are_cut_short(client: TestClient) -> None:
    response = client.post("/predict", content=b"{}", headers={"content-type": "application/x-" + "a" * 10_000})
    assert response.status_code == 415 and len(response.content) < 300
    assert len(response.json()["detail"]["content_type"]) == 100


@pytest.mark.parametrize(
    ("name", "expected"), [("iris_classifier", "IrisClassifier"), ("fraud_v2", "FraudV2"), ("x", "X")]
)
def test_service_class_is_the_templates_name(name: str, expected: str) -> None:
    from modelkit import service_class

    assert service_class(name) == expected
