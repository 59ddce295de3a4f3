"""`modelctl changed`: the models a range of commits affects (the CI matrix), and why."""

from __future__ import annotations

import argparse
import json
import os

from modelctl import changeset
from modelctl.changes import Selection
from modelctl.console import err
from modelctl.envs import TOX_PREFIX
from modelctl.errors import UsageError
from modelctl.github import write_outputs
from modelctl.names import parse_list
from modelctl.repo import Repo, find_repo
from modelctl.shards import matrix, shard
from modelkit import ENVIRONMENTS

FORMATS = ("lines", "json", "github", "tox")
# The tox envs of the platform's own suites (tox.ini, label `platform`); lint runs for every change.
LINT_TOX_ENV = "lint"
PLATFORM_TOX_ENVS = ("shared", "tooling", "template", "airflow")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "changed",
        help="list the models a range of commits affects (what CI tests, builds and deploys)",
        description="Reasons go to stderr, one line per model; with --format lines stdout has only model names. "
        "--format json has every changed file per model; --format github writes the CI matrix (grouped into "
        "shards above [tool.modelctl] max_jobs) to $GITHUB_OUTPUT (and platform=true|false: whether the platform's "
        "own suites run); --format tox prints the tox envs to run (lint, the platform's suites when it changed, "
        "the models').",
    )
    parser.add_argument("--base", default="", help="base ref (PR base or the commit before a push)")
    parser.add_argument("--head", default="HEAD", help="head ref (default: HEAD)")
    parser.add_argument(
        "--rules-from", metavar="REF", help="read each model's ci.ignore/ci.extra_paths at REF (a PR passes its base)"
    )
    parser.add_argument(
        "--since-deployed",
        metavar="ENV",
        choices=ENVIRONMENTS,
        help="select against the commit last deployed to ENV, per model (from the state store); --base is the "
        "fallback when no shared store is configured in CI",
    )
    parser.add_argument("--format", choices=FORMATS, default="lines")
    parser.add_argument(
        "--output-prefix",
        default="",
        metavar="PREFIX",
        help="with --format github: prefix every output name (e.g. production_) for a second selection in one job",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="select every model")
    group.add_argument("--models", help="select exactly these models (comma-separated)")
    parser.set_defaults(
        run=lambda a: changed(
            find_repo(),
            a.base,
            a.head,
            a.format,
            select_every=a.all,
            models=parse_list(a.models) or None,  # an empty --models (a workflow input left blank) is no list
            rules=a.rules_from,
            since_deployed=a.since_deployed,
            prefix=a.output_prefix,
        )
    )


def print_reasons(selection: Selection) -> None:
    for name, reason in selection.reasons().items():
        err.print(f"{name}: {reason}", markup=False)
    for name in selection.removed:
        err.print(f"{name}: removed in this range (undeploy, never built)", markup=False)
    if selection.template:
        err.print("template: cookiecutter-model/ changed", markup=False)
    if selection.platform:
        shown = ", ".join(selection.platform[:3]) + (", ..." if len(selection.platform) > 3 else "")
        err.print(f"platform: its own suites run ({shown})", markup=False)
    else:
        err.print("platform: untouched (only model folders changed); its suites are skipped", markup=False)


def changed(
    repo: Repo,
    base: str,
    head: str = "HEAD",
    fmt: str = "lines",
    select_every: bool = False,
    models: list[str] | None = None,
    rules: str | None = None,
    since_deployed: str | None = None,
    prefix: str = "",
) -> int:
    if fmt == "github" and not os.environ.get("GITHUB_OUTPUT"):
        raise UsageError("--format github needs $GITHUB_OUTPUT (set by GitHub Actions)")
    if since_deployed and not (models or select_every):
        selection = changeset.since_deployed(repo, since_deployed, head, fallback_base=base)
    else:
        selection = changeset.compute(repo, base, head, select_every, models, rules_rev=rules)
    print_reasons(selection)
    if fmt == "lines":
        for name in selection.models:
            print(name)
    elif fmt == "json":
        print(json.dumps(selection.as_dict(), indent=2))
    elif fmt == "tox":  # the envs to run, for `tox run -e` (make test-changed)
        print(",".join(tox_envs(selection)))
    else:
        write_github_output(repo, selection, prefix)
    return 0


def tox_envs(selection: Selection) -> list[str]:
    """lint always (the hooks check model code too), the platform's suites when it changed, the selected models."""
    platform = list(PLATFORM_TOX_ENVS) if selection.platform else []
    return [LINT_TOX_ENV, *platform, *(f"{TOX_PREFIX}{name}" for name in selection.models)]


def github_outputs(repo: Repo, selection: Selection) -> dict[str, str]:
    """The `changes` job outputs: the job matrices (sharded to fit GitHub's limit) and the plain lists."""
    limit = repo.settings.max_jobs
    jobs = shard(selection.models, limit)
    removed_jobs = shard(selection.removed, limit)
    return {
        "matrix": json.dumps(matrix(jobs)),
        "count": str(len(jobs)),
        "model_count": str(len(selection.models)),
        "models": json.dumps(selection.models),
        "removed_matrix": json.dumps(matrix(removed_jobs)),
        "removed": json.dumps(selection.removed),
        "removed_count": str(len(removed_jobs)),
        "template": "true" if selection.template else "false",
        "platform": "true" if selection.platform else "false",
    }


def write_github_output(repo: Repo, selection: Selection, prefix: str = "") -> None:
    if prefix and not prefix.replace("_", "").isalnum():
        raise UsageError(f"--output-prefix {prefix!r}: letters, digits and _ only")
    outputs = github_outputs(repo, selection)
    write_outputs({f"{prefix}{key}": value for key, value in outputs.items()})
    jobs = json.loads(outputs["matrix"])["include"]
    err.print(
        f"{len(selection.models)} model(s) in {len(jobs)} job(s) (limit {repo.settings.max_jobs}); "
        f"{len(selection.removed)} removed",
        markup=False,
    )
    print(json.dumps({**selection.as_dict(), "jobs": jobs}))
