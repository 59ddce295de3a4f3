"""`modelctl status [MODEL...]`: what is live in each environment, and is it healthy.

Releases are numbered per environment (issue 23): `v2` in production is the second release there, whatever
staging saw; the bento tag beside it says which build that is.
"""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from modelctl.console import out
from modelctl.delivery.release import status_rows
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="what is live per environment, and is it healthy")
    parser.add_argument("models", nargs="*", metavar="MODEL")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=lambda a: status(find_repo(), a.models, a.json))


def status(repo: Repo, models: list[str], as_json: bool = False) -> int:
    rows = status_rows(repo, models)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="deployments")
    for column in ("model", "env", "release", "bento", "url", "health", "deployed at", "by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["model"],
            row["env"],
            f"v{row['version']}" if row["version"] else "-",
            row["bento"] or "-",
            row["url"] or "-",
            row["health"],
            row["deployed_at"] or "-",
            row["by"] or "-",
        )
    out.print(table)
    return 0
