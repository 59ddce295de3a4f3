"""CI shards: every selected model in exactly one job, never more jobs than GitHub allows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelctl.shards import matrix, shard


def test_below_the_limit_one_model_per_job() -> None:
    shards = shard(["b", "a", "c"], 256)
    assert [(s.name, s.models) for s in shards] == [("a", ("a",)), ("b", ("b",)), ("c", ("c",))]
    assert matrix(shards) == {"include": [{"shard": n, "models": n} for n in "abc"]}


def test_above_the_limit_balanced_shards() -> None:
    names = [f"m{i:04d}" for i in range(1000)]
    shards = shard(names, 256)
    assert len(shards) == 256
    assert {len(s.models) for s in shards} == {3, 4}
    assert shards[0].name == "shard-001-of-256" and shards[0].models == ("m0000", "m0001", "m0002", "m0003")
    assert [m for s in shards for m in s.models] == names


@given(st.sets(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=700), st.integers(1, 256))
def test_every_model_in_exactly_one_shard(names: set[str], limit: int) -> None:
    shards = shard(list(names), limit)
    assert len(shards) <= limit
    flat = [m for s in shards for m in s.models]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert all(s.models for s in shards)
    sizes = [len(s.models) for s in shards]
    assert not sizes or max(sizes) - min(sizes) <= 1 or len(names) <= limit


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shard(["a"], 0)
