"""`modelctl rollback MODEL --env E [--to VERSION]`: redeploy the previous good version (or a given one)."""

from __future__ import annotations

import argparse

from modelctl.console import out
from modelctl.delivery import release
from modelctl.delivery.announce import announce_record
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("rollback", help="redeploy the previous good version (or --to)")
    parser.add_argument("model")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.add_argument("--to", type=int, metavar="VERSION", help="release of ENV to restore (per env)")
    parser.set_defaults(run=lambda a: rollback(find_repo(), a.model, a.env, a.to))


def rollback(repo: Repo, name: str, env: str, to: int | None) -> int:
    model = repo.model(name)
    try:
        record = release.rollback(model, env, to)
    except release.DeployFailedError as exc:
        announce_record(exc.record, "rollback failed", model.config.notify.slack_channel)
        raise
    announce_record(record, "rolled back", model.config.notify.slack_channel)
    out.print(f"rolled back {name} in {env} to v{record.version} ({record.bento}): {record.url}", markup=False)
    return 0
