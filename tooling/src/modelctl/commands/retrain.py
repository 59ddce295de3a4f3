"""`modelctl retrain MODEL [--dry-run]` and `modelctl retrain --due`: champion/challenger retraining.

extract (train.load_data) -> train a candidate -> evaluate candidate and champion on the same fresh
holdout -> promote only if better (locally: build, load-test gate, fuzz, deploy; in CI: dispatch
deploy.yml) -> notify. A failing step leaves the live model in place and exits non-zero.
"""

from __future__ import annotations

import argparse
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

from modelctl import retrain_steps as steps
from modelctl.commands.build import run_build
from modelctl.commands.deploy import in_ci, run_deploy
from modelctl.commands.fuzz import run_fuzz
from modelctl.commands.loadtest import run_loadtest
from modelctl.console import err, out
from modelctl.errors import ModelctlError, UsageError
from modelctl.repo import Repo, find_repo
from modelctl.retrain import dispatch_deploy, is_due
from modelctl.state import State


class RetrainError(ModelctlError):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="retrain a model; promote the candidate only if it beats the live champion",
        description="Exit 0 when done (promoted or kept), 1 when a step failed (the live model is untouched).",
    )
    parser.add_argument("model", nargs="?")
    parser.add_argument("--dry-run", action="store_true", help="extract, train and evaluate; print the decision")
    parser.add_argument(
        "--env",
        default="staging",
        choices=("staging", "production"),
        help="where the champion is live and where a better candidate goes locally",
    )
    parser.add_argument("--due", action="store_true", help="retrain every model whose retrain.schedule is due")
    parser.add_argument("--at", help="ISO time to evaluate schedules at (default: now, UTC)")
    parser.add_argument("--window", type=int, default=90, help="minutes a schedule counts as due (default 90)")
    parser.set_defaults(run=lambda a: retrain_command(find_repo(), a.model, a.dry_run, a.env, a.due, a.at, a.window))


def run_retrain(repo: Repo, model: str, dry_run: bool = False, env: str = "staging") -> dict[str, Any]:
    repo.resolve([model])
    state = State.of(repo)
    champion = steps.champion_of(repo, model, env)
    record: dict[str, Any] = {"model": model, "env": env, "champion": champion, "dry_run": dry_run}
    folder = steps.run_dir(repo, model, datetime.now(UTC).strftime("manual-%Y%m%dT%H%M%S%f"))
    err.print(f"retrain {model}: extract, train, evaluate (champion: {champion or 'none'})", markup=False)
    try:
        record["rows"] = steps.extract(repo, model, folder)
        candidate = steps.train_candidate(repo, model, folder)
        evaluation = steps.evaluate(repo, model, folder, candidate, champion)
    except steps.RetrainStepError as exc:
        raise _failed(repo, model, env, record, exc.step, exc.reason) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    record.update(
        {k: evaluation[k] for k in ("candidate", "candidate_metrics", "reason")},
        champion_metrics=evaluation.get("champion_metrics"),
        metric=repo.config(model).retrain.metric,
    )
    if dry_run:
        record["decision"] = "would promote" if evaluation["promote"] else "would keep champion"
    elif not evaluation["promote"]:
        record["decision"] = "kept champion"
    elif in_ci():
        try:
            record["dispatched"] = dispatch_deploy(model, candidate)
        except ModelctlError as exc:
            raise _failed(repo, model, env, record, "promote", str(exc)) from exc
        record["decision"] = "promoted: deploy.yml dispatched"
    else:
        try:
            bento = run_build(repo, model).bento
            gate = run_loadtest(repo, model, bento=bento)
            if not gate.verdict.passed:
                raise RetrainError("load-test gate: " + "; ".join(gate.verdict.breaches))
            fuzzed, _ = run_fuzz(repo, model, bento=bento, examples=25)
            if not fuzzed.passed:
                raise RetrainError("fuzz: " + "; ".join(fuzzed.problems()))
            deployed = run_deploy(repo, model, env, bento=bento, yes=True)
        except ModelctlError as exc:
            raise _failed(repo, model, env, record, "promote", str(exc).splitlines()[0]) from exc
        record.update(decision=f"promoted: v{deployed.version} live", bento=bento, url=deployed.url)
    state.retrain_log.append(model, record)
    steps.announce(repo, model, env, evaluation, record["decision"])
    return record


def _failed(repo: Repo, model: str, env: str, record: dict[str, Any], step: str, reason: str) -> RetrainError:
    record.update(decision="failed", failed_step=step, reason=reason)
    State.of(repo).retrain_log.append(model, record)
    steps.alert(repo, model, env, step, reason)
    return RetrainError(f"retrain of {model} failed at {step}: {reason}; the live model is unchanged")


def due_models(repo: Repo, at: datetime, window: timedelta) -> list[str]:
    return [
        name
        for name in repo.model_names()
        if (schedule := repo.config(name).retrain.schedule) and is_due(schedule, at, window)
    ]


def retrain_command(
    repo: Repo, model: str | None, dry_run: bool, env: str, due: bool, at: str | None, window: int
) -> int:
    if due == (model is not None):
        raise UsageError("name one MODEL, or use --due to retrain every model whose schedule is due")
    if model is not None:
        record = run_retrain(repo, model, dry_run, env)
        out.print(f"{model}: {record['decision']} ({record['reason']})", markup=False)
        return 0
    try:
        moment = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(f"--at {at!r} is not an ISO time (e.g. 2026-11-30T03:05:00+00:00)") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    names = due_models(repo, moment, timedelta(minutes=window))
    out.print(f"due at {moment.isoformat()}: {', '.join(names) or 'none'}", markup=False)
    failures = []
    for name in names:
        try:
            record = run_retrain(repo, name, dry_run, env)
            out.print(f"{name}: {record['decision']}", markup=False)
        except ModelctlError as exc:
            err.print(str(exc), markup=False)
            failures.append(name)
    if failures:
        raise RetrainError(f"retraining failed for {', '.join(failures)}")
    return 0
