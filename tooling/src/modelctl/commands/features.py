"""`modelctl features materialize`: apply the shared feature repository and load its online store."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from modelctl.console import err
from modelctl.errors import UsageError
from modelctl.features import materialize as materialize_features
from modelctl.repo import find_repo
from modelctl.state import State
from modelkit.features import FeatureStoreError, parse_time


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except FeatureStoreError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("features", help="the shared feature store (Feast) of entity models")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "materialize",
        help="apply the feature repository and load the online store (SQLite, or Redis: MODEL_FEATURE_ONLINE_STORE)",
    )
    run.add_argument("--repo", type=Path, help="the feature repository (default: shared/feature_repo)")
    run.add_argument(
        "--models",
        metavar="A,B",
        help="only when one of these models reads features (config.yaml input: entity); nothing for the others",
    )
    run.add_argument(
        "--end", type=_time, help="load values up to this time: ISO 8601, UTC without a zone (default now)"
    )
    run.add_argument("--start", type=_time, help="load values from this time (default: end minus each view's TTL)")
    run.set_defaults(run=lambda a: materialize(a.repo, a.end, a.start, a.models))


def materialize(repo: Path | None, end: datetime | None, start: datetime | None, models: str | None = None) -> int:
    if end is not None and start is not None and start >= end:
        raise UsageError(f"--start {start.isoformat()} must be before --end {end.isoformat()}")
    root = find_repo()
    if models is not None:
        names = root.resolve([m.strip() for m in models.split(",") if m.strip()])
        if not any(root.config(name).input == "entity" for name in names):
            shown = ", ".join(names) or "no model"
            err.print(f"{shown}: no entity model among them (config.yaml input): nothing to materialize", markup=False)
            return 0
    materialize_features(
        root.root, State.of(root).root, repo, end, start, say=lambda line: err.print(line, markup=False)
    )
    return 0
