"""`modelctl ledger restore MODEL`: put back the previous version of a damaged release ledger or retrain log."""

from __future__ import annotations

import argparse

from modelctl.console import out
from modelctl.repo import Repo, find_repo
from modelctl.state import State


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ledger", help="repair the release ledger or retrain log in the state store")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    restore_parser = actions.add_parser(
        "restore",
        help="put back the version of MODEL's ledger before its last write (modelctl keeps one on every write)",
    )
    restore_parser.add_argument("model")
    restore_parser.add_argument("--retrain-log", action="store_true", help="restore the retrain log instead")
    restore_parser.set_defaults(run=lambda a: restore(find_repo(), a.model, a.retrain_log))


def restore(repo: Repo, model: str, retrain_log: bool = False) -> int:
    # The model may be gone from models/ already: its ledger is still worth repairing.
    state = State.of(repo)
    documents = state.retrain_log if retrain_log else state.ledger
    count = documents.restore(model)
    what = "retrain log" if retrain_log else "ledger"
    out.print(
        f"restored the previous {what} of {model} ({count} entries) at {documents.where(model)}; "
        f"the damaged one is now {documents.key(model)}.prev",
        markup=False,
    )
    return 0
