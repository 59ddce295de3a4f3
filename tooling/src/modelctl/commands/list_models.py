"""`modelctl list`: a table of the models in the repo."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from modelctl.console import out
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("list", help="list models: framework, task, owner, deploy targets, retrain schedule")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=lambda a: list_models(find_repo(), as_json=a.json))


def list_models(repo: Repo, as_json: bool = False) -> int:
    rows: list[dict[str, Any]] = [
        {
            "name": model.name,
            "framework": model.config.framework,
            "task": model.config.task,
            "owner": model.config.owner,
            "targets": list(model.config.deploy.targets),
            "retrain": model.config.retrain.schedule,
        }
        for model in repo.models()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"{len(rows)} model{'s' if len(rows) != 1 else ''} in {repo.models_dir}")
    for column in ("name", "framework", "task", "owner", "deploy targets", "retrain schedule"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"], row["framework"], row["task"], row["owner"], ", ".join(row["targets"]), row["retrain"] or "-"
        )
    out.print(table)
    return 0
