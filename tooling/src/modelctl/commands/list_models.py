"""`modelctl list`: a table of the models in the repo."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from modelctl.console import out
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help="list models: framework, owner, deploy targets, retrain schedule")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=lambda a: list_models(find_repo(), as_json=a.json))


def list_models(repo: Repo, as_json: bool = False) -> int:
    rows = []
    for name in repo.resolve(None):
        config = repo.config(name)
        rows.append(
            {
                "name": name,
                "framework": config.framework,
                "owner": config.owner,
                "targets": list(config.deploy.targets),
                "retrain": config.retrain.schedule,
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return 0
    table = Table(title=f"{len(rows)} model{'s' if len(rows) != 1 else ''} in {repo.models_dir}")
    for column in ("name", "framework", "owner", "deploy targets", "retrain schedule"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["framework"], row["owner"], ", ".join(row["targets"]), row["retrain"] or "-")
    out.print(table)
    return 0
