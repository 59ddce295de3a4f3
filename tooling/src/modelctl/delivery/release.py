"""Release: put a gate-passed bento live in an environment on a deploy target, keep the ledger, go back, stop.

Targets: `local` (really deployed here), `kubernetes` and `bentocloud` (rendered, applied when configured).
A failed attempt is recorded and never changes what is live.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelctl import bentostore, cmd, git, procs
from modelctl.console import err
from modelctl.delivery.gate import passed_summary
from modelctl.delivery.train import store_env
from modelctl.errors import ModelctlError, UsageError
from modelctl.ledger import Record
from modelctl.model import Model
from modelctl.redact import redact
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.targets import bentocloud, kubernetes, local
from modelkit import ENVIRONMENTS


class ReleaseError(ModelctlError):
    pass


class DeployFailedError(ModelctlError):
    """A deploy attempt failed (and was recorded as ``record``); what was live stays live."""

    def __init__(self, record: Record, cause: ModelctlError) -> None:
        super().__init__(str(cause))
        self.record, self.cause, self.exit_code = record, cause, cause.exit_code


def in_ci() -> bool:
    """In a GitHub Actions job, where the environment's required reviewers stand before production deploys."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


def bentoml(model: Model, *args: str) -> cmd.Completed:
    return model.run(["-m", "bentoml", *args], what=f"bentoml {args[0]}", env=store_env(model))


def check_environment(model: Model, env: str, approved: bool) -> None:
    if env not in model.config.deploy.environments:
        raise UsageError(f"{model.relative('config.yaml')} has no deploy.environments.{env}")
    if model.config.deploy.environments[env].approval and not approved:
        raise UsageError(f"{env} requires approval: pass --yes (in CI the GitHub environment's reviewers give it)")


def choose_target(model: Model, target: str | None) -> str:
    chosen = target or model.config.deploy.targets[0]
    if chosen not in model.config.deploy.targets:
        raise UsageError(
            f"target {chosen!r} is not in deploy.targets {model.config.deploy.targets} "
            f"of {model.relative('config.yaml')}"
        )
    return chosen


def new_record(model: Model, env: str, target: str, bento: str, outcome: str, version: int = 0) -> Record:
    """A ledger record for ``bento``: its model tag, commit, metrics and load-test numbers."""
    repo = model.repo
    model_tag = bentostore.model_tag_of(repo, bento)
    gate = passed_summary(model, bento) or {}
    return Record(
        model=model.name,
        env=env,
        target=target,
        outcome=outcome,
        bento=bento,
        model_tag=model_tag,
        git_commit=str((bentostore.bento_info(repo, bento).get("labels") or {}).get("git_commit", "")) or None,
        metrics=bentostore.model_metrics(repo, model_tag),
        version=version,
        loadtest={k: gate[k] for k in ("p90_ms", "error_rate", "rps", "requests", "report_dir") if k in gate},
    )


def deploy(
    model: Model,
    env: str,
    bento: str,
    *,
    target: str | None = None,
    approved: bool = False,
    force: bool = False,
    sha256: str | None = None,
    outcome: str = "deployed",
    version: int = 0,
) -> Record:
    """Deploy ``bento`` to ``env``; the ledger record (appended on success and on failure)."""
    check_environment(model, env, approved)
    chosen = choose_target(model, target)
    if not bentostore.bento_exists(model.repo, bento):
        raise UsageError(f"bento {bento} of {model.name} is not in the store; run `modelctl build {model.name}`")
    if passed_summary(model, bento) is None and not force:
        raise ReleaseError(
            f"{bento} has not passed the load-test gate; run `modelctl loadtest {model.name} --bento {bento}` "
            "(or --force)"
        )
    record = new_record(model, env, chosen, bento, outcome, version)
    record.sha256 = sha256
    ledger = State.of(model.repo).ledger
    with local.deploy_lock(model.repo, model.name, env):
        try:
            if outcome != "rolled_back":
                refuse_older(model, env, record, ledger.live(model.name, env))
            url = deploy_to(model, env, chosen, bento)
        except ModelctlError as exc:
            record.outcome, record.reason = "failed", redact(str(exc).splitlines()[0])
            raise DeployFailedError(ledger.append(record), exc) from exc
        record.outcome = outcome if url is not None else "rendered"
        record.url = url
        return ledger.append(record)


def refuse_older(model: Model, env: str, candidate: Record, live: Record | None) -> None:
    """Refuse a bento built from a commit older than the live one's: a re-run or an out-of-order approval must
    not put an older version over a newer one (`modelctl rollback` is the explicit way back)."""
    if live is None or not live.git_commit or not candidate.git_commit or live.git_commit == candidate.git_commit:
        return
    older = git.is_ancestor(model.repo.root, candidate.git_commit, live.git_commit)
    if older:
        raise ReleaseError(
            f"{candidate.bento} was built from {candidate.git_commit}, older than {live.git_commit} of the live "
            f"{live.bento} in {env}: refusing to go back in time (use `modelctl rollback {model.name} --env {env}` "
            "to do it on purpose)"
        )


def deploy_to(model: Model, env: str, target: str, bento: str) -> str | None:
    """Deploy on ``target``; the live URL, or None when manifests were only rendered (no cluster configured)."""
    repo, config = model.repo, model.config
    state = State.of(repo)
    if target == "local":
        return local.deploy(repo, model.name, env, bento, config.port(env), model.sample()).url
    if target == "kubernetes":
        manifests = kubernetes.render(config, bento, env)
        path = kubernetes.write(manifests, state.deploy_dir(model.name, env) / "kubernetes.yaml")
        context = config.deploy.kubernetes.context
        if context is None:
            err.print(f"rendered {path}; set deploy.kubernetes.context to apply it", markup=False)
            return None
        image = kubernetes.image(config, bento)
        kubernetes.containerize(model.python(), bento, image, state.env())
        kubernetes.push(image)
        kubernetes.apply(path, context)
        return f"kubernetes://{context}/{config.deploy.kubernetes.namespace}/{path.stem}"
    document = bentocloud.render(config, bento, env, bentostore.service_name(repo, bento))
    path = bentocloud.write(document, state.deploy_dir(model.name, env) / "bentocloud.yaml")
    bentocloud.deploy(model.python(), path, state.env())
    return f"bentocloud://{document['name']}"


def rollback(model: Model, env: str, to: int | None = None) -> Record:
    ledger = State.of(model.repo).ledger
    current = ledger.live(model.name, env)
    target = ledger.find_version(model.name, env, to) if to else ledger.previous_good(model.name, env, current)
    if target is None or target.bento is None:
        what = f"version v{to}" if to else "an earlier good version"
        raise UsageError(f"the ledger has no {what} of {model.name} in {env}; see `modelctl status {model.name}`")
    return deploy(
        model,
        env,
        target.bento,
        target=target.target,
        approved=True,
        force=True,
        outcome="rolled_back",
        version=target.version,
    )


def undeploy(model: Model, env: str) -> Record:
    state = State.of(model.repo)
    with local.deploy_lock(model.repo, model.name, env):
        stopped = local.undeploy(model.repo, model.name, env)
        live = state.ledger.live(model.name, env)
        return state.ledger.append(
            Record(
                model=model.name,
                env=env,
                target=live.target if live else "local",
                outcome="undeployed",
                bento=stopped.bento if stopped else None,
            )
        )


def export(model: Model, bento: str, out_path: Path) -> tuple[Path, str]:
    """``bentoml export`` of a gate-passed ``bento`` to ``out_path``; (file, sha256)."""
    gate = passed_summary(model, bento)
    if gate is None:
        raise ReleaseError(
            f"{bento} has not passed the load-test gate; run `modelctl loadtest {model.name} --bento {bento}`"
        )
    target = out_path.resolve()  # bentoml export/import need absolute paths
    target.parent.mkdir(parents=True, exist_ok=True)
    bentoml(model, "export", bento, str(target))
    digest = bentostore.sha256(target)
    Path(f"{target}.sha256").write_text(f"{digest}  {target.name}\n", encoding="utf-8")
    Path(f"{target}.gate.json").write_text(json.dumps(gate, indent=2) + "\n", encoding="utf-8")
    return target, digest


def import_file(model: Model, path: Path) -> tuple[str, str]:
    """Import an exported bento after checking its sha256; (bento tag, sha256)."""
    path = path.resolve()
    if not path.is_file():
        raise UsageError(f"--bento-file {path} does not exist")
    digest = bentostore.sha256(path)
    expected_file = Path(f"{path}.sha256")
    if not expected_file.exists():
        raise ReleaseError(f"{expected_file} is missing: refusing a bento file whose checksum cannot be checked")
    expected = expected_file.read_text(encoding="utf-8").split()[0]
    if digest != expected:
        raise ReleaseError(f"{path} has sha256 {digest}, but {expected_file.name} says {expected}: not the tested file")
    gate_file = Path(f"{path}.gate.json")
    gate_summary: dict[str, Any] | None = json.loads(gate_file.read_text()) if gate_file.exists() else None
    result = bentoml_import(model, path)
    bento = str(gate_summary["bento"]) if gate_summary else _tag_from_import(result)
    if gate_summary:
        gate = State.of(model.repo).gate_file(bento)
        gate.parent.mkdir(parents=True, exist_ok=True)
        gate.write_text(json.dumps(gate_summary), encoding="utf-8")
    return bento, digest


def bentoml_import(model: Model, path: Path) -> str:
    result = model.run(["-m", "bentoml", "import", str(path)], what="bentoml import", env=store_env(model), check=False)
    if result.returncode != 0 and "already exists" not in result.output:
        raise cmd.CommandError("bentoml import", result.argv, result.returncode, result.output)
    return result.output


def _tag_from_import(output: str) -> str:
    for word in output.replace('"', " ").replace("'", " ").split():
        if ":" in word and not word.startswith(("http", "/")):
            return word.strip("().,")
    raise ReleaseError(f"could not read the bento tag from bentoml import's output: {output[-300:]}")


def status_rows(repo: Repo, names: list[str]) -> list[dict[str, Any]]:
    state = State.of(repo)
    rows = []
    for name in repo.resolve(names):
        for env in ENVIRONMENTS:
            record = state.ledger.live(name, env)
            health = "not deployed"
            if record is not None and record.target == "local":
                live = local.read_live(repo, name, env)
                up = live is not None and procs.alive(live.pid) and procs.healthy(live.url)
                health = "up" if up else "down"
            elif record is not None:
                health = "unknown (remote target)"
            rows.append(
                {
                    "model": name,
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
