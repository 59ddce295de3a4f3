"""What one CI job does for each model of its shard (`modelctl ci check|build|deploy|undeploy`).

Pull requests: doctor, the model's tests, training, build, fuzzing and the load-test gate on one started candidate.
Merges: the same (or, for a retraining winner, the stored bento instead of training), then the verified bento is
exported to ``dist/<model>.bento``; its sha256 goes into the state store under this workflow run, and the deploy
jobs import a file only when its digest matches that record (whoever can rewrite the artifact cannot rewrite the
record: the store needs credentials only these steps get).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelctl.delivery import build as building
from modelctl.delivery import release
from modelctl.delivery import train as training
from modelctl.delivery.promote import verify
from modelctl.delivery.stages import StageLog
from modelctl.delivery.testing import run_tests
from modelctl.doctor import ModelFolder, check_range, errors_of, run_checks
from modelctl.errors import ModelctlError, UsageError
from modelctl.model import Model
from modelctl.repo import Repo
from modelctl.state import State


class DoctorError(ModelctlError):
    pass


def require_shared_store(repo: Repo) -> State:
    """In GitHub Actions, state must outlive the runner: refuse a runner-local store with what to set."""
    state = State.of(repo)
    if os.environ.get("GITHUB_ACTIONS") == "true" and not state.store.shared:
        raise UsageError(
            "CI deploys need a shared state store (the ledger, gate results and tested bentos must outlive this "
            "runner): set the repository variable MODELCTL_STORE, e.g. s3://bucket/modelctl, and its credentials"
        )
    return state


def run_key(model: str) -> str:
    """Where this workflow run records the bento it built for ``model`` (its digest and tag)."""
    run = os.environ.get("GITHUB_RUN_ID") or "local"
    return f"runs/{run}/{model}.json"


def _verified_bento(model: Model, log: StageLog, stored: str | None = None) -> str:
    with log.stage("doctor") as stage:
        problems = errors_of(run_checks(ModelFolder(model.name, model.folder, model.repo.root)))
        if problems:
            raise DoctorError("doctor: " + "; ".join(problems))
        stage.detail = f"{check_range()} ok"
    with log.stage("test") as stage:
        stage.detail = run_tests(model)
    if stored:
        with log.stage("fetch") as stage:
            bento = stage.detail = fetch_stored(model, stored)
    else:
        with log.stage("train") as stage:
            stage.detail = training.train(model).model_tag
        with log.stage("build") as stage:
            bento = stage.detail = building.build(model).bento
    return verify(model, bento, log).bento


def fetch_stored(model: Model, bento: str) -> str:
    """A bento kept in the state store (a retraining winner), downloaded, checked and imported; its tag."""
    state = State.of(model.repo)
    work = state.root / "fetched" / model.name
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{bento.replace(':', '-')}.bento"
    artifact = state.get_artifact("bento", bento, path)
    tag, _ = release.import_file(model, path, artifact.sha256)
    if tag != bento:
        raise release.ReleaseError(f"the stored archive of {bento} holds {tag}")
    return tag


def check(model: Model) -> str:
    """Everything a pull request must pass for ``model``; one line of what passed."""
    log = StageLog(f"check {model.name}", ["doctor", "test", "train", "build", "fuzz", "load-test gate"])
    bento = _verified_bento(model, log)
    return f"{bento}: " + "; ".join(f"{s.name} {s.detail}" for s in log.stages if s.name in ("fuzz", "load-test gate"))


def build_verified(model: Model, out_dir: Path, stored: str | None = None) -> str:
    """Check (or fetch a stored winner and verify it), export to ``out_dir/<model>.bento``, record its digest."""
    state = require_shared_store(model.repo)
    log = StageLog(f"build {model.name}", ["doctor", "test", "train", "build", "fuzz", "load-test gate", "export"])
    bento = _verified_bento(model, log, stored)
    with log.stage("export") as stage:
        path, digest = release.export(model, bento, out_dir / f"{model.name}.bento")
        state.store.write_json(run_key(model.name), {"model": model.name, "bento": bento, "sha256": digest})
        # Kept once per bento (a retraining winner is there already; an export of it again differs in bytes):
        # production later promotes exactly this archive.
        if state.store.stat_file(State.artifact_key("bento", bento)) is None:
            state.put_artifact("bento", bento, path)
        stage.detail = f"{path.name} sha256={digest}"
    return f"{bento} -> {path.name} sha256={digest[:16]}..."


def deploy_file(model: Model, env: str, in_dir: Path) -> str:
    """Deploy ``in_dir/<model>.bento`` to ``env`` if its digest is the one this run's build recorded."""
    state = require_shared_store(model.repo)
    found = state.store.read_json(run_key(model.name))
    record: dict[str, Any] = found[0] if found and isinstance(found[0], dict) else {}
    if not record.get("sha256"):
        raise release.ReleaseError(
            f"no build of {model.name} is recorded for this run ({state.store.where(run_key(model.name))}): "
            "refusing a file whose digest nobody vouches for"
        )
    bento, digest = release.import_file(model, in_dir / f"{model.name}.bento", str(record["sha256"]))
    if bento != record.get("bento"):
        raise release.ReleaseError(f"{model.name}.bento holds {bento}, but this run built {record.get('bento')}")
    deployed = release.deploy(model, env, bento, approved=True, sha256=digest)
    return f"{deployed.outcome} {deployed.bento} v{deployed.version} {deployed.url or ''}".strip()


def promote_live(model: Model, source: str, env: str) -> str:
    """Deploy to ``env`` exactly the bento live in ``source`` (its stored archive, checked against the digest the
    ``source`` deploy recorded). A model whose ``source`` version is already live in ``env`` is left alone."""
    state = require_shared_store(model.repo)
    ledger = state.ledger
    live = ledger.live(model.name, source)
    if live is None or not live.bento:
        raise release.ReleaseError(f"{model.name} is not live in {source}: nothing to promote to {env}")
    current = ledger.live(model.name, env)
    if current is not None and current.bento == live.bento:
        return f"{live.bento} is already live in {env}"
    work = state.root / "promoted" / model.name
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{live.bento.replace(':', '-')}.bento"
    artifact = state.get_artifact("bento", live.bento, path, sha256=live.sha256)
    bento, digest = release.import_file(model, path, artifact.sha256)
    deployed = release.deploy(model, env, bento, approved=True, sha256=digest)
    return f"{deployed.outcome} {deployed.bento} (live in {source}) v{deployed.version} {deployed.url or ''}".strip()


def undeploy(repo: Repo, name: str, env: str) -> str:
    require_shared_store(repo)
    return release.undeploy(repo, name, env).reason or "undeployed"
