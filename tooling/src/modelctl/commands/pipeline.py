"""`modelctl pipeline MODEL`: validate -> test -> train -> build -> load-test gate -> fuzz -> deploy -> notify."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from modelctl.commands.build import run_build
from modelctl.commands.deploy import ENVS, run_deploy
from modelctl.commands.fuzz import FuzzFailedError, run_fuzz
from modelctl.commands.loadtest import run_loadtest
from modelctl.commands.train import run_training
from modelctl.console import err, out
from modelctl.envs import run_tox
from modelctl.errors import ModelctlError
from modelctl.gate import GateBreachedError
from modelctl.notify import Message, notify
from modelctl.repo import Repo, find_repo


@dataclass
class Stage:
    name: str
    status: str = "pending"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class PipelineRun:
    model: str
    env: str
    stages: list[Stage] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


class StageFailedError(ModelctlError):
    def __init__(self, stage: str, cause: ModelctlError) -> None:
        super().__init__(f"stage {stage!r} failed: {cause}")
        self.exit_code = cause.exit_code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="validate, test, train, build, load-test gate, fuzz, deploy and notify one model"
    )
    parser.add_argument("model")
    parser.add_argument("--env", default="staging", choices=ENVS)
    parser.add_argument("--skip-tests", action="store_true", help="skip the model's own test suite")
    parser.add_argument("--yes", action="store_true", help="confirm a production deploy")
    parser.set_defaults(run=lambda a: pipeline(find_repo(), a.model, a.env, a.skip_tests, a.yes))


def _test(repo: Repo, model: str) -> str:
    result = run_tox(repo, "run", "-e", f"model-{model}", "-q")
    summary = next(
        (line for line in reversed(result.stdout.splitlines()) if " passed" in line or " failed" in line), ""
    )
    if result.returncode != 0:
        raise ModelctlError(f"the tests of {model} failed: {summary or result.stdout[-500:]}")
    return summary.strip("= ")


def run_pipeline(
    repo: Repo, model: str, env: str = "staging", skip_tests: bool = False, yes: bool = False
) -> PipelineRun:
    repo.resolve([model])
    run = PipelineRun(model, env)
    facts = run.facts

    def validate() -> str:
        config = repo.config(model)
        return f"config ok ({config.framework})"

    def test() -> str:
        return "skipped" if skip_tests else _test(repo, model)

    def train() -> str:
        trained = run_training(repo, model)
        facts["model_tag"], facts["metrics"] = trained.model_tag, trained.metrics
        return f"{trained.model_tag} " + " ".join(f"{k}={v}" for k, v in trained.metrics.items())

    def build() -> str:
        built = run_build(repo, model)
        facts["bento"] = built.bento
        return built.bento

    def gate() -> str:
        result = run_loadtest(repo, model, bento=facts["bento"])
        verdict = result.verdict
        facts["gate"], facts["report_dir"] = verdict.as_dict(), str(result.report_dir)
        line = (
            f"P90 {verdict.p90_ms:.0f}/{verdict.max_p90_ms:.0f} ms, errors {verdict.error_rate:.2%}"
            f"/{verdict.max_error_rate:.2%}, {verdict.rps:.0f} req/s"
        )
        if not verdict.passed:
            raise GateBreachedError("; ".join(verdict.breaches) + f" ({line})")
        return line

    def fuzz() -> str:
        result, _ = run_fuzz(repo, model, bento=facts["bento"])
        facts["fuzz"] = {"cases": result.cases, "server_errors": result.server_errors, "failures": len(result.failures)}
        line = f"{result.cases} cases, {result.server_errors} 5xx, {len(result.failures)} failures"
        if not result.passed:
            raise FuzzFailedError("; ".join(result.problems()) + f" ({line})")
        return line

    def deploy() -> str:
        record = run_deploy(repo, model, env, bento=facts["bento"], yes=yes)
        facts["url"], facts["version"] = record.url, record.version
        return f"v{record.version} {record.url or '(rendered)'}"

    steps: list[tuple[str, Callable[[], str]]] = [
        ("validate", validate),
        ("test", test),
        ("train", train),
        ("build", build),
        ("load-test gate", gate),
        ("fuzz", fuzz),
        (f"deploy {env}", deploy),
    ]
    run.stages = [Stage(name) for name, _ in steps]
    for index, (name, step) in enumerate(steps, start=1):
        stage = run.stages[index - 1]
        err.print(f"[{index}/{len(steps)}] {name} ...", markup=False)
        started = time.monotonic()
        try:
            stage.detail = step()
            stage.status = "ok"
        except ModelctlError as exc:
            stage.status, stage.detail = "FAILED", str(exc).splitlines()[0]
            stage.seconds = time.monotonic() - started
            for later in run.stages[index:]:
                later.status = "not run"
            _finish(run, failed=stage)
            raise StageFailedError(name, exc) from exc
        stage.seconds = time.monotonic() - started
        err.print(f"      {stage.status} in {stage.seconds:.1f}s: {stage.detail}", markup=False)
    _finish(run, failed=None)
    return run


def summary_table(run: PipelineRun) -> Table:
    table = Table(title=f"pipeline {run.model} -> {run.env}")
    for column in ("stage", "status", "seconds", "detail"):
        table.add_column(column, overflow="fold")
    for stage in run.stages:
        table.add_row(stage.name, stage.status, f"{stage.seconds:.1f}", stage.detail)
    table.add_row("total", "", f"{sum(s.seconds for s in run.stages):.1f}", "")
    return table


def _finish(run: PipelineRun, failed: Stage | None) -> None:
    out.print(summary_table(run))
    gate = run.facts.get("gate") or {}
    facts = {"stages": " -> ".join(f"{s.name}:{s.status}" for s in run.stages)}
    if gate:
        facts["P90"] = f"{gate['p90_ms']:.0f} ms (limit {gate['max_p90_ms']:.0f})"
        facts["error rate"] = f"{gate['error_rate']:.2%} (limit {gate['max_error_rate']:.2%})"
    if fuzzed := run.facts.get("fuzz"):
        facts["fuzz"] = f"{fuzzed['cases']} cases, {fuzzed['server_errors']} 5xx"
    if failed:
        facts["failed at"] = f"{failed.name}: {failed.detail}"
    verdict = "failed" if failed else "deployed"
    markdown_table = "\n| stage | status | seconds | detail |\n| --- | --- | --- | --- |\n" + "".join(
        f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.detail} |\n" for s in run.stages
    )
    notify(
        Message(
            title=f"pipeline {run.model} {verdict} ({run.env})",
            model=run.model,
            env=run.env,
            version=f"v{run.facts['version']}" if run.facts.get("version") else None,
            verdict=verdict,
            facts=facts,
        ),
        extra_markdown=markdown_table,
    )


def pipeline(repo: Repo, model: str, env: str, skip_tests: bool, yes: bool) -> int:
    run = run_pipeline(repo, model, env, skip_tests, yes)
    url = run.facts.get("url")
    gate = run.facts["gate"]
    if url and url.startswith("http"):
        sample = repo.model_dir(model) / repo.config(model).loadtest.payload
        out.print(f"\nlive: {url}  ({model} v{run.facts['version']} in {env})", markup=False)
        out.print(f"try:  curl -s -X POST {url}/predict -H 'content-type: application/json' -d @{sample}", markup=False)
    out.print(
        f"gate: P90 {gate['p90_ms']:.0f} ms (limit {gate['max_p90_ms']:.0f}), error rate "
        f"{gate['error_rate']:.2%} (limit {gate['max_error_rate']:.2%}), {gate['rps']:.0f} req/s",
        markup=False,
    )
    out.print(f"report: {run.facts['report_dir']}/report.html", markup=False)
    out.print(f"stop:  modelctl undeploy {model} --env {env}", markup=False)
    print(json.dumps({"url": url, "version": run.facts.get("version")}), file=sys.stderr)
    return 0
