"""This model's own training checks (the platform's contract runs too: see tests/conftest.py)."""

from __future__ import annotations

import train
from api_schema import CLASS_NAMES

MIN_ACCURACY = 0.85


def test_every_class_is_in_the_data() -> None:
    assert set(train.load_data().target.tolist()) == set(range(len(CLASS_NAMES)))


def test_training_reaches_the_minimum_metric(trained: tuple[str, dict[str, float]]) -> None:
    _, metrics = trained
    assert metrics["accuracy"] >= MIN_ACCURACY, metrics
    assert 0 <= metrics["log_loss"] < 1.0, metrics
