"""Requests made from a model's ``sample_request.json`` and its request schema (no model code imported).

Used by the default Locust user (:mod:`modelkit.loadtest`) and the contract tests (:mod:`modelkit.testing`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_FILE = "sample_request.json"


def read_sample(folder: Path, name: str = SAMPLE_FILE) -> dict[str, Any]:
    """The model's example request, ``{"instances": [<row>, ...]}`` with at least one row."""
    path = folder / name
    sample: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    rows = sample.get("instances") if isinstance(sample, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path} must be {{'instances': [<row object>, ...]}} with at least one row")
    return sample


@dataclass(frozen=True)
class Bounds:
    """What the request schema allows for one numeric field."""

    integer: bool = False
    minimum: float = -math.inf
    maximum: float = math.inf
    exclusive: bool = False  # the bounds themselves are not allowed

    def allows(self, value: float) -> bool:
        if self.exclusive:
            return self.minimum < value < self.maximum
        return self.minimum <= value <= self.maximum


def numeric_bounds(row_schema: Mapping[str, Any]) -> dict[str, Bounds]:
    """Numeric fields of a JSON schema for one row (e.g. ``Features.model_json_schema()``) and their bounds."""
    bounds: dict[str, Bounds] = {}
    for field, schema in row_schema.get("properties", {}).items():
        kind = schema.get("type")
        if kind not in ("number", "integer"):
            continue
        exclusive = "exclusiveMinimum" in schema or "exclusiveMaximum" in schema
        low = schema.get("exclusiveMinimum", schema.get("minimum", -math.inf))
        high = schema.get("exclusiveMaximum", schema.get("maximum", math.inf))
        bounds[field] = Bounds(kind == "integer", float(low), float(high), exclusive)
    return bounds


class RequestMaker:
    """Realistic requests: 1..max_rows rows drawn from the sample, numbers jittered within the schema's bounds."""

    def __init__(
        self, rows: list[dict[str, Any]], bounds: Mapping[str, Bounds], max_rows: int = 4, jitter: float = 0.02
    ) -> None:
        self.rows = rows
        self.bounds = dict(bounds)
        self.max_rows = max(1, max_rows)
        self.jitter = jitter

    def value(self, field: str, value: Any, rng: random.Random) -> Any:
        bound = self.bounds.get(field)
        if bound is None or isinstance(value, bool) or not isinstance(value, int | float):
            return value
        moved: float = value * rng.uniform(1 - self.jitter, 1 + self.jitter)
        moved = round(moved) if bound.integer else round(moved, 6)
        return moved if bound.allows(moved) else value  # near a bound: the sample's own (valid) value

    def rows_for(self, rng: random.Random) -> list[dict[str, Any]]:
        picked = [rng.choice(self.rows) for _ in range(rng.randint(1, self.max_rows))]
        return [{k: self.value(k, v, rng) for k, v in row.items()} for row in picked]

    def request(self, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
        return {"instances": self.rows_for(rng)}
