"""What the GitHub workflows run for a selection: jobs, shards and the rule behind each (`modelctl ci plan`)."""

from __future__ import annotations

from dataclasses import dataclass

from modelctl.changes import Selection
from modelctl.shards import shard


@dataclass(frozen=True)
class Job:
    workflow: str
    job: str
    per_shard: bool
    command: str


# The jobs of .github/workflows/*.yml that do real work, and the command each one runs.
# tooling/tests/test_workflows.py checks the workflows against this table.
PULL_REQUEST_JOBS = (
    Job("ci.yml", "lint", False, "tox -e lint"),
    Job("ci.yml", "changes", False, "modelctl changed --format github"),
    Job("ci.yml", "platform", False, "tox -p -e shared,tooling,airflow"),
    Job("ci.yml", "model", True, "modelctl ci check --models {models}"),
    Job("ci.yml", "template", False, "tox -e template; modelctl upgrade --all --check --trusted BASE"),
)
DEPLOY_JOBS = (
    Job("deploy.yml", "build", True, "modelctl ci build --no-store --models {models} --out dist"),
    Job("deploy.yml", "record", True, "modelctl ci record --models {models} --from dist"),
    Job("deploy.yml", "staging", True, "modelctl ci deploy --env staging --models {models} --from dist"),
    Job("deploy.yml", "production", True, "modelctl ci deploy --env production --models {models} --from dist"),
)


def jobs_for(selection: Selection, max_jobs: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    shards = shard(selection.models, max_jobs)
    for job in PULL_REQUEST_JOBS + DEPLOY_JOBS:
        if job.job == "template":
            if selection.template:
                rows.append(_row(job, "-", "-", "cookiecutter-model/ changed"))
        elif job.job == "platform":
            if selection.platform:
                shown = ", ".join(selection.platform[:3]) + (", ..." if len(selection.platform) > 3 else "")
                rows.append(_row(job, "-", "-", f"the platform changed ({shown})"))
        elif job.per_shard:
            for part in shards:
                models = ",".join(part.models)
                why = selection.reason(part.models[0]) if len(part.models) == 1 else f"{len(part.models)} models"
                rows.append(_row(job, part.name, models, why))
        else:
            rows.append(_row(job, "-", "-", "always"))
    for part in shard(selection.removed, max_jobs):
        models = ",".join(part.models)
        command = f"modelctl ci undeploy --env staging,production --models {models}"
        rows.append(
            {
                "workflow": "deploy.yml",
                "job": "undeploy",
                "shard": part.name,
                "models": models,
                "command": command,
                "why": "model folder removed in this range",
            }
        )
    return rows


def _row(job: Job, shard_name: str, models: str, why: str) -> dict[str, str]:
    return {
        "workflow": job.workflow,
        "job": job.job,
        "shard": shard_name,
        "models": models,
        "command": job.command.format(models=models),
        "why": why,
    }
