from __future__ import annotations

import json
from typing import Any

import pytest

from api_schema import CLASS_NAMES, FEATURES
from service import CONFIG

EXPECTED_LABELS = ["setosa", "virginica"]


def post(client: Any, body: Any) -> Any:
    return client.post("/predict", json=body)


def test_sample_request_is_answered_correctly(client: Any, sample: dict[str, Any]) -> None:
    response = post(client, sample)
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert [p["label"] for p in predictions] == EXPECTED_LABELS
    for prediction in predictions:
        assert set(prediction["probabilities"]) == set(CLASS_NAMES)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert CLASS_NAMES[prediction["class_id"]] == prediction["label"]


def test_metadata_names_the_served_model(client: Any, trained: tuple[str, dict[str, float]]) -> None:
    response = client.post("/metadata", json={})
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["model"].startswith(CONFIG.name + ":")
    assert info["features"] == list(FEATURES)


def _row(sample: dict[str, Any], **changes: Any) -> dict[str, Any]:
    row = dict(sample["instances"][0], **changes)
    return {"instances": [row]}


@pytest.mark.parametrize(
    ("value", "why"),
    [("5.1", "string for a number"), (None, "null"), (True, "boolean"), (-1.0, "negative"), (1e9, "out of range")],
)
def test_bad_value_is_400_naming_the_field(client: Any, sample: dict[str, Any], value: Any, why: str) -> None:
    field = FEATURES[0]
    response = post(client, _row(sample, **{field: value}))
    assert response.status_code == 400, (why, response.text)
    assert field in response.text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_400(client: Any, sample: dict[str, Any], token: str) -> None:
    body = json.dumps(_row(sample)).replace(json.dumps(sample["instances"][0][FEATURES[0]]), token, 1)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text


def test_missing_and_unknown_fields_are_400(client: Any, sample: dict[str, Any]) -> None:
    row = dict(sample["instances"][0])
    del row[FEATURES[-1]]
    response = post(client, {"instances": [row]})
    assert response.status_code == 400 and FEATURES[-1] in response.text
    response = post(client, _row(sample, colour="blue"))
    assert response.status_code == 400 and "colour" in response.text


def test_row_count_limits(client: Any, sample: dict[str, Any]) -> None:
    assert post(client, {"instances": []}).status_code == 400
    row = sample["instances"][0]
    too_many = {"instances": [row] * (CONFIG.serving.max_rows + 1)}
    assert len(json.dumps(too_many)) < CONFIG.serving.max_request_bytes, "the body limit would answer first"
    assert post(client, too_many).status_code == 400


@pytest.mark.parametrize(
    "body", [b"{", b"not json", b"", b"[]", b'{"instances": {}}', b"\xff\xfe", b'{"instances": [1, 2]}']
)
def test_malformed_json_is_400_never_500(client: Any, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_body_over_the_limit_is_413(client: Any, sample: dict[str, Any]) -> None:
    big = b'{"instances": [' + b" " * CONFIG.serving.max_request_bytes + b"]}"
    response = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"]["max_bytes"] == CONFIG.serving.max_request_bytes


def test_chunked_body_over_the_limit_is_413(client: Any) -> None:
    def chunks() -> Any:
        yield b'{"instances": ['
        for _ in range(CONFIG.serving.max_request_bytes // 65536 + 2):
            yield b" " * 65536
        yield b"]}"

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_wrong_content_type_is_415(client: Any, sample: dict[str, Any]) -> None:
    response = client.post("/predict", content=json.dumps(sample), headers={"content-type": "text/csv"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported content type"


def test_health_endpoints(client: Any) -> None:
    for path in ("/livez", "/readyz", "/healthz"):
        assert client.get(path).status_code == 200, path
