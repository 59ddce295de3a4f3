"""Train: run the model's own train.py in its own environment; a new model version in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass

from modelctl.errors import ModelctlError
from modelctl.model import Model
from modelctl.state import State


class TrainError(ModelctlError):
    pass


@dataclass(frozen=True)
class Trained:
    model_tag: str
    metrics: dict[str, float]


def store_env(model: Model) -> dict[str, str]:
    """What a model process needs to reach the model store of this state."""
    return {"BENTOML_HOME": str(State.of(model.repo).bentoml_home)}


def train(model: Model) -> Trained:
    result = model.run(["train.py"], what=model.relative("train.py"), env=store_env(model))
    line = result.last_json_line()
    try:
        summary = json.loads(line)
        return Trained(str(summary["model"]), {str(k): float(v) for k, v in summary["metrics"].items()})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrainError(
            f"{model.relative('train.py')} must end by printing JSON with 'model' and 'metrics'; "
            f"got {result.stdout[-300:]!r}"
        ) from exc
