"""`modelctl train MODEL`: run the model's train.py in its own environment."""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass

from modelctl.console import err, out
from modelctl.envs import model_python
from modelctl.errors import ModelctlError
from modelctl.repo import Repo, find_repo
from modelctl.state import State


class TrainError(ModelctlError):
    pass


@dataclass(frozen=True)
class Trained:
    model_tag: str
    metrics: dict[str, float]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train a model (its train.py, in its own environment)")
    parser.add_argument("model")
    parser.set_defaults(run=lambda a: train(find_repo(), a.model))


def run_training(repo: Repo, model: str) -> Trained:
    repo.resolve([model])
    repo.config(model)
    python = model_python(repo, model)
    result = subprocess.run(
        [str(python), "train.py"],
        cwd=repo.model_dir(model),
        env=State.of(repo).env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise TrainError(f"models/{model}/train.py exited {result.returncode}:\n{tail}")
    try:
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        return Trained(summary["model"], summary["metrics"])
    except (IndexError, ValueError, KeyError) as exc:
        last = result.stdout[-300:]
        raise TrainError(
            f"models/{model}/train.py must end by printing JSON with 'model' and 'metrics'; got {last!r}"
        ) from exc


def train(repo: Repo, model: str) -> int:
    trained = run_training(repo, model)
    out.print(trained.model_tag, markup=False)
    err.print("  ".join(f"{k}={v}" for k, v in trained.metrics.items()), markup=False)
    return 0
