"""`modelctl undeploy MODEL --env E`: stop a model in an environment."""

from __future__ import annotations

import argparse

from modelctl.console import out
from modelctl.delivery import release
from modelctl.delivery.announce import announce_record
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("undeploy", help="stop a model in an environment")
    parser.add_argument("model", help="a model of the repo, or one removed from it that the ledger knows")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.set_defaults(run=lambda a: undeploy(find_repo(), a.model, a.env))


def undeploy(repo: Repo, name: str, env: str) -> int:
    """Works for a model whose folder is gone too (CI undeploys removed models): the ledger says where it ran."""
    record = release.undeploy(repo, name, env)
    channel = repo.model(name).config.notify.slack_channel if name in repo.model_names() else None
    announce_record(record, "undeployed", channel)
    out.print(f"undeployed {name} from {env}: {record.reason}", markup=False)
    return 0
