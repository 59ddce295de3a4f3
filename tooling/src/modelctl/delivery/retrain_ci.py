"""Retraining in CI, split so that model code never runs where the store's, Slack's or GitHub's credentials are
(issue 20 item 4). retrain.yml runs three jobs per model:

1. `modelctl ci champion` (the store's credentials, no model code): the champion live in the environment, its
   bento archive downloaded (checked against the stored digest), and a file naming it.
2. `modelctl retrain --no-store` (the model's own data URL only; no store, no Slack, no GitHub token): extract,
   train, evaluate candidate and champion on the same holdout, decide; a winner is built and exported with its
   model. Everything the run found, failure included, goes into a hand-off file.
3. `modelctl ci record-retrain` (credentials, no model code, no model environment): the hand-off checked against
   the files it names, the winner stored, deploy.yml dispatched to gate and deploy exactly that bento, the run
   appended to the retrain log, Slack told.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from modelctl import archive, cmd, github, platformenv
from modelctl.console import err
from modelctl.delivery import build as building
from modelctl.delivery import ci as ci_steps
from modelctl.delivery import release
from modelctl.delivery import retrain as retraining
from modelctl.errors import ModelctlError, UsageError
from modelctl.model import Model, stop_leftovers
from modelctl.redact import redact
from modelctl.state import State, split_tag
from modelctl.statestore import sha256_file

DECISIONS = ("winner", "kept champion", "failed")


def champion_path(folder: Path, model: str) -> Path:
    return folder / f"{model}.champion.json"


def handoff_path(folder: Path, model: str) -> Path:
    return folder / f"{model}.retrain.json"


# --- 1. the champion, fetched with credentials ------------------------------------------------------------------


def fetch_champion(model: Model, env: str, out_dir: Path) -> str:
    """Write ``<model>.champion.json`` (and ``<model>.champion.bento`` when one is live) into ``out_dir``."""
    state = ci_steps.require_shared_store(model.repo)
    retraining.require_shared_store(model)
    live = state.ledger.live(model.name, env)
    document: dict[str, Any] = {"model": model.name, "env": env, "champion": None, "bento": None, "sha256": None}
    out_dir.mkdir(parents=True, exist_ok=True)
    if live is not None and live.model_tag:
        if not live.bento:
            raise retraining.StepError(
                "evaluate", f"the champion {live.model_tag} (live in {env}) has no bento in its ledger record"
            )
        artifact = state.get_artifact("bento", live.bento, out_dir / f"{model.name}.champion.bento")
        document.update(champion=live.model_tag, bento=live.bento, sha256=artifact.sha256)
    ci_steps.write_json(champion_path(out_dir, model.name), document)
    return f"champion {document['champion'] or 'none'} in {env}"


# --- 2. the run, without credentials ----------------------------------------------------------------------------


def retrain_offline(model: Model, env: str, champion_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Extract, train, evaluate and decide against the fetched champion; a winner's bento and model exported to
    ``out_dir``; the hand-off written there whatever happens. Raises RetrainError when a step failed."""
    state = State.of(model.repo)
    if state.store.shared:
        raise UsageError(
            "`retrain --no-store` runs the model's code and must not reach the shared store: run it in a step "
            "without MODELCTL_STORE and the store's credentials"
        )
    record: dict[str, Any] = {"model": model.name, "env": env, "champion": None, "decision": "failed"}
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        try:
            champion = _import_champion(model, env, champion_dir)
            record["champion"] = champion
            retraining.require_data(model)
            run_id = f"ci-{model.name}"
            with retraining.run_folder(model, run_id) as folder:
                record["rows"] = retraining.extract(model, folder)
                candidate = retraining.train_candidate(model, folder)
                evaluation = retraining.evaluate(model, folder, candidate, champion)
            record.update(
                {k: evaluation[k] for k in ("candidate", "candidate_metrics", "reason")},
                champion_metrics=evaluation.get("champion_metrics"),
                metric=model.config.retrain.metric,
            )
            if evaluation["promote"]:
                record.update(_export_winner(model, candidate, out_dir), decision="winner")
            else:
                record["decision"] = "kept champion"
        except retraining.StepError as exc:
            record.update(failed_step=exc.step, reason=exc.reason)
        except ModelctlError as exc:
            record.update(failed_step="promote" if record.get("candidate") else "setup", reason=redact(str(exc)))
    finally:
        stop_leftovers()  # nothing the model's code left running may rewrite the hand-off
        ci_steps.write_json(handoff_path(out_dir, model.name), record)
    if record["decision"] == "failed":
        raise retraining.RetrainError(
            f"retrain of {model.name} failed at {record['failed_step']}: {record['reason']}; the live model is "
            "unchanged (the record job reports it)"
        )
    return record


def _import_champion(model: Model, env: str, folder: Path) -> str | None:
    given = ci_steps.read_handoff_file(champion_path(folder, model.name), model.name)
    if given.get("env") != env:
        raise retraining.StepError(
            "setup", f"{champion_path(folder, model.name)} is the champion of {given.get('env')}"
        )
    champion, bento, digest = given.get("champion"), given.get("bento"), given.get("sha256")
    if champion is None:
        return None
    if not isinstance(champion, str) or not isinstance(bento, str) or not isinstance(digest, str):
        raise retraining.StepError("setup", f"{champion_path(folder, model.name)} names no champion bento and digest")
    split_tag(champion)
    tag, _ = release.import_file(model, folder / f"{model.name}.champion.bento", digest)
    if tag != bento:
        raise retraining.StepError("evaluate", f"the fetched champion archive holds {tag}, not {bento}")
    name, version = split_tag(champion)
    if not (State.of(model.repo).bentoml_home / "models" / name / version / "model.yaml").is_file():
        raise retraining.StepError("evaluate", f"the fetched archive of {bento} does not hold the champion {champion}")
    return champion


def _export_winner(model: Model, candidate: str, out_dir: Path) -> dict[str, str]:
    """A bento of exactly the winning model, exported with the model itself (the platform's BentoML)."""
    state = State.of(model.repo)
    bento = building.build(model, model_tag=candidate).bento
    python = platformenv.python(state.root)
    env = platformenv.environment(state.bentoml_home)
    bento_file = (out_dir / f"{model.name}.bento").resolve()
    model_file = (out_dir / f"{model.name}.bentomodel").resolve()
    none = platformenv.secrets_input()
    cmd.run(
        platformenv.command(python, "export", bento, bento_file), what=f"bentoml export {bento}", env=env, input=none
    )
    cmd.run(
        platformenv.command(python, "models", "export", candidate, model_file),
        what=f"bentoml models export {candidate}",
        env=env,
        input=none,
    )
    return {"bento": bento, "bento_sha256": archive.sha256_of(bento_file), "model_sha256": sha256_file(model_file)}


# --- 3. the record, with credentials ----------------------------------------------------------------------------


def record_retrain(model: Model, env: str, in_dir: Path) -> dict[str, Any]:
    """Check the hand-off, store a winner and dispatch deploy.yml, append the run to the retrain log, notify."""
    state = ci_steps.require_shared_store(model.repo)
    retraining.require_shared_store(model)
    try:
        record = _checked_record(model, env, in_dir)
    except ModelctlError as exc:
        record = {"model": model.name, "env": env, "failed_step": "setup", "reason": str(exc).splitlines()[0]}
    if record.get("decision") == "winner":
        try:
            stored_model = state.put_artifact("model", str(record["candidate"]), in_dir / f"{model.name}.bentomodel")
            stored_bento = state.put_artifact("bento", str(record["bento"]), in_dir / f"{model.name}.bento")
            err.print(f"stored {record['candidate']} and {record['bento']} in {state.store.where(stored_bento.key)}")
            record.update(bento_sha256=stored_bento.sha256, model_sha256=stored_model.sha256)
            record["dispatched"] = github.dispatch_deploy(model.name, str(record["candidate"]), str(record["bento"]))
            record["decision"] = retraining.DISPATCHED
        except ModelctlError as exc:
            raise retraining.failed(model, env, record, "promote", str(exc)) from exc
    if record.get("decision") not in (retraining.DISPATCHED, "kept champion"):
        step, reason = str(record.get("failed_step") or "setup"), str(record.get("reason") or "no reason given")
        raise retraining.failed(model, env, record, step, reason)
    state.retrain_log.append(model.name, record)
    retraining.announce(model, env, _evaluation(record), str(record["decision"]))
    return record


# What a hand-off may put into the retrain log; the log adds when and by whom (never taken from the file).
RECORD_FIELDS = (
    "model", "env", "champion", "rows", "candidate", "candidate_metrics", "champion_metrics", "metric", "reason",
    "decision", "failed_step", "bento", "bento_sha256", "model_sha256",
)  # fmt: skip


def _checked_record(model: Model, env: str, folder: Path) -> dict[str, Any]:
    path = handoff_path(folder, model.name)
    given = ci_steps.read_handoff_file(path, model.name)
    record = {key: given[key] for key in RECORD_FIELDS if key in given}
    if record.get("env") != env:
        raise release.ReleaseError(f"{path} is a run against {record.get('env')}, not {env}")
    if record.get("decision") not in DECISIONS:
        raise release.ReleaseError(f"{path}: decision {record.get('decision')!r} is not one of {', '.join(DECISIONS)}")
    record["reason"] = redact(str(record.get("reason", "")))[:2000]
    if record["decision"] == "failed":
        return record
    metrics = record.get("candidate_metrics")
    if not isinstance(metrics, dict) or not all(isinstance(v, int | float) for v in metrics.values()):
        raise release.ReleaseError(f"{path}: candidate_metrics must map metric names to numbers")
    champion_metrics = record.get("champion_metrics")
    if champion_metrics is not None and (
        not isinstance(champion_metrics, dict) or not all(isinstance(v, int | float) for v in champion_metrics.values())
    ):
        raise release.ReleaseError(f"{path}: champion_metrics must map metric names to numbers")
    candidate = record.get("candidate")
    if not isinstance(candidate, str):
        raise release.ReleaseError(f"{path}: no candidate model named")
    archive.check_tag(candidate, model.name)
    if record["decision"] == "winner":
        # The decision is made again here, by config.yaml's rule, from the metrics handed over.
        verdict = retraining.decide(model.config, metrics, champion_metrics)
        if not verdict.promote:
            raise release.ReleaseError(f"{path} calls {candidate} a winner, but by the retrain rule: {verdict.reason}")
        bento, bento_sha, model_sha = record.get("bento"), record.get("bento_sha256"), record.get("model_sha256")
        if not all(isinstance(v, str) for v in (bento, bento_sha, model_sha)):
            raise release.ReleaseError(f"{path}: a winner needs its bento and both digests")
        info = archive.inspect((folder / f"{model.name}.bento").resolve(), model.name, str(bento_sha))
        if info.tag != bento:
            raise release.ReleaseError(f"{folder / f'{model.name}.bento'} holds {info.tag}, not {bento}")
        if candidate not in (info.model_tag, *info.model_tags):
            raise release.ReleaseError(f"{folder / f'{model.name}.bento'} ({bento}) does not serve {candidate}")
        model_file = folder / f"{model.name}.bentomodel"
        if not model_file.is_file() or sha256_file(model_file) != model_sha:
            raise release.ReleaseError(f"{model_file} is missing or its sha256 is not the one {path} names")
    return record


def _evaluation(record: dict[str, Any]) -> dict[str, Any]:
    """The scores `announce` shows, from the record's metrics."""
    metric = str(record.get("metric", ""))
    candidate = (record.get("candidate_metrics") or {}).get(metric, math.nan)
    champion = (record.get("champion_metrics") or {}).get(metric)
    return {"candidate_score": candidate, "champion_score": champion, "reason": record.get("reason", "")}
