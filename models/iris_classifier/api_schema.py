"""The API contract of iris_classifier: what a request row is and what a prediction is.

`train.py` reads feature names from here too, so training and serving can never disagree
on columns.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CLASS_NAMES = ("setosa", "versicolor", "virginica")

# strict: "5.1" (a string) is refused, not coerced; NaN and Infinity are refused.
Centimetres = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]


class Features(BaseModel):
    """One flower, measured in centimetres."""

    model_config = ConfigDict(extra="forbid")

    sepal_length: Centimetres
    sepal_width: Centimetres
    petal_length: Centimetres
    petal_width: Centimetres


FEATURES: tuple[str, ...] = tuple(Features.model_fields)


class Prediction(BaseModel):
    """The prediction for one row, in request order."""

    label: str = Field(description="the most likely class")
    class_id: int = Field(description="index of `label` in the model's classes")
    probabilities: dict[str, float] = Field(description="probability of every class; sums to 1")
