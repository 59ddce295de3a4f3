"""What one CI job does for each model of its shard (`modelctl ci check|build|deploy|undeploy`).

Pull requests: doctor, the model's tests, training, build, fuzzing and the load-test gate on one started candidate.
Merges: the same (or, for a retraining winner, the stored bento instead of training), then the verified bento is
exported to ``dist/<model>.bento``; its sha256 goes into the state store under this workflow run, and the deploy
jobs import a file only when its digest matches that record (whoever can rewrite the artifact cannot rewrite the
record: the store needs credentials only these steps get).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelctl import archive
from modelctl.console import err
from modelctl.delivery import build as building
from modelctl.delivery import release
from modelctl.delivery import train as training
from modelctl.delivery.gate import evaluate as gate_evaluate
from modelctl.delivery.gate import lacking as gate_lacking
from modelctl.delivery.promote import verify
from modelctl.delivery.stages import StageLog
from modelctl.delivery.testing import run_tests
from modelctl.doctor import ModelFolder, check_range, errors_of, run_checks
from modelctl.errors import ModelctlError, UsageError
from modelctl.model import Model, stop_leftovers
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


def _verified_bento(model: Model, log: StageLog, stored: str | None = None, fetched_file: Path | None = None) -> str:
    with log.stage("doctor") as stage:
        problems = errors_of(run_checks(ModelFolder(model.name, model.folder, model.repo.root)))
        if problems:
            raise DoctorError("doctor: " + "; ".join(problems))
        stage.detail = f"{check_range()} ok"
    with log.stage("test") as stage:
        stage.detail = run_tests(model)
    if stored:
        with log.stage("fetch") as stage:
            if fetched_file is None:
                bento = stage.detail = fetch_stored(model, stored)
            else:  # downloaded by `ci fetch` in a step of its own: imported here, where no credential is
                given = _read_handoff(handoff_path(fetched_file, model.name), model.name)
                tag, _ = release.import_file(model, fetched_file / f"{model.name}.bento", str(given["sha256"]))
                if tag != stored:
                    raise release.ReleaseError(f"the fetched archive of {stored} holds {tag}")
                bento = stage.detail = tag
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


# --- the same build, split so that model code never runs where a credential is (issue 20 item 4) -------------
#
# `ci fetch` (credentials, no model code): a stored retraining winner, downloaded to a folder with its digest.
# `ci build --no-store` (no credentials): the model's tests, training or the fetched winner, build, fuzzing and the
#   gate, against a runner-local state folder; the export, and a hand-off file beside it (bento, digest, the gate's
#   and fuzzing's records).
# `ci record` (credentials, no model code, no model environment): the hand-off checked against the file it names
#   (digest, members, tag) and the records it carries, then written to the shared store for the deploy jobs.

HANDOFF_LIMIT = 1_000_000  # bytes: a hand-off file holds a tag, a digest and two small summaries


def handoff_path(folder: Path, model: str) -> Path:
    return folder / f"{model}.json"


def fetch_to(model: Model, bento: str, out_dir: Path) -> str:
    """Download the stored archive of ``bento`` (checked against its stored digest) to ``out_dir/<model>.bento``
    with ``<model>.json`` naming it; no model code runs."""
    state = require_shared_store(model.repo)
    archive.check_tag(bento, model.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = state.get_artifact("bento", bento, out_dir / f"{model.name}.bento")
    write_json(handoff_path(out_dir, model.name), {"model": model.name, "bento": bento, "sha256": artifact.sha256})
    return f"{bento} sha256={artifact.sha256[:16]}..."


def build_handoff(model: Model, out_dir: Path, fetched: Path | None = None) -> str:
    """`build_verified` without the shared store: against this runner's state folder, the verified bento exported
    to ``out_dir/<model>.bento`` and the hand-off ``out_dir/<model>.json`` written for `record_handoff`.
    ``fetched``: the folder `fetch_to` filled (verify the stored winner there instead of training)."""
    state = State.of(model.repo)
    if state.store.shared:
        raise UsageError(
            f"`ci build --no-store` runs the model's code and must not reach the shared store ({state.store.where('')})"
            ": run it in a step without MODELCTL_STORE and the store's credentials"
        )
    steps = ["doctor", "test", "fetch" if fetched else "train", "build", "fuzz", "load-test gate", "export"]
    log = StageLog(f"build {model.name}", steps)
    stored = None
    if fetched is not None:
        given = _read_handoff(handoff_path(fetched, model.name), model.name)
        stored = str(given["bento"])
    bento = _verified_bento(model, log, stored, fetched_file=fetched)
    with log.stage("export") as stage:
        left = stop_leftovers()  # nothing the model's code left running may rewrite what is handed over
        if left:
            err.print(f"stopped {left} process(es) the model's code left running", markup=False)
        path, digest = release.export(model, bento, out_dir / f"{model.name}.bento")
        record = {
            "model": model.name,
            "bento": bento,
            "sha256": digest,
            "gate": state.gate_result(bento),
            "fuzz": state.fuzz_result(bento),
        }
        write_json(handoff_path(out_dir, model.name), record)
        stage.detail = f"{path.name} sha256={digest}"
    return f"{bento} -> {path.name} sha256={digest[:16]}..."


def record_handoff(model: Model, in_dir: Path) -> str:
    """Check ``in_dir/<model>.json`` against ``in_dir/<model>.bento`` and write what it vouches for to the shared
    store: this run's build record, the archive (once per bento), the gate's and fuzzing's records."""
    state = require_shared_store(model.repo)
    given = _read_handoff(handoff_path(in_dir, model.name), model.name)
    bento, digest = str(given["bento"]), str(given["sha256"])
    path = in_dir / f"{model.name}.bento"
    info = archive.inspect(path.resolve(), model.name, digest)  # digest, every member, the tag in bento.yaml
    if info.tag != bento:
        raise release.ReleaseError(f"{path} holds {info.tag}, but {handoff_path(in_dir, model.name)} names {bento}")
    where = handoff_path(in_dir, model.name)
    for what, summary in (("gate", given.get("gate")), ("fuzz", given.get("fuzz"))):
        if not isinstance(summary, dict) or summary.get("passed") is not True:
            raise release.ReleaseError(f"{where}: {bento} has no passing {what} record")
        if summary.get("model") != model.name or summary.get("bento") != bento:
            raise release.ReleaseError(f"{where}: the {what} record is not one of {bento}")
    gate, fuzz = given["gate"], given["fuzz"]
    if gate_lacking(gate) is not None:
        raise release.ReleaseError(f"{where}: the gate record of {bento} is not the gate's")
    _check_gate_numbers(model, gate, where)
    cases, server_errors = fuzz.get("cases"), fuzz.get("server_errors")
    if not isinstance(cases, int) or cases <= 0 or server_errors not in (0, [], {}):
        raise release.ReleaseError(f"{where}: the fuzz record of {bento} shows no cases or server errors")
    # Written once per bento: a record already there (another run's) is never replaced by a different one.
    for what, existing, summary in (("gate", state.gate_result(bento), gate), ("fuzz", state.fuzz_result(bento), fuzz)):
        if existing is not None and existing != summary:
            raise release.ReleaseError(f"{bento} already has a different {what} record in the store: not replaced")
    state.put_gate_result(bento, gate)
    state.put_fuzz_result(bento, fuzz)
    if state.store.stat_file(State.artifact_key("bento", bento)) is None:
        state.put_artifact("bento", bento, path)
    state.store.write_json(run_key(model.name), {"model": model.name, "bento": bento, "sha256": digest})
    return f"{bento} sha256={digest[:16]}... recorded"


def _check_gate_numbers(model: Model, gate: dict[str, Any], where: Path) -> None:
    """The verdict, made again from the recorded numbers against this checkout's config.yaml limits."""
    numbers = {key: gate.get(key) for key in ("requests", "failures", "p50_ms", "p90_ms", "p99_ms", "rps")}
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in numbers.values()):
        raise release.ReleaseError(f"{where}: the gate record's numbers are missing or not numbers")
    verdict = gate_evaluate(numbers, model.config)
    if not verdict.passed:
        raise release.ReleaseError(f"{where}: by {model.relative('config.yaml')}, the recorded load test fails: "
                                   + "; ".join(verdict.breaches))  # fmt: skip
    if gate.get("max_p90_ms") != verdict.max_p90_ms or gate.get("max_error_rate") != verdict.max_error_rate:
        raise release.ReleaseError(f"{where}: the gate record's limits are not {model.relative('config.yaml')}'s")


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def read_handoff_file(path: Path, model: str) -> dict[str, Any]:
    """A hand-off file (JSON object, at most HANDOFF_LIMIT bytes) that names ``model``; ReleaseError naming the
    file otherwise."""
    try:
        if path.stat().st_size > HANDOFF_LIMIT:
            raise release.ReleaseError(f"{path} is larger than {HANDOFF_LIMIT} bytes: not a hand-off file")
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise release.ReleaseError(f"{path} does not exist: the step before handed nothing over for {model}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise release.ReleaseError(f"{path} cannot be read as JSON ({exc})") from exc
    except RecursionError:
        raise release.ReleaseError(f"{path} nests deeper than JSON hand-off files do") from None
    if not isinstance(document, dict) or document.get("model") != model:
        raise release.ReleaseError(f"{path} must be a JSON object naming model {model!r}")
    return document


def _read_handoff(path: Path, model: str) -> dict[str, Any]:
    document = read_handoff_file(path, model)
    bento, digest = document.get("bento"), document.get("sha256")
    if not isinstance(bento, str) or not isinstance(digest, str):
        raise release.ReleaseError(f"{path} must name model {model!r}, its bento and sha256")
    archive.check_tag(bento, model)
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise release.ReleaseError(f"{path}: sha256 {digest[:80]!r} is not 64 lowercase hex digits")
    return document


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
