"""`modelctl deploy MODEL --env E`: put a built, fuzzed, gate-passed bento live (or an exported, checksummed file)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import out
from modelctl.delivery import release
from modelctl.delivery.announce import announce_record
from modelctl.delivery.candidate import resolve_bento
from modelctl.errors import UsageError
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS, TARGETS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("deploy", help="deploy a built, fuzzed and gate-passed bento to an environment")
    parser.add_argument("model")
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.add_argument("--target", choices=TARGETS)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--bento", help="bento tag (default: the newest built)")
    source.add_argument("--bento-file", type=Path, help="an exported .bento (checked, with --sha256, before import)")
    parser.add_argument(
        "--sha256", help="the digest `modelctl export` printed for --bento-file (handed over, never read beside it)"
    )
    parser.add_argument("--yes", action="store_true", help="confirm a production deploy (CI: the approval)")
    parser.add_argument("--force", action="store_true", help="deploy even without a recorded fuzz and load-test pass")
    parser.set_defaults(
        run=lambda a: deploy(find_repo(), a.model, a.env, a.target, a.bento, a.bento_file, a.yes, a.force, a.sha256)
    )


def deploy(
    repo: Repo,
    name: str,
    env: str,
    target: str | None,
    bento: str | None,
    bento_file: Path | None,
    yes: bool,
    force: bool,
    digest: str | None = None,
) -> int:
    model = repo.model(name)
    approved = yes or (release.in_ci() and env == "production")
    release.check_environment(model, env, approved)
    sha256 = None
    if bento_file is not None:
        if not digest:
            raise UsageError("--bento-file needs --sha256: the digest `modelctl export` printed when it was tested")
        bento, sha256 = release.import_file(model, bento_file, digest)
    chosen = resolve_bento(model, bento)
    try:
        record = release.deploy(model, env, chosen, target=target, approved=approved, force=force, sha256=sha256)
    except release.DeployFailedError as exc:
        announce_record(exc.record, "deploy failed", model.config.notify.slack_channel)
        raise
    except release.WatchBreachedError as exc:
        announce_record(exc.record, f"rolled back: {exc}", model.config.notify.slack_channel)
        raise
    announce_record(record, record.outcome, model.config.notify.slack_channel)
    out.print(f"{record.outcome} {record.bento} to {env} as v{record.version}: {record.url or '-'}", markup=False)
    return 0
