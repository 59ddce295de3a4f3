"""The GitHub workflows: offline lint, security rules, and the structure the CI issue asks for."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelctl.commands.ci import PULL_REQUEST_JOBS
from modelctl.main import build_parser
from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*\s*$")


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


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_is_a_thin_call_of_a_command_that_exists(path: Path) -> None:
    commands = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no public API
    make_targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    tox_envs = {"lint", "shared", "tooling", "template", "airflow"}
    for step in steps(load(path.name)):
        for words in _commands(step.get("run", "")):
            tool = words[0]
            if tool.endswith("modelctl"):
                assert words[1] in commands, f"{path.name}: `modelctl {words[1]}` does not exist"
            elif tool == "make":
                assert words[1] in make_targets, f"{path.name}: no make target {words[1]}"
            elif tool.endswith("tox"):
                envs = words[words.index("-e") + 1].split(",")
                assert all(e in tox_envs or e == "model-$MODEL" for e in envs), envs
            else:
                assert tool in {"echo", "["}, f"{path.name}: unexpected command {words}"


def test_ci_matrix_is_fed_by_the_changes_job() -> None:
    ci = load("ci.yml")
    assert ci["on"] == {"pull_request": None}
    jobs = ci["jobs"]
    assert any(
        "modelctl changed" in s.get("run", "") and "--format github" in s["run"] for s in jobs["changes"]["steps"]
    )
    assert jobs["changes"]["outputs"]["matrix"] == "${{ steps.changed.outputs.matrix }}"
    model = jobs["model"]
    assert (
        model["needs"] == "changes" and model["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.matrix) }}"
    )
    runs = " ".join(s.get("run", "") for s in model["steps"])
    for command in (
        'tox run -e "model-$MODEL"',
        "modelctl train",
        "modelctl build",
        "modelctl loadtest",
        "modelctl fuzz",
        "modelctl doctor",
    ):
        assert command in runs
    assert any("upload-artifact" in str(s.get("uses")) for s in model["steps"])
    assert jobs["template"]["if"] == "needs.changes.outputs.template == 'true'"
    lint = jobs["lint"]["steps"]
    cache = next(s for s in lint if "actions/cache@" in str(s.get("uses")))
    assert "hashFiles('.pre-commit-config.yaml')" in cache["with"]["key"]
    assert {j.job for j in PULL_REQUEST_JOBS} <= set(jobs), "modelctl ci plan describes jobs that exist"


def test_deploy_has_one_approval_before_production() -> None:
    deploy = load("deploy.yml")
    assert (
        set(deploy["on"]) == {"push", "workflow_dispatch"} and "models" in deploy["on"]["workflow_dispatch"]["inputs"]
    )
    jobs = deploy["jobs"]
    approve = jobs["approve-production"]
    assert approve["environment"] == "production" and "strategy" not in approve
    assert "staging" in approve["needs"]
    production = jobs["production"]
    assert "approve-production" in production["needs"] and production["environment"] != "production"
    assert jobs["staging"]["needs"] == ["changes", "build"]
    for job_id in ("build", "staging", "production"):
        job = jobs[job_id]
        assert job["strategy"]["matrix"] == "${{ fromJSON(needs.changes.outputs.matrix) }}"
        assert (
            "${{ matrix.model }}" in job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is False
        )
    build_runs = " ".join(s.get("run", "") for s in jobs["build"]["steps"])
    for command in ("modelctl loadtest", "modelctl fuzz", "modelctl export"):
        assert command in build_runs
    for job_id in ("staging", "production"):
        job_steps = jobs[job_id]["steps"]
        assert any("download-artifact" in str(s.get("uses")) for s in job_steps)
        assert any("--bento-file" in s.get("run", "") for s in job_steps), "deploy the exact tested file"
    assert "notify" in jobs and jobs["notify"]["if"].startswith("always()")


def test_retrain_cron_entries_cover_every_model_schedule() -> None:
    from datetime import timedelta

    from modelctl.repo import Repo
    from modelctl.retrain import schedule_covered

    workflow = load("retrain.yml")
    crons = [entry["cron"] for entry in workflow["on"]["schedule"]]
    assert "--window 90" in steps(workflow)[-1]["run"]
    repo = Repo(ROOT)
    for name in repo.model_names():
        schedule = repo.config(name).retrain.schedule
        if schedule is not None:
            missed = schedule_covered(schedule, crons, timedelta(minutes=90))
            assert missed is None, f"{name}: {schedule} fires at {missed} and retrain.yml has no run for it"


def test_schedule_coverage_can_fail() -> None:
    from datetime import timedelta

    from modelctl.retrain import schedule_covered

    assert schedule_covered("0 3 * * 1", ["0 3 * * 1"], timedelta(minutes=90)) is None
    assert schedule_covered("0 3 * * 1", ["0 * * * *"], timedelta(minutes=90)) is None
    assert schedule_covered("0 3 * * 1", ["0 4 * * 2"], timedelta(minutes=90)) is not None
    assert schedule_covered("30 3 * * *", ["0 3 * * *"], timedelta(minutes=20)) is not None


def test_retrain_can_dispatch_deploy() -> None:
    job = load("retrain.yml")["jobs"]["retrain"]
    assert job["permissions"] == {"contents": "read", "actions": "write"}
    assert job["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert "candidate" in load("deploy.yml")["on"]["workflow_dispatch"]["inputs"]
