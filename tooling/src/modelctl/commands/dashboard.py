"""`modelctl dashboard -o DIR`: build the static site of every model (deployments, gates, retrains, drift)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from modelctl.console import err, out
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="build a static site of every model: what is live where, gates, retrains, drift (opens from a file)",
        description="Reads models/ and the state store (MODELCTL_STORE, [tool.modelctl] store, or the local state "
        "folder, as every command does) and writes a static site into DIR.",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="DIR", help="folder to write the site to")
    parser.add_argument(
        "--no-health", action="store_true", help="do not check the health of deployments on this machine's local target"
    )
    parser.set_defaults(run=lambda a: dashboard(find_repo(), a.output, not a.no_health))


def dashboard(repo: Repo, output: Path, check_health: bool = True) -> int:
    from modelctl import dashboard as site  # deferred: Jinja2 and Plotly only for this command
    from modelctl.state import State

    started = time.perf_counter()
    state = State.of(repo)
    built = site.build(repo, output, state=state, check_health=check_health)
    seconds = time.perf_counter() - started
    if built.models and not state.ledger.models():
        # A wrong store (a typo in MODELCTL_STORE, another bucket) looks like a repository nobody deployed from.
        err.print(
            f"warning: the state store {state.store.where('')} holds no deployment record of any model, so every "
            "model shows as never deployed: if models were deployed, check MODELCTL_STORE (or [tool.modelctl] store)",
            markup=False,
        )
    out.print(
        f"dashboard: {built.models} models, {built.pages} pages, {built.charts} charts, "
        f"{built.reports} reports copied, {built.attention} need attention; {seconds:.1f}s -> "
        f"{built.out / 'index.html'}",
        markup=False,
    )
    return 0
