{%- set regression = cookiecutter.task == "regression" -%}
"""This model's own training checks (the platform's contract runs too: see tests/conftest.py)."""

from __future__ import annotations

{% if regression -%}
import numpy as np

import train

# Scale of the target (disease progression) is about 25-350: a useful model explains part of its variance.
MIN_R2 = 0.3


def test_targets_are_finite_and_positive() -> None:
    target = train.load_data().target
    assert np.isfinite(target).all() and target.min() > 0


def test_training_reaches_the_minimum_metric(trained: tuple[str, dict[str, float]]) -> None:
    _, metrics = trained
    assert metrics["r2"] >= MIN_R2, metrics
    baseline = float(np.std(train.split(train.load_data())[1].target))  # rmse of always predicting the mean
    assert metrics["rmse"] < baseline, (metrics, baseline)
{%- else -%}
import train
from api_schema import CLASS_NAMES

MIN_ACCURACY = {{ 0.8 if cookiecutter.input == "entity" else 0.85 }}


def test_every_class_is_in_the_data() -> None:
    assert set(train.load_data().target.tolist()) == set(range(len(CLASS_NAMES)))


def test_training_reaches_the_minimum_metric(trained: tuple[str, dict[str, float]]) -> None:
    _, metrics = trained
    assert metrics["accuracy"] >= MIN_ACCURACY, metrics
    assert 0 <= metrics["log_loss"] < 1.0, metrics
{%- endif %}
