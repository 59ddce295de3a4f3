"""This model's own answers (the platform's contract checks the rest: see tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from api_schema import CLASS_NAMES

EXPECTED_LABELS = ["setosa", "virginica"]


def test_sample_request_is_answered_correctly(client: Any, sample: dict[str, Any]) -> None:
    response = client.post("/predict", json=sample)
    assert response.status_code == 200, response.text
    predictions = response.json()
    assert [p["label"] for p in predictions] == EXPECTED_LABELS
    for prediction in predictions:
        assert set(prediction["probabilities"]) == set(CLASS_NAMES)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert CLASS_NAMES[prediction["class_id"]] == prediction["label"]
