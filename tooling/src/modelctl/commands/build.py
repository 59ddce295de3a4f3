"""`modelctl build MODEL`: build a bento offline from the model folder and its newest trained model."""

from __future__ import annotations

import argparse

from modelctl.console import err, out
from modelctl.delivery.build import build as build_bento
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("build", help="build a bento (offline, pinned requirements, shared/ as a wheel)")
    parser.add_argument("model")
    parser.add_argument("--model-tag", help="the trained model version to pin (default: the newest)")
    parser.set_defaults(run=lambda a: build(find_repo(), a.model, a.model_tag))


def build(repo: Repo, model: str, model_tag: str | None = None) -> int:
    built = build_bento(repo.model(model), model_tag)
    out.print(built.bento, markup=False)
    err.print(f"model {built.model_tag}", markup=False)
    return 0
