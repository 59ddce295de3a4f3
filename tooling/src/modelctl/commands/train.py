"""`modelctl train MODEL`: run the model's train.py in its own environment."""

from __future__ import annotations

import argparse

from modelctl.console import err, out
from modelctl.delivery.train import train as train_model
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("train", help="train a model (its train.py, in its own environment)")
    parser.add_argument("model")
    parser.set_defaults(run=lambda a: train(find_repo(), a.model))


def train(repo: Repo, model: str) -> int:
    trained = train_model(repo.model(model))
    out.print(trained.model_tag, markup=False)
    err.print("  ".join(f"{k}={v}" for k, v in trained.metrics.items()), markup=False)
    return 0
