"""The GitHub workflows: offline lint, security rules, and the structure the CI issue asks for."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelctl.ciplan import PULL_REQUEST_JOBS
from modelctl.main import build_parser
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")
LOCAL_WORKFLOW = re.compile(r"^\s*uses:\s+\$/\.github/workflows/([\w.-]+\.ya?ml)\s*$")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "deploy.yml", "retrain.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_schema_and_zizmor_are_clean(path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    schema = subprocess.run(
        [str(bin_dir / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    zizmor = subprocess.run(
        [str(bin_dir / "zizmor"), "--offline", "--min-severity", "low", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_security_rules(path: Path) -> None:
    text = path.read_text()
    workflow = load(path.name)
    for line in text.splitlines():
        if "uses:" in line:
            local = LOCAL_WORKFLOW.match(line)  # this repository's own reusable workflow, at this commit
            if local:
                assert (ROOT / ".github/workflows" / local.group(1)).is_file(), line
                continue
            assert PINNED.match(line), f"{path.name}: not pinned to a full SHA with a version comment: {line.strip()}"
    assert workflow["permissions"] == {}, "least privilege: permissions: {} at the top"
    assert "pull_request_target" not in text
    for job_id, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}:{job_id} must declare its permissions"
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{job_id}: persist-credentials: false"
            assert "${{" not in step.get("run", ""), f"{job_id}: event data must reach scripts through env:"


OPERATORS = {"&&", "||", ";", "|", ">>", ">", "(", ")", ";;"}
SHELL_WORDS = {"if", "then", "else", "fi"}


def _commands(run: str) -> list[list[str]]:
    """The simple commands of a `run:` script (quotes respected, shell keywords dropped)."""
    found: list[list[str]] = []
    for line in run.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in OPERATORS:
                found.append(current)
                current = []
            elif not (token in SHELL_WORDS and not current):
                current.append(token)
        found.append(current)
    return [words for words in found if words and not words[0].startswith("$")]


def _subcommands() -> dict[str, set[str]]:
    """Every `modelctl` command, with its subcommands (for `modelctl ci ...`)."""
    commands: dict[str, set[str]] = {}
    for name, parser in build_parser()._subparsers._group_actions[0].choices.items():  # noqa: SLF001 - no public API
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        commands[name] = set(subparsers[0].choices) if subparsers else set()
    return commands


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_is_a_thin_call_of_a_command_that_exists(path: Path) -> None:
    commands = _subcommands()
    make_targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    tox_envs = {"lint", "shared", "tooling", "template", "airflow", "fast"}
    for step in steps(load(path.name)):
        for words in _commands(step.get("run", "")):
            tool = words[0]
            if tool.endswith("modelctl"):
                assert words[1] in commands, f"{path.name}: `modelctl {words[1]}` does not exist"
                if commands[words[1]]:
                    assert words[2] in commands[words[1]], f"{path.name}: `modelctl {words[1]} {words[2]}`"
                parser = build_parser()
                parser.exit_on_error = False
                argv = [w.replace("$", "X") for w in words[1:]]
                parser.parse_args(argv)  # the arguments the workflow passes are ones the command takes
            elif tool == "make":
                assert words[1] in make_targets, f"{path.name}: no make target {words[1]}"
            elif tool.endswith("tox"):
                envs = words[words.index("-e") + 1].split(",")
                assert all(e in tox_envs for e in envs), envs
            else:
                assert tool in {"echo", "["}, f"{path.name}: unexpected command {words}"


def _jobs(name: str) -> dict[str, Any]:
    return dict(load(name)["jobs"])


def test_ci_checks_the_changed_models_by_shard_with_the_base_rules() -> None:
    ci = load("ci.yml")
    assert ci["on"] == {"pull_request": None}
    jobs = ci["jobs"]
    changed = next(s for s in jobs["changes"]["steps"] if s.get("id") == "changed")
    assert "modelctl changed" in changed["run"] and "--format github" in changed["run"]
    assert '--rules-from="$BASE"' in changed["run"], "a pull request cannot change its own selection rules"
    assert jobs["changes"]["outputs"]["matrix"] == "${{ steps.changed.outputs.matrix }}"
    model = jobs["model"]
    assert model["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.matrix) }}"
    runs = " ".join(s.get("run", "") for s in model["steps"])
    assert 'modelctl ci check --models="$MODELS"' in runs
    assert any("upload-artifact" in str(s.get("uses")) for s in model["steps"])
    assert jobs["template"]["if"] == "needs.changes.outputs.template == 'true'"
    assert 'modelctl upgrade --all --check --trusted="$BASE"' in " ".join(
        s.get("run", "") for s in jobs["template"]["steps"]
    ), "only the base branch's template versions are run"
    lint = jobs["lint"]["steps"]
    cache = next(s for s in lint if "actions/cache@" in str(s.get("uses")))
    assert "hashFiles('.pre-commit-config.yaml')" in cache["with"]["key"]
    assert "tox run -e lint" in " ".join(s.get("run", "") for s in lint), "lint runs for every pull request"
    # Issue 19: the platform's suites run only when the pull request touches the platform.
    assert jobs["changes"]["outputs"]["platform"] == "${{ steps.changed.outputs.platform }}"
    platform = jobs["platform"]
    assert platform["needs"] == "changes" and platform["if"] == "needs.changes.outputs.platform == 'true'"
    runs = " ".join(s.get("run", "") for s in platform["steps"])
    assert "tox run-parallel -e shared,tooling,airflow" in runs
    assert not any(env in " ".join(s.get("run", "") for s in lint) for env in ("tooling", "shared", "airflow"))
    # Caches are keyed by what they hold: uv's downloads by the lock files, model environments by requirements.
    for job in ("lint", "platform", "model"):
        keys = [s["with"]["key"] for s in jobs[job]["steps"] if "actions/cache@" in str(s.get("uses"))]
        assert any(k.startswith("uv-") and "hashFiles('tooling/*.lock'" in k for k in keys), (job, keys)
    model_keys = [s["with"] for s in model["steps"] if "actions/cache@" in str(s.get("uses"))]
    env_cache = next(c for c in model_keys if c["path"] == ".modelctl/envs")  # modelctl.envs' own folder
    assert "hashFiles('models/*/requirements*'" in env_cache["key"] and "restore-keys" not in env_cache  # locks too
    # entity models' features are loaded before their candidates serve (a no-op for the others)
    model_runs = " ".join(s.get("run", "") for s in model["steps"])
    assert model_runs.index('modelctl features materialize --models="$MODELS"') < model_runs.index("modelctl ci check")
    assert {j.job for j in PULL_REQUEST_JOBS} <= set(jobs), "modelctl ci plan describes jobs that exist"
    assert "secrets." not in (ROOT / ".github/workflows/ci.yml").read_text(), "pull requests get no secrets"


def test_deploy_reviewers_sit_on_the_environment_holding_production_credentials() -> None:
    jobs = _jobs("deploy.yml")
    assert "approve-production" not in jobs, "no separate approval job that could be bypassed"
    production = jobs["production"]
    assert production["environment"] == "production"
    assert production["if"].startswith("github.ref == 'refs/heads/main' &&"), "production only from main"
    assert "staging" in production["needs"]
    text = (ROOT / ".github/workflows/deploy.yml").read_text()
    assert "production-deploy" not in text
    for job_id, job in jobs.items():
        uses_production_secret = "PRODUCTION_" in yaml.safe_dump(job)  # pragma: allowlist secret
        assert uses_production_secret == (job.get("environment") == "production"), job_id
    assert "secrets.STAGING_BENTO_CLOUD_API_KEY" in yaml.safe_dump(jobs["staging"])
    assert "secrets.PRODUCTION_BENTO_CLOUD_API_KEY" in yaml.safe_dump(jobs["production"])
    assert "STAGING_" not in yaml.safe_dump(jobs["production"]), "staging and production credentials differ"
    assert jobs["undeploy-production"]["environment"] == "production"
    assert "github.ref == 'refs/heads/main'" in jobs["undeploy-production"]["if"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_are_given_to_steps_never_to_jobs_or_workflows(path: Path) -> None:
    workflow = load(path.name)
    assert "secrets." not in yaml.safe_dump(workflow.get("env", {})), "no secret in the workflow-level env"
    for job_id, job in workflow["jobs"].items():
        assert "secrets." not in yaml.safe_dump(job.get("env", {})), f"{job_id}: a secret in the job-level env"
        for step in job.get("steps", []):
            if "make bootstrap" in step.get("run", ""):
                assert "env" not in step, f"{job_id}: bootstrap installs packages: it gets no secret"


def test_deploy_matrices_are_sharded_and_every_deploy_is_serialised_per_shard() -> None:
    jobs = _jobs("deploy.yml")
    matrices = {
        "build": "matrix",
        "staging": "matrix",
        "production": "production_matrix",
        "undeploy-staging": "removed_matrix",
        "undeploy-production": "production_removed_matrix",
    }
    for job_id, output in matrices.items():
        job = jobs[job_id]
        assert job["strategy"]["matrix"] == f"${{{{ fromJSON(needs.changes.outputs.{output}) }}}}", job_id
        if job_id != "build":
            assert "${{ matrix.shard }}" in job["concurrency"]["group"], job_id
            assert job["concurrency"]["cancel-in-progress"] is False, job_id
    build_runs = " ".join(s.get("run", "") for s in jobs["build"]["steps"])
    assert 'modelctl ci build --no-store --models="$MODELS"' in build_runs
    assert jobs["staging"]["needs"] == ["changes", "record"], "staging deploys only what `record` vouched for"
    assert 'modelctl ci record --models="$MODELS" --from dist' in " ".join(
        s.get("run", "") for s in jobs["record"]["steps"]
    )
    staging_steps = jobs["staging"]["steps"]
    assert any("download-artifact" in str(s.get("uses")) for s in staging_steps)
    assert any("modelctl ci deploy --env staging" in s.get("run", "") for s in staging_steps)
    production_runs = " ".join(s.get("run", "") for s in jobs["production"]["steps"])
    assert "modelctl ci promote --from staging --env production" in production_runs, "exactly what staging runs"
    selections = {s.get("id"): s.get("run", "") for s in jobs["changes"]["steps"]}
    assert "--since-deployed staging" in selections["changed"], "select against what is deployed, not this push"
    assert "--since-deployed production" in selections["production"], "production has its own selection"
    assert jobs["notify"]["if"].startswith("always()")


MODEL_CODE = (
    "ci build",
    "ci check",
    "train",
    "retrain --model",
    "retrain --due",
    "loadtest",
    "fuzz",
    "pipeline",
    "serve",
    "deploy",
    "upgrade",
)
# The one secret model code may hold: its own training data source (retrain.yml).
MODEL_OWN = "secrets.DATA_URL"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_job_that_runs_model_code_holds_no_secret_and_no_shared_store(path: Path) -> None:
    """Model code (tests, training, a served candidate) runs as the runner's user: anything that job can read,
    that code can read (issue 20 item 4). So such a job gets no secret, no environment, no store URL."""
    for job_id, job in load(path.name)["jobs"].items():
        runs = " ".join(str(s.get("run", "")) for s in job.get("steps", []))
        if not any(f"modelctl {command} " in runs for command in MODEL_CODE):
            continue
        text = yaml.safe_dump(job, width=1000)
        assert "secrets." not in text.replace(MODEL_OWN, ""), f"{path.name}:{job_id} runs model code, reads a secret"
        assert "environment" not in job or MODEL_OWN in text, f"{path.name}:{job_id}: an environment, for what?"
        assert "github.token" not in text and "write" not in str(job.get("permissions")), f"{path.name}:{job_id}"
        if path.name != "ci.yml":
            assert job.get("env", {}).get("MODELCTL_STORE") == "", f"{path.name}:{job_id} must not name the store"


MAIN_GUARD = "github.ref == 'refs/heads/main'"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_job_below_a_job_that_may_be_skipped_says_how_it_runs(path: Path) -> None:
    """GitHub's implicit success() looks at every ancestor: one skipped job anywhere above skips this one too
    (actions/runner#2205), even when its direct needs succeeded. Such a job must say `!cancelled()` or
    `always()` and check the results it depends on itself."""
    jobs = load(path.name)["jobs"]

    def needs(job_id: str) -> list[str]:
        found = jobs[job_id].get("needs", [])
        return [found] if isinstance(found, str) else list(found)

    def ancestors(job_id: str) -> set[str]:
        direct = set(needs(job_id))
        return direct.union(*(ancestors(n) for n in direct)) if direct else set()

    def may_be_skipped(job_id: str) -> bool:
        condition = str(jobs[job_id].get("if", "")).strip()
        return bool(condition) and condition != MAIN_GUARD

    for job_id in jobs:
        if any(may_be_skipped(a) for a in ancestors(job_id)):
            condition = str(jobs[job_id].get("if", ""))
            assert "!cancelled()" in condition or "always()" in condition, f"{path.name}:{job_id}: {condition!r}"


@pytest.mark.parametrize("name", ["deploy.yml", "retrain.yml"])
def test_only_main_runs_deploys_and_every_secret_sits_in_an_environment(name: str) -> None:
    jobs = _jobs(name)

    def guarded(job_id: str) -> bool:
        job = jobs[job_id]
        if "refs/heads/main" in str(job.get("if", "")):
            return True
        needs = job.get("needs", [])
        return any(guarded(n) for n in ([needs] if isinstance(needs, str) else needs))

    for job_id, job in jobs.items():
        assert guarded(job_id), f"{name}:{job_id} can run for a branch other than main"
        if "secrets." in yaml.safe_dump(job.get("steps", [])):
            assert job.get("environment"), f"{name}:{job_id} reads secrets outside an environment (branch policy)"


def test_retrain_reads_each_models_secret_from_its_own_environment() -> None:
    workflow = load("retrain.yml")
    jobs = workflow["jobs"]
    for job_id in ("champion", "retrain", "record"):
        assert jobs[job_id]["environment"] == "retrain-${{ matrix.model }}", job_id
    assert jobs["record"]["permissions"] == {"contents": "read", "actions": "write"}, "it dispatches deploy.yml"
    assert jobs["retrain"]["permissions"] == {"contents": "read"}, "model code gets no token"
    step = jobs["retrain"]["steps"][-2]
    assert step["env"] == {"MODEL": "${{ matrix.model }}", "MODEL_DATA_URL": "${{ secrets.DATA_URL }}"}
    assert '--model="$MODEL"' in step["run"] and "--data-url-from MODEL_DATA_URL" in step["run"]
    assert "--no-store --champion-from champion --out retrained" in step["run"]
    record = jobs["record"]["steps"][-1]
    assert "modelctl ci record-retrain" in record["run"] and "SLACK_WEBHOOK_URL" in record["env"]
    assert "--window 90" in steps(workflow)[3]["run"]
    assert "candidate" in load("deploy.yml")["on"]["workflow_dispatch"]["inputs"]


def test_retrain_cron_entries_cover_every_model_schedule() -> None:
    from datetime import timedelta

    from modelctl.repo import Repo
    from modelctl.schedules import schedule_covered

    workflow = load("retrain.yml")
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert "--window 90" in " ".join(s.get("run", "") for s in steps(workflow))
    repo = Repo(ROOT)
    for name in repo.model_names():
        schedule = repo.config(name).retrain.schedule
        if schedule is not None:
            missed = schedule_covered(schedule, crons, timedelta(minutes=90))
            assert missed is None, f"{name}: {schedule} fires at {missed} and retrain.yml has no run for it"


def test_schedule_coverage_can_fail() -> None:
    from datetime import timedelta

    from modelctl.schedules import schedule_covered

    assert schedule_covered("0 3 * * 1", ["0 3 * * 1"], timedelta(minutes=90)) is None
    assert schedule_covered("0 3 * * 1", ["0 * * * *"], timedelta(minutes=90)) is None
    assert schedule_covered("0 3 * * 1", ["0 4 * * 2"], timedelta(minutes=90)) is not None
    assert schedule_covered("30 3 * * *", ["0 3 * * *"], timedelta(minutes=20)) is not None
