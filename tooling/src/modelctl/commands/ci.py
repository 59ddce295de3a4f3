"""`modelctl ci plan`: what the GitHub workflows would run for a range of commits, and why."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from rich.table import Table

from modelctl.changes import Selection
from modelctl.commands.changed import compute
from modelctl.console import out
from modelctl.repo import Repo, find_repo


@dataclass(frozen=True)
class Job:
    workflow: str
    job: str
    per_model: bool
    command: str


# The jobs of .github/workflows/*.yml that do real work, and the command each one runs.
# tooling/tests/test_workflows.py checks the workflows against this table.
PULL_REQUEST_JOBS = (
    Job("ci.yml", "lint", False, "tox -e lint"),
    Job("ci.yml", "changes", False, "modelctl changed --format github"),
    Job(
        "ci.yml",
        "model",
        True,
        "modelctl doctor {model}; tox -e model-{model}; modelctl train/build/loadtest/fuzz {model}",
    ),
    Job("ci.yml", "template", False, "tox -e template"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ci", help="CI helpers")
    sub = parser.add_subparsers(dest="ci_command", metavar="SUBCOMMAND", required=True)
    plan_parser = sub.add_parser("plan", help="show which CI jobs a range would run for which models, and why")
    plan_parser.add_argument("--base", default="", help="base ref, as for `modelctl changed`")
    plan_parser.add_argument("--head", default="HEAD")
    plan_parser.add_argument("--json", action="store_true")
    plan_parser.set_defaults(run=lambda a: plan(find_repo(), a.base, a.head, as_json=a.json))


def jobs_for(selection: Selection) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for job in PULL_REQUEST_JOBS:
        if job.job == "template":
            if selection.template:
                rows.append(_row(job, "-", "cookiecutter-model/ changed"))
        elif job.per_model:
            for model in selection.models:
                rows.append(_row(job, model, "; ".join(selection.reasons.get(model, []))))
        else:
            rows.append(_row(job, "-", "always"))
    for model in selection.removed:
        rows.append(
            {
                "workflow": "deploy.yml",
                "job": "undeploy",
                "model": model,
                "command": "-",
                "why": "model folder removed in this range",
            }
        )
    return rows


def _row(job: Job, model: str, why: str) -> dict[str, str]:
    return {
        "workflow": job.workflow,
        "job": job.job,
        "model": model,
        "command": job.command.format(model=model),
        "why": why,
    }


def plan(repo: Repo, base: str, head: str = "HEAD", as_json: bool = False) -> int:
    selection = compute(repo, base, head)
    rows = jobs_for(selection)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title=f"CI plan for {base or '(no base)'}..{head}: {len(selection.models)} model(s)")
    for column in ("workflow", "job", "model", "command", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in ("workflow", "job", "model", "command", "why")))
    out.print(table)
    if not selection.models:
        out.print("No model is affected: no model job will run.")
    return 0
