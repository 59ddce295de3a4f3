"""`modelctl ci ...`: what the GitHub workflows run. `plan` shows the jobs a range would get; `check`, `build`,
`deploy` and `undeploy` are what one job runs for the models of its shard, one after another."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from modelctl.changeset import compute
from modelctl.ciplan import jobs_for
from modelctl.console import out
from modelctl.delivery import batch, retrain_ci
from modelctl.delivery import ci as ci_steps
from modelctl.errors import UsageError
from modelctl.model import Model
from modelctl.names import parse_list
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ci", help="what the CI workflows run (plan, and the per-shard jobs)")
    sub = parser.add_subparsers(dest="ci_command", metavar="SUBCOMMAND", required=True)

    plan_parser = sub.add_parser("plan", help="show which CI jobs and shards a range would run, and why")
    plan_parser.add_argument("--base", default="", help="base ref, as for `modelctl changed`")
    plan_parser.add_argument("--head", default="HEAD")
    plan_parser.add_argument(
        "--rules-from", metavar="REF", help="read each model's ci.ignore/ci.extra_paths at REF (a PR passes its base)"
    )
    plan_parser.add_argument("--json", action="store_true")
    plan_parser.set_defaults(run=lambda a: plan(find_repo(), a.base, a.head, as_json=a.json, rules=a.rules_from))

    def shard_parser(name: str, help_text: str) -> argparse.ArgumentParser:
        shard = sub.add_parser(name, help=help_text, description=f"{help_text}. Exit 1 when any model failed.")
        shard.add_argument("--models", required=True, help="the shard's models: a,b or a JSON list")
        return shard

    check_parser = shard_parser("check", "doctor, tests, train, build, fuzz and load-test gate each model")
    check_parser.set_defaults(run=lambda a: check(find_repo(), parse_list(a.models) or []))
    build_parser = shard_parser("build", "check each model, then export its verified bento to --out")
    build_parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for <model>.bento")
    build_parser.add_argument(
        "--bento", default="", help="a bento kept in the state store (a retraining winner): verify it, do not train"
    )
    build_parser.add_argument(
        "--no-store",
        action="store_true",
        help="never reach the shared store (a CI step without credentials): write <model>.json beside each export "
        "for `ci record`",
    )
    build_parser.add_argument(
        "--fetched", type=Path, help="with --no-store: the folder `ci fetch` filled (verify that stored bento)"
    )
    build_parser.set_defaults(
        run=lambda a: build(find_repo(), parse_list(a.models) or [], a.out, a.bento or None, a.no_store, a.fetched)
    )
    fetch_parser = shard_parser("fetch", "download a stored bento (a retraining winner) for `ci build --fetched`")
    fetch_parser.add_argument("--bento", required=True, help="the stored bento's tag")
    fetch_parser.add_argument("--out", type=Path, default=Path("fetched"), help="folder for <model>.bento")
    fetch_parser.set_defaults(run=lambda a: fetch(find_repo(), parse_list(a.models) or [], a.bento, a.out))
    record_parser = shard_parser("record", "check what `ci build --no-store` handed over and record it in the store")
    record_parser.add_argument("--from", dest="source", type=Path, default=Path("dist"), help="folder of <model>.bento")
    record_parser.set_defaults(run=lambda a: record(find_repo(), parse_list(a.models) or [], a.source))
    champion_parser = shard_parser("champion", "download each model's champion for `retrain --no-store`")
    champion_parser.add_argument("--env", required=True, choices=ENVIRONMENTS, help="where the champion is live")
    champion_parser.add_argument("--out", type=Path, default=Path("champion"), help="folder for the champion")
    champion_parser.set_defaults(run=lambda a: champion(find_repo(), parse_list(a.models) or [], a.env, a.out))
    retrained_parser = shard_parser(
        "record-retrain", "check what `retrain --no-store` handed over; store a winner, dispatch, log, notify"
    )
    retrained_parser.add_argument("--env", required=True, choices=ENVIRONMENTS, help="the champion's environment")
    retrained_parser.add_argument("--from", dest="source", type=Path, default=Path("retrained"))
    retrained_parser.set_defaults(
        run=lambda a: record_retrain(find_repo(), parse_list(a.models) or [], a.env, a.source)
    )
    deploy_parser = shard_parser("deploy", "deploy each model's exported bento from --from to an environment")
    deploy_parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    deploy_parser.add_argument("--from", dest="source", type=Path, default=Path("dist"), help="folder of <model>.bento")
    deploy_parser.set_defaults(run=lambda a: deploy(find_repo(), parse_list(a.models) or [], a.env, a.source))
    promote_parser = shard_parser("promote", "deploy to --env exactly the bento each model runs in --from")
    promote_parser.add_argument("--from", dest="source", required=True, choices=ENVIRONMENTS)
    promote_parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    promote_parser.set_defaults(run=lambda a: promote(find_repo(), parse_list(a.models) or [], a.source, a.env))
    undeploy_parser = shard_parser("undeploy", "stop each model in the given environments")
    undeploy_parser.add_argument("--env", required=True, help="environments, e.g. staging,production")
    undeploy_parser.set_defaults(run=lambda a: undeploy(find_repo(), parse_list(a.models) or [], a.env))


def plan(repo: Repo, base: str, head: str = "HEAD", as_json: bool = False, rules: str | None = None) -> int:
    selection = compute(repo, base, head, rules_rev=rules)
    rows = jobs_for(selection, repo.settings.max_jobs)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    count = len({r["shard"] for r in rows if r["job"] == "model"})
    table = Table(
        title=f"CI plan for {base or '(no base)'}..{head}: {len(selection.models)} model(s) in {count} job(s) "
        f"per matrix (limit {repo.settings.max_jobs})"
    )
    columns = ("workflow", "job", "shard", "models", "command", "why")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in columns))
    out.print(table)
    if not selection.models:
        out.print("No model is affected: no model job will run.")
    return 0


def _shard(repo: Repo, names: list[str], step: Callable[[Model], str], title: str) -> int:
    if not names:
        raise UsageError("--models names no model")
    results = batch.run_each(repo.models(names), step, title)
    out.print(batch.table(results, title))
    append_step_summary(batch.markdown(results, title))
    return batch.exit_code(results)


def check(repo: Repo, names: list[str]) -> int:
    return _shard(repo, names, ci_steps.check, "check")


def build(
    repo: Repo,
    names: list[str],
    out_dir: Path,
    stored: str | None = None,
    no_store: bool = False,
    fetched: Path | None = None,
) -> int:
    if stored and len(names) != 1:
        raise UsageError("--bento names one stored bento: give exactly one model with it")
    if fetched is not None and not no_store:
        raise UsageError("--fetched goes with --no-store (without it, build fetches the stored bento itself)")
    if stored and no_store and fetched is None:
        raise UsageError("--bento with --no-store needs --fetched: the folder `modelctl ci fetch` downloaded it to")
    if no_store:
        return _shard(repo, names, lambda model: ci_steps.build_handoff(model, out_dir, fetched), "build")
    return _shard(repo, names, lambda model: ci_steps.build_verified(model, out_dir, stored), "build")


def fetch(repo: Repo, names: list[str], bento: str, out_dir: Path) -> int:
    if len(names) != 1:
        raise UsageError("--bento names one stored bento: give exactly one model with it")
    return _shard(repo, names, lambda model: ci_steps.fetch_to(model, bento, out_dir), "fetch")


def record(repo: Repo, names: list[str], source: Path) -> int:
    return _shard(repo, names, lambda model: ci_steps.record_handoff(model, source), "record")


def champion(repo: Repo, names: list[str], env: str, out_dir: Path) -> int:
    return _shard(repo, names, lambda model: retrain_ci.fetch_champion(model, env, out_dir), "champion")


def record_retrain(repo: Repo, names: list[str], env: str, source: Path) -> int:
    def step(model: Model) -> str:
        return str(retrain_ci.record_retrain(model, env, source)["decision"])

    return _shard(repo, names, step, "record retrain")


def deploy(repo: Repo, names: list[str], env: str, source: Path) -> int:
    return _shard(repo, names, lambda model: ci_steps.deploy_file(model, env, source), f"deploy to {env}")


def promote(repo: Repo, names: list[str], source: str, env: str) -> int:
    if source == env:
        raise UsageError(f"--from and --env are both {env}")
    return _shard(repo, names, lambda model: ci_steps.promote_live(model, source, env), f"promote {source} -> {env}")


def undeploy(repo: Repo, names: list[str], envs: str) -> int:
    chosen = [e for e in envs.replace(",", " ").split() if e]
    unknown = [e for e in chosen if e not in ENVIRONMENTS]
    if unknown or not chosen:
        raise UsageError(f"--env {envs!r}: expected environments from {', '.join(ENVIRONMENTS)}")

    # Removed models have no folder any more: the ledger says where each one ran.
    results = batch.run_each_name(
        names, lambda name: "; ".join(f"{e}: {ci_steps.undeploy(repo, name, e)}" for e in chosen), "undeploy"
    )
    out.print(batch.table(results, "undeploy"))
    append_step_summary(batch.markdown(results, "undeploy"))
    return batch.exit_code(results)
