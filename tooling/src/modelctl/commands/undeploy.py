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
    parser.add_argument("model")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.set_defaults(run=lambda a: undeploy(find_repo(), a.model, a.env))


def undeploy(repo: Repo, name: str, env: str) -> int:
    model = repo.model(name)
    record = release.undeploy(model, env)
    announce_record(model, record, "undeployed")
    stopped = f" (stopped {record.bento})" if record.bento else ""
    out.print(f"undeployed {name} from {env}{stopped}", markup=False)
    return 0
