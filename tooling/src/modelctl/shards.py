"""Group selected models into CI jobs that fit GitHub's limits.

GitHub refuses a workflow run whose matrix has more than 256 jobs, so when more models are selected
than `[tool.modelctl] max_jobs` (at most 256), they are split into that many shards, balanced and in
name order; each job runs its models one after another. Below the limit every model is its own job
(its shard is named after it), as before.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    name: str
    models: tuple[str, ...]

    def as_matrix_entry(self) -> dict[str, str]:
        return {"shard": self.name, "models": ",".join(self.models)}


def shard(models: list[str], max_jobs: int) -> list[Shard]:
    """Every model in exactly one shard; at most ``max_jobs`` shards; sizes differ by at most one."""
    if max_jobs < 1:
        raise ValueError(f"max_jobs must be at least 1, got {max_jobs}")
    names = sorted(set(models))
    if len(names) <= max_jobs:
        return [Shard(name, (name,)) for name in names]
    count = max_jobs
    size, extra = divmod(len(names), count)
    shards, start = [], 0
    width = len(str(count))
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shards.append(Shard(f"shard-{index + 1:0{width}d}-of-{count}", tuple(names[start:end])))
        start = end
    return shards


def matrix(shards: list[Shard]) -> dict[str, list[dict[str, str]]]:
    """The GitHub `strategy.matrix` value: one `include` entry per job."""
    return {"include": [s.as_matrix_entry() for s in shards]}
