"""`modelctl upgrade`: merge template changes into models (three-way; conflict markers, never .rej files)."""

from __future__ import annotations

import argparse

from rich.table import Table

from modelctl.console import err, out
from modelctl.errors import UsageError
from modelctl.repo import Repo, find_repo
from modelctl.upgrade import Report, Status, adopt_models, upgrade_models

DESCRIPTION = """\
Re-bakes the template version a model records in .template.json and HEAD's cookiecutter-model/ with
the model's answers, and merges the difference into the model file by file (git merge-file).
Conflicts are written as conflict markers and listed (exit 1); a clean upgrade updates the record.
Models with uncommitted changes are refused unless --force. --check writes nothing and exits 1 when a
model is behind. Models baked before records existed: --adopt --from REV (the commit they were baked
from), commit the record, then upgrade.

Exit status: 0 every model upgraded or up to date; 1 a conflict, a refused (dirty) model, an error,
a named model without a record, or (--check) a model behind; 2 a usage error."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "upgrade",
        help="merge template changes into models (three-way, conflict markers)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="models to upgrade (or --all)")
    parser.add_argument("--all", action="store_true", dest="every", help="every model under models/")
    parser.add_argument("--check", action="store_true", help="list models behind the template; exit 1 if any")
    parser.add_argument("--force", action="store_true", help="upgrade models with uncommitted changes too")
    parser.add_argument("--adopt", action="store_true", help="write .template.json for models baked without one")
    parser.add_argument("--from", dest="rev", metavar="REV", help="with --adopt: the commit the models were baked from")
    parser.add_argument(
        "--trusted",
        metavar="REV",
        help="run only template versions from REV's history (CI: the pull request's base), not the branch's own",
    )
    parser.set_defaults(
        run=lambda a: upgrade(
            find_repo(),
            a.models,
            every=a.every,
            check=a.check,
            force=a.force,
            adopt_from=a.rev,
            adopt=a.adopt,
            trusted=a.trusted,
        )
    )


def upgrade(
    repo: Repo,
    models: list[str],
    *,
    every: bool = False,
    check: bool = False,
    force: bool = False,
    adopt: bool = False,
    adopt_from: str | None = None,
    trusted: str | None = None,
) -> int:
    if bool(models) == every:
        raise UsageError("name one or more models, or --all")
    if adopt != (adopt_from is not None):
        raise UsageError(
            "--adopt and --from REV go together (REV: the commit whose template the models were baked from)"
        )
    if adopt and check:
        raise UsageError("--check cannot be combined with --adopt")
    if adopt and trusted is not None:
        raise UsageError("--trusted cannot be combined with --adopt (which names its own revision)")
    if adopt_from is not None:
        report = adopt_models(repo, models, adopt_from, force=force)
    else:
        report = upgrade_models(repo, models, check=check, force=force, trusted=trusted)
    show(report, table=every or len(report.outcomes) > 1)
    if check:
        return report.exit_code
    return max(report.exit_code, relock(repo, [o.model for o in report.outcomes if o.files]))


def relock(repo: Repo, models: list[str]) -> int:
    """Lock again the models whose requirements an upgrade changed (their lock went stale); 1 when one fails."""
    from uv import find_uv_bin

    from modelctl.envs import installer_env
    from modelctl.lockfile import LockError, make, status

    failed = 0
    for name in models:
        if status(repo.model_dir(name)).state != "stale":
            continue
        out.print(f"{name}: the template changed its requirements; locking again ...", markup=False)
        try:
            out.print(make(repo.model_dir(name), str(find_uv_bin()), installer_env()).message, markup=False)
        except LockError as exc:
            failed = 1
            err.print(f"error: {exc}\nrun `modelctl lock {name}` once the package index can be reached", markup=False)
    return failed


def show(report: Report, table: bool) -> None:
    for notice in report.notices:
        err.print(f"notice: {notice}", markup=False)
    for outcome in report.outcomes:
        trees = (
            f" (template {outcome.old_tree[:7]} -> {outcome.new_tree[:7]})"
            if outcome.old_tree and outcome.new_tree
            else ""
        )
        quiet = outcome.status in (Status.UP_TO_DATE, Status.NO_RECORD) and not outcome.files and table
        if not quiet:
            headline = f"{outcome.model}: {outcome.label}" + (trees if outcome.files else "")
            out.print(headline + (f": {outcome.message}" if outcome.message else ""), markup=False)
            for change in outcome.files:
                note = f"  ({change.note})" if change.note else ""
                out.print(f"  {change.action.value:<16} {change.path}{note}", markup=False)
    if table:
        summary = Table("model", "status", "files", title=None, box=None, pad_edge=False)
        for outcome in report.outcomes:
            summary.add_row(outcome.model, outcome.label, str(len(outcome.files)) if outcome.files else "")
        out.print(summary)
