from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from modelkit.samples import Bounds, RequestMaker, numeric_bounds, read_sample


class Row(BaseModel):
    length: Annotated[float, Field(ge=0, le=10)]
    count: Annotated[int, Field(gt=0, lt=5)]
    free: float
    name: str


ROWS = [{"length": 10.0, "count": 4, "free": -3.5, "name": "a"}, {"length": 0.0, "count": 1, "free": 2.0, "name": "b"}]


def test_bounds_come_from_the_json_schema() -> None:
    bounds = numeric_bounds(Row.model_json_schema())
    assert bounds["length"] == Bounds(False, 0.0, 10.0, False)
    assert bounds["count"] == Bounds(True, 0.0, 5.0, True)
    assert bounds["free"] == Bounds(False, -math.inf, math.inf, False)
    assert "name" not in bounds


@given(st.integers(min_value=0, max_value=2**32))
def test_requests_stay_valid_and_vary(seed: int) -> None:
    maker = RequestMaker(ROWS, numeric_bounds(Row.model_json_schema()), max_rows=4)
    request = maker.request(random.Random(seed))
    assert 1 <= len(request["instances"]) <= 4
    for row in request["instances"]:
        Row.model_validate(row)
        assert isinstance(row["count"], int) and row["name"] in ("a", "b")


def test_jitter_changes_values() -> None:
    maker = RequestMaker(ROWS, numeric_bounds(Row.model_json_schema()))
    rng = random.Random(1)
    frees = {row["free"] for _ in range(50) for row in maker.rows_for(rng)}
    assert len(frees) > 10


@pytest.mark.parametrize("content", ['{"instances": []}', "[]", '{"instances": [1]}', '{"rows": [{}]}'])
def test_a_sample_without_rows_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "sample_request.json").write_text(content)
    with pytest.raises(ValueError, match="must be"):
        read_sample(tmp_path)


def test_a_sample_is_read(tmp_path: Path) -> None:
    (tmp_path / "sample_request.json").write_text(json.dumps({"instances": ROWS}))
    assert read_sample(tmp_path) == {"instances": ROWS}
