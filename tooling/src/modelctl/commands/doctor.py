"""`modelctl doctor [MODEL...]`: is each model folder production-ready?"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.table import Table

from modelctl.console import out
from modelctl.doctor import CHECKS, ModelFolder, check_range, run_checks
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="production-readiness checks per model (exit 1 on errors)",
        # From the checks themselves (id and docstring), so a new check is listed without editing this.
        description=f"Checks {check_range()}: " + "; ".join(f"{c.__name__} {c.__doc__}" for c in CHECKS) + ".",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-hooks", action="store_true", help="skip MC010 (running pre-commit)")
    parser.set_defaults(run=lambda a: doctor(find_repo(), a.models, a.json, a.skip_hooks))


def doctor(repo: Repo, models: list[str], as_json: bool = False, skip_hooks: bool = False) -> int:
    checks = tuple(c for c in CHECKS if not (skip_hooks and c.__name__ == "MC010"))
    report = {}
    errors = 0
    for name in repo.resolve(models):
        findings = run_checks(ModelFolder(name, repo.model_dir(name), repo.root), checks)
        report[name] = findings
        errors += sum(1 for f in findings if not f.passed and f.severity == "error")
    if as_json:
        print(json.dumps({m: [asdict(f) for f in fs] for m, fs in report.items()}, indent=2))
    else:
        for name, findings in report.items():
            table = Table(title=f"doctor {name}")
            for column in ("id", "check", "result", "reason / fix"):
                table.add_column(column, overflow="fold")
            for f in findings:
                result = "ok" if f.passed else f.severity.upper()
                table.add_row(f.id, f.title, result, "" if f.passed else f"{f.reason}. Fix: {f.fix}")
            out.print(table)
    return 1 if errors else 0
