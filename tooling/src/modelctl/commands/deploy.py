"""`modelctl deploy | status | rollback | undeploy`: put a gate-passed bento live and keep a record."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from rich.table import Table

from modelctl import bentos, procs, store
from modelctl.console import err, out
from modelctl.envs import model_python
from modelctl.errors import ModelctlError, UsageError
from modelctl.ledger import Record
from modelctl.notify import Message, notify
from modelctl.repo import Repo, find_repo
from modelctl.state import State
from modelctl.targets import bentocloud, kubernetes, local

ENVS = ("staging", "production")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy_parser = subparsers.add_parser("deploy", help="deploy a built, gate-passed bento to an environment")
    deploy_parser.add_argument("model")
    deploy_parser.add_argument("--env", required=True, choices=ENVS)
    deploy_parser.add_argument("--target", choices=("local", "kubernetes", "bentocloud"))
    source = deploy_parser.add_mutually_exclusive_group()
    source.add_argument("--bento", help="bento tag (default: the newest built)")
    source.add_argument("--bento-file", type=Path, help="an exported .bento (checked against FILE.sha256)")
    deploy_parser.add_argument("--yes", action="store_true", help="confirm a production deploy (CI: the approval)")
    deploy_parser.add_argument("--force", action="store_true", help="deploy even without a passing load test")
    deploy_parser.set_defaults(
        run=lambda a: deploy(find_repo(), a.model, a.env, a.target, a.bento, a.bento_file, a.yes, a.force)
    )

    status_parser = subparsers.add_parser("status", help="what is live per environment, and is it healthy")
    status_parser.add_argument("models", nargs="*", metavar="MODEL")
    status_parser.add_argument("--json", action="store_true")
    status_parser.set_defaults(run=lambda a: status(find_repo(), a.models, a.json))

    rollback_parser = subparsers.add_parser("rollback", help="redeploy the previous good version (or --to)")
    rollback_parser.add_argument("model")
    rollback_parser.add_argument("--env", required=True, choices=ENVS)
    rollback_parser.add_argument("--to", type=int, metavar="VERSION", help="ledger version to restore")
    rollback_parser.set_defaults(run=lambda a: rollback(find_repo(), a.model, a.env, a.to))

    undeploy_parser = subparsers.add_parser("undeploy", help="stop a model in an environment")
    undeploy_parser.add_argument("model")
    undeploy_parser.add_argument("--env", required=True, choices=ENVS)
    undeploy_parser.set_defaults(run=lambda a: undeploy(find_repo(), a.model, a.env))

    export_parser = subparsers.add_parser("export", help="export a gate-passed bento to a file (+ .sha256, .gate.json)")
    export_parser.add_argument("model")
    export_parser.add_argument("--bento", help="bento tag (default: the newest built)")
    export_parser.add_argument("--out", type=Path, required=True, help="output file, e.g. dist/model.bento")
    export_parser.set_defaults(run=lambda a: export(find_repo(), a.model, a.bento, a.out))


def in_ci() -> bool:
    """In a GitHub Actions job, where the `production` environment's approval stands before deploys."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _bentoml(repo: Repo, model: str, *args: str) -> subprocess.CompletedProcess[str]:
    python = model_python(repo, model)
    return subprocess.run(
        [str(python), "-m", "bentoml", *args], env=State.of(repo).env(), capture_output=True, text=True, check=False
    )


def export(repo: Repo, model: str, bento: str | None, out_path: Path) -> int:
    repo.resolve([model])
    bento = bento or bentos.latest_bento(repo, model)
    if bento is None:
        raise UsageError(f"no bento of {model} is built; run `modelctl build {model}`")
    gate = State.of(repo).gate_file(bento)
    if not gate.exists():
        raise ModelctlError(
            f"{bento} has not passed the load-test gate; run `modelctl loadtest {model} --bento {bento}`"
        )
    target = out_path.resolve()  # bentoml export/import need absolute paths
    target.parent.mkdir(parents=True, exist_ok=True)
    result = _bentoml(repo, model, "export", bento, str(target))
    if result.returncode != 0:
        raise ModelctlError(f"bentoml export {bento} failed: {result.stderr.strip()[-400:]}")
    digest = store.sha256(target)
    Path(f"{target}.sha256").write_text(f"{digest}  {target.name}\n")
    Path(f"{target}.gate.json").write_text(gate.read_text())
    out.print(f"{target} sha256={digest}", markup=False)
    return 0


def import_bento_file(repo: Repo, model: str, path: Path) -> tuple[str, str]:
    """Import an exported bento after checking its sha256; (bento tag, sha256)."""
    path = path.resolve()
    if not path.is_file():
        raise UsageError(f"--bento-file {path} does not exist")
    digest = store.sha256(path)
    expected_file = Path(f"{path}.sha256")
    if not expected_file.exists():
        raise ModelctlError(f"{expected_file} is missing: refusing a bento file whose checksum cannot be checked")
    expected = expected_file.read_text().split()[0]
    if digest != expected:
        raise ModelctlError(
            f"{path} has sha256 {digest}, but {expected_file.name} says {expected}: not the tested file"
        )
    gate_summary = json.loads(Path(f"{path}.gate.json").read_text()) if Path(f"{path}.gate.json").exists() else None
    result = _bentoml(repo, model, "import", str(path))
    if result.returncode != 0 and "already exists" not in (result.stdout + result.stderr):
        raise ModelctlError(f"bentoml import {path} failed: {result.stderr.strip()[-400:]}")
    bento = str(gate_summary["bento"]) if gate_summary else _tag_from_import(result.stdout + result.stderr)
    if gate_summary:
        gate = State.of(repo).gate_file(bento)
        gate.parent.mkdir(parents=True, exist_ok=True)
        gate.write_text(json.dumps(gate_summary))
    return bento, digest


def _tag_from_import(output: str) -> str:
    for word in output.replace('"', " ").replace("'", " ").split():
        if ":" in word and not word.startswith(("http", "/")):
            return word.strip("().,")
    raise ModelctlError(f"could not read the bento tag from bentoml import's output: {output[-300:]}")


def run_deploy(
    repo: Repo,
    model: str,
    env: str,
    target: str | None = None,
    bento: str | None = None,
    bento_file: Path | None = None,
    yes: bool = False,
    force: bool = False,
    outcome: str = "deployed",
    version: int = 0,
) -> Record:
    repo.resolve([model])
    config = repo.config(model)
    if env not in config.deploy.environments:
        raise UsageError(f"models/{model}/config.yaml has no deploy.environments.{env}")
    if config.deploy.environments[env].approval and not yes:
        raise UsageError(f"{env} requires approval: pass --yes (in CI the GitHub environment approval gives it)")
    target = target or config.deploy.targets[0]
    if target not in config.deploy.targets:
        raise UsageError(
            f"target {target!r} is not in deploy.targets {config.deploy.targets} of models/{model}/config.yaml"
        )
    sha = None
    if bento_file is not None:
        bento, sha = import_bento_file(repo, model, bento_file)
    bento = bento or bentos.latest_bento(repo, model)
    if bento is None or not store.bento_exists(repo, bento):
        raise UsageError(f"bento {bento or '(none)'} of {model} is not in the store; run `modelctl build {model}`")
    state = State.of(repo)
    gate_path = state.gate_file(bento)
    gate_summary: dict[str, Any] = json.loads(gate_path.read_text()) if gate_path.exists() else {}
    if not gate_summary and not force:
        raise ModelctlError(
            f"{bento} has not passed the load-test gate; run `modelctl loadtest {model} --bento {bento}` (or --force)"
        )
    model_tag = store.model_tag_of(repo, bento)
    base = Record(
        model=model,
        env=env,
        target=target,
        outcome=outcome,
        bento=bento,
        model_tag=model_tag,
        git_commit=str((store.bento_info(repo, bento).get("labels") or {}).get("git_commit", "")) or None,
        metrics=store.model_metrics(repo, model_tag),
        sha256=sha,
        version=version,
        loadtest={
            k: gate_summary.get(k)
            for k in ("p90_ms", "error_rate", "rps", "requests", "report_dir")
            if k in gate_summary
        },
    )
    sample = json.loads((repo.model_dir(model) / config.loadtest.payload).read_text())
    with local.deploy_lock(repo, model, env):
        try:
            url = _deploy_to(repo, model, env, target, bento, config, sample)
        except ModelctlError as exc:
            base.outcome, base.reason = "failed", str(exc).splitlines()[0]
            state.ledger.append(base)
            _announce(config.notify.slack_channel, base, f"{outcome} failed")
            raise
        if url is None:
            base.outcome = "rendered"
        base.url = url
        record = state.ledger.append(base)
    _announce(config.notify.slack_channel, record, record.outcome)
    return record


def _deploy_to(
    repo: Repo, model: str, env: str, target: str, bento: str, config: Any, sample: dict[str, Any]
) -> str | None:
    """Deploy; the live URL, or None when manifests were only rendered (no cluster configured)."""
    state = State.of(repo)
    if target == "local":
        return local.deploy(repo, model, env, bento, config.port(env), sample).url
    if target == "kubernetes":
        path = kubernetes.write(kubernetes.render(config, bento, env), state.deploy_dir(model, env) / "kubernetes.yaml")
        context = config.deploy.kubernetes.context
        if context is None:
            err.print(f"rendered {path}; set deploy.kubernetes.context to apply it", markup=False)
            return None
        image = kubernetes.image(config, bento)
        kubernetes.containerize(model_python(repo, model), bento, image, state.env())
        kubernetes.push(image)
        kubernetes.apply(path, context)
        return f"kubernetes://{context}/{config.deploy.kubernetes.namespace}/{path.stem}"
    document = bentocloud.render(config, bento, env, store.service_name(repo, bento))
    path = bentocloud.write(document, state.deploy_dir(model, env) / "bentocloud.yaml")
    bentocloud.deploy(model_python(repo, model), path, state.env())
    return f"bentocloud://{document['name']}"


def _announce(channel: str | None, record: Record, verdict: str) -> None:
    facts = {"bento": record.bento or "-", "target": record.target}
    if record.url:
        facts["url"] = record.url
    if record.loadtest:
        facts["P90"] = f"{record.loadtest.get('p90_ms', '-')} ms"
        facts["error rate"] = f"{float(record.loadtest.get('error_rate') or 0):.2%}"
    if record.reason:
        facts["reason"] = record.reason
    version = f"v{record.version}" if record.version else None
    notify(
        Message(
            title=f"{record.model} {verdict} ({record.env})",
            model=record.model,
            env=record.env,
            version=version,
            verdict=verdict,
            facts=facts,
            channel=channel,
        )
    )


def deploy(
    repo: Repo,
    model: str,
    env: str,
    target: str | None,
    bento: str | None,
    bento_file: Path | None,
    yes: bool,
    force: bool,
) -> int:
    record = run_deploy(
        repo, model, env, target, bento, bento_file, yes=yes or (in_ci() and env == "production"), force=force
    )
    out.print(f"{record.outcome} {record.bento} to {env} as v{record.version}: {record.url or '-'}", markup=False)
    return 0


def status_rows(repo: Repo, models: list[str]) -> list[dict[str, Any]]:
    state = State.of(repo)
    rows = []
    for model in repo.resolve(models):
        for env in ENVS:
            record = state.ledger.live(model, env)
            health = "not deployed"
            if record is not None and record.target == "local":
                live = local.read_live(repo, model, env)
                up = live is not None and procs.alive(live.pid) and procs.healthy(live.url)
                health = "up" if up else "down"
            elif record is not None:
                health = "unknown (remote target)"
            rows.append(
                {
                    "model": model,
                    "env": env,
                    "version": record.version if record else None,
                    "bento": record.bento if record else None,
                    "url": record.url if record else None,
                    "health": health,
                    "deployed_at": record.at if record else None,
                    "by": record.triggered_by if record else None,
                }
            )
    return rows


def status(repo: Repo, models: list[str], as_json: bool = False) -> int:
    rows = status_rows(repo, models)
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="deployments")
    for column in ("model", "env", "version", "bento", "url", "health", "deployed at", "by"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["model"],
            row["env"],
            f"v{row['version']}" if row["version"] else "-",
            row["bento"] or "-",
            row["url"] or "-",
            row["health"],
            row["deployed_at"] or "-",
            row["by"] or "-",
        )
    out.print(table)
    return 0


def rollback(repo: Repo, model: str, env: str, to: int | None) -> int:
    ledger = State.of(repo).ledger
    current = ledger.live(model, env)
    target_record = ledger.find_version(model, env, to) if to else ledger.previous_good(model, env, current)
    if target_record is None:
        what = f"version v{to}" if to else "an earlier good version"
        raise UsageError(f"the ledger has no {what} of {model} in {env}; see `modelctl status {model}`")
    record = run_deploy(
        repo,
        model,
        env,
        target_record.target,
        target_record.bento,
        yes=True,
        force=True,
        outcome="rolled_back",
        version=target_record.version,
    )
    out.print(f"rolled back {model} in {env} to v{record.version} ({record.bento}): {record.url}", markup=False)
    return 0


def undeploy(repo: Repo, model: str, env: str) -> int:
    repo.resolve([model])
    state = State.of(repo)
    with local.deploy_lock(repo, model, env):
        stopped = local.undeploy(repo, model, env)
        live = state.ledger.live(model, env)
        state.ledger.append(
            Record(
                model=model,
                env=env,
                target=live.target if live else "local",
                outcome="undeployed",
                bento=stopped.bento if stopped else None,
            )
        )
    out.print(f"undeployed {model} from {env}" + (f" (stopped {stopped.bento})" if stopped else ""), markup=False)
    return 0
