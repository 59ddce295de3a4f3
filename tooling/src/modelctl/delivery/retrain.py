"""Champion/challenger retraining, in steps that `modelctl retrain` runs in a row and the Airflow DAG runs
as tasks: extract fresh data -> train a candidate -> score candidate and champion on the same holdout ->
decide -> promote (locally: promote.py; in CI: dispatch deploy.yml) -> record and notify.

The champion is the model live in the environment (the ledger). A fresh runner has an empty BentoML store, so
the champion comes from the bento archive the state store keeps for that deploy, checked against its digest
before it is imported (:func:`champion_in_store`). In CI, and always in the Airflow DAG, a winner is shipped by
:func:`ship_winner`: its bento is stored and deploy.yml is dispatched to gate and deploy exactly that bento.

A candidate is promoted only when its metric is finite, reaches `retrain.min_metric` (when set) and beats
the live champion by `retrain.min_improvement`. A failing step never changes what is live.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelctl import cmd, github, platformenv
from modelctl.console import err
from modelctl.delivery import build as building
from modelctl.delivery import promote as promoting
from modelctl.delivery import release
from modelctl.delivery.release import in_ci
from modelctl.delivery.train import store_env
from modelctl.envs import runtime_script
from modelctl.errors import ModelctlError, UsageError
from modelctl.model import Model
from modelctl.notify import Message, notify
from modelctl.redact import redact
from modelctl.state import State, split_tag
from modelkit import ModelConfig

#: Where the champion is looked for when no environment is named: `modelctl retrain` and the Airflow DAG agree.
DEFAULT_ENV = "staging"
#: The decision of a run whose winner was stored and handed to deploy.yml.
DISPATCHED = "promoted: deploy.yml dispatched"


class RetrainError(ModelctlError):
    pass


class StepError(ModelctlError):
    """A retraining step failed; ``step`` names it, ``reason`` says why (passwords masked)."""

    def __init__(self, step: str, reason: str) -> None:
        self.step, self.reason = step, redact(reason)
        super().__init__(f"{step}: {self.reason}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: float
    champion: float | None


def _reaches_floor(config: ModelConfig, score: float) -> bool:
    floor = config.retrain.min_metric
    if floor is None:
        return True
    return score >= floor if config.retrain.direction == "maximize" else score <= floor


def decide(config: ModelConfig, candidate: dict[str, float], champion: dict[str, float] | None) -> Decision:
    """Promote only a finite candidate that reaches the floor and beats the champion by the minimum improvement."""
    rule = config.retrain
    if rule.metric not in candidate:
        raise StepError(
            "evaluate",
            f"retrain.metric {rule.metric!r} is not among the metrics train.evaluate() returns: {sorted(candidate)}",
        )
    score = float(candidate[rule.metric])
    if not math.isfinite(score):
        raise StepError("evaluate", f"the candidate's {rule.metric} is {score}: not a finite number; nothing promoted")
    if not _reaches_floor(config, score):
        bound = ">=" if rule.direction == "maximize" else "<="
        return Decision(
            False,
            f"candidate {rule.metric}={score:.4f} misses retrain.min_metric (needs {bound} {rule.min_metric})",
            score,
            None if champion is None else champion.get(rule.metric),
        )
    best = None if champion is None else champion.get(rule.metric)
    if best is None:
        return Decision(True, f"no live champion: candidate {rule.metric}={score:.4f}", score, None)
    best = float(best)
    if not math.isfinite(best):
        return Decision(
            True, f"candidate {rule.metric}={score:.4f} vs champion {best} (not finite): better", score, best
        )
    gain = score - best if rule.direction == "maximize" else best - score
    verdict = "better" if gain >= rule.min_improvement else "not better"
    reason = (
        f"candidate {rule.metric}={score:.4f} vs champion {best:.4f} ({rule.direction}): {verdict} by "
        f"{gain:+.4f}, needs {rule.min_improvement:+.4f}"
    )
    return Decision(gain >= rule.min_improvement, reason, score, best)


def data_url_variable(model: Model) -> str:
    return model.data_url_variable


def require_data(model: Model) -> None:
    variable = data_url_variable(model)
    if not os.environ.get(variable):
        raise StepError(
            "extract",
            f"{variable} is not set: in CI (or with --require-data) retraining needs the model's data source and "
            "never falls back to the packaged demo data; set the secret and pass it to the job",
        )


def champion_of(model: Model, env: str) -> str | None:
    live = State.of(model.repo).ledger.live(model.name, env)
    return live.model_tag if live else None


def require_shared_store(model: Model) -> None:
    """A winner handed to deploy.yml travels through the state store: a runner-local one cannot hand it over."""
    if not State.of(model.repo).store.shared:
        raise StepError(
            "setup",
            "retraining in CI (and the Airflow DAG, which dispatches deploy.yml) needs a shared state store "
            "(MODELCTL_STORE): without it there is never a champion to beat and nothing the deploy can pull",
        )


def _in_model_store(state: State, model_tag: str) -> bool:
    try:
        name, version = split_tag(model_tag)
    except UsageError as exc:
        raise StepError("evaluate", f"the ledger's champion: {exc}") from exc
    return (state.bentoml_home / "models" / name / version / "model.yaml").is_file()


def champion_in_store(model: Model, env: str) -> str | None:
    """The tag of the champion live in ``env``, present in this runner's BentoML store (None: nothing is live).

    A runner that did not deploy it (every CI runner starts empty) imports the bento archive the state store keeps
    for that deploy (`modelctl ci build` stores it, a retraining winner is stored by :func:`store_winner`): the
    download is checked against the sha256 stored with it, the copy again before `bentoml import`, which also
    puts the bento's model into the model store. StepError("evaluate", ...) when that cannot be done.
    """
    state = State.of(model.repo)
    live = state.ledger.live(model.name, env)
    if live is None or not live.model_tag:
        return None
    champion = live.model_tag
    if _in_model_store(state, champion):
        return champion
    if not live.bento:
        raise StepError(
            "evaluate",
            f"the champion {champion} (live in {env}) is not in this runner's BentoML store and its ledger record "
            "names no bento to fetch it from; deploy the champion again through deploy.yml",
        )
    key = State.artifact_key("bento", live.bento)
    try:
        stored = state.store.stat_file(key)
        if stored is None:
            raise StepError(
                "evaluate",
                f"the champion {champion} (bento {live.bento}, live in {env}) is not in this runner's BentoML store "
                f"and its archive {state.store.where(key)} is missing from the state store: nothing to evaluate it "
                "with; deploy the champion again through deploy.yml (`modelctl ci build` stores its archive)",
            )
        state.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="modelctl-champion-", dir=state.root) as tmp:
            path = Path(tmp) / f"{model.name}.bento"
            artifact = state.get_artifact("bento", live.bento, path, sha256=stored.sha256)
            bento, digest = release.import_file(model, path, artifact.sha256)
    except StepError:
        raise
    except ModelctlError as exc:
        raise StepError(
            "evaluate", f"fetching the champion {champion} from {state.store.where(key)}: {str(exc).splitlines()[0]}"
        ) from exc
    if bento != live.bento:
        raise StepError("evaluate", f"the stored archive {state.store.where(key)} holds {bento}, not {live.bento}")
    if not _in_model_store(state, champion):
        raise StepError(
            "evaluate", f"the stored archive {state.store.where(key)} of {bento} does not hold the champion {champion}"
        )
    err.print(f"champion {champion}: imported {bento} from {state.store.where(key)} (sha256 {digest})", markup=False)
    return champion


def run_folder_path(model: Model, run_id: str) -> Path:
    """Where one run's extracted data lives (runner-local: it holds training data)."""
    return State.of(model.repo).root / "retrain-runs" / model.name / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


def open_run_folder(model: Model, run_id: str) -> Path:
    path = run_folder_path(model, run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_run_folder(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def run_folder(model: Model, run_id: str) -> Iterator[Path]:
    """:func:`open_run_folder`, removed when the block ends, however it ends."""
    path = open_run_folder(model, run_id)
    try:
        yield path
    finally:
        remove_run_folder(path)


def _phase(model: Model, phase: str, folder: Path, **spec: Any) -> dict[str, Any]:
    spec_file = folder / f"{phase}.spec.json"
    spec_file.write_text(json.dumps({"phase": phase, "run_dir": str(folder), **spec}), encoding="utf-8")
    result = model.run(
        [runtime_script("retrain_step.py"), spec_file], what=f"retrain {phase}", env=store_env(model), check=False
    )
    try:
        data: dict[str, Any] = json.loads(result.last_json_line())
    except ValueError:
        data = {"failed_step": phase, "reason": f"exit {result.returncode}: {result.stderr.strip()[-400:]}"}
    if "failed_step" in data:
        raise StepError(str(data["failed_step"]), str(data["reason"]))
    return data


def extract(model: Model, folder: Path) -> int:
    """Fresh data through the model's own train.load_data(), kept in the run folder; the row count."""
    return int(_phase(model, "extract", folder)["rows"])


def train_candidate(model: Model, folder: Path) -> str:
    """A candidate trained on the extracted data, saved as a new model version; its tag."""
    return str(_phase(model, "train", folder, framework=model.config.framework)["candidate"])


def evaluate(model: Model, folder: Path, candidate: str, champion: str | None) -> dict[str, Any]:
    """Candidate and champion metrics on the same fresh holdout, and the decision."""
    scores = _phase(model, "evaluate", folder, candidate=candidate, champion=champion)
    decision = decide(model.config, scores["candidate_metrics"], scores.get("champion_metrics"))
    return {
        "candidate": candidate,
        "champion": champion,
        **scores,
        "promote": decision.promote,
        "reason": decision.reason,
        "candidate_score": decision.candidate,
        "champion_score": decision.champion,
    }


def retrain(
    model: Model, env: str = DEFAULT_ENV, dry_run: bool = False, data_required: bool | None = None
) -> dict[str, Any]:
    """One retraining run; the record written to the retrain log."""
    champion = champion_of(model, env)
    record: dict[str, Any] = {"model": model.name, "env": env, "champion": champion, "dry_run": dry_run}
    err.print(f"retrain {model.name}: extract, train, evaluate (champion: {champion or 'none'})", markup=False)
    try:
        if in_ci():
            require_shared_store(model)
        if in_ci() if data_required is None else data_required:
            require_data(model)
        with run_folder(model, datetime.now(UTC).strftime("manual-%Y%m%dT%H%M%S%f")) as folder:
            record["rows"] = extract(model, folder)
            candidate = train_candidate(model, folder)
            evaluation = evaluate(model, folder, candidate, champion_in_store(model, env))
    except StepError as exc:
        raise failed(model, env, record, exc.step, exc.reason) from exc
    record.update(
        {k: evaluation[k] for k in ("candidate", "candidate_metrics", "reason")},
        champion_metrics=evaluation.get("champion_metrics"),
        metric=model.config.retrain.metric,
    )
    if dry_run:
        record["decision"] = "would promote" if evaluation["promote"] else "would keep champion"
    elif not evaluation["promote"]:
        record["decision"] = "kept champion"
    elif in_ci():
        try:
            ship_winner(model, candidate, record)
        except ModelctlError as exc:
            raise failed(model, env, record, "promote", str(exc)) from exc
    else:
        record.update(_promote_locally(model, env, evaluation))
    State.of(model.repo).retrain_log.append(model.name, record)
    if record["decision"] != "promoted" and not str(record["decision"]).startswith("promoted: v"):
        announce(model, env, evaluation, record["decision"])
    return record


def ship_winner(model: Model, candidate: str, record: dict[str, Any]) -> None:
    """Promotion in CI (`modelctl retrain` there, and the Airflow DAG): store the evaluated model and a bento of
    exactly it, then dispatch deploy.yml with that bento, which gates and deploys those bytes. Fills ``record``
    (bento, digests, the dispatch URL, the decision) as it goes, so a failed dispatch still names what was stored."""
    record.update(store_winner(model, candidate))
    record["dispatched"] = github.dispatch_deploy(model.name, candidate, record["bento"])
    record["decision"] = DISPATCHED


def store_winner(model: Model, candidate: str) -> dict[str, str]:
    """Keep the evaluated model and a bento of exactly it in the state store, for the deploy that follows (it gates
    and deploys those bytes: nothing is trained again); their tags and digests."""
    state = State.of(model.repo)
    bento = building.build(model, model_tag=candidate).bento
    # The platform's BentoML exports them: this runs where the store's credentials are.
    python, env = platformenv.python(state.root), platformenv.environment(state.bentoml_home)
    with tempfile.TemporaryDirectory(prefix="modelctl-winner-") as tmp:
        model_file = Path(tmp) / "model.bentomodel"
        bento_file = Path(tmp) / "model.bento"
        none = platformenv.secrets_input()
        cmd.run(platformenv.command(python, "models", "export", candidate, model_file), what="bentoml models export",
                env=env, input=none)  # fmt: skip
        cmd.run(platformenv.command(python, "export", bento, bento_file), what="bentoml export", env=env, input=none)
        stored_model = state.put_artifact("model", candidate, model_file)
        stored_bento = state.put_artifact("bento", bento, bento_file)
    err.print(f"stored {candidate} and {bento} in {state.store.where(stored_bento.key)}", markup=False)
    return {"bento": bento, "bento_sha256": stored_bento.sha256, "model_sha256": stored_model.sha256}


def _promote_locally(model: Model, env: str, evaluation: dict[str, Any]) -> dict[str, Any]:
    metric = model.config.retrain.metric
    facts = _score_facts(metric, evaluation)
    try:
        bento = building.build(model, model_tag=evaluation["candidate"]).bento
        promotion = promoting.promote(
            model, bento, env, approved=True, title=f"retrain {model.name}: promoted", facts=facts
        )
    except ModelctlError as exc:
        raise failed(
            model, env, {"candidate": evaluation["candidate"]}, "promote", str(exc).splitlines()[0], False
        ) from exc
    assert promotion.record is not None
    return {"decision": f"promoted: v{promotion.record.version} live", "bento": bento, "url": promotion.record.url}


def _score_facts(metric: str, evaluation: dict[str, Any]) -> dict[str, str]:
    champion = evaluation.get("champion_score")
    return {
        f"candidate {metric}": f"{evaluation['candidate_score']:.4f}",
        f"champion {metric}": "-" if champion is None else f"{champion:.4f}",
        "why": evaluation["reason"],
    }


def failed(
    model: Model, env: str, record: dict[str, Any], step: str, reason: str, notify_now: bool = True
) -> RetrainError:
    """Record a failed run, alert (unless promote already did), and the error to raise."""
    reason = redact(reason)
    record.update(decision="failed", failed_step=step, reason=reason)
    State.of(model.repo).retrain_log.append(model.name, record)
    if notify_now:
        alert(model, env, step, reason)
    return RetrainError(f"retrain of {model.name} failed at {step}: {reason}; the live model is unchanged")


def announce(model: Model, env: str, evaluation: dict[str, Any], decision: str) -> None:
    notify(
        Message(
            title=f"retrain {model.name}: {decision}",
            model=model.name,
            env=env,
            verdict=decision,
            facts=_score_facts(model.config.retrain.metric, evaluation),
            channel=model.config.notify.slack_channel,
        )
    )


def alert(model: Model, env: str, step: str, reason: str) -> None:
    notify(
        Message(
            title=f"retrain {model.name} failed at {step}",
            model=model.name,
            env=env,
            verdict="failed",
            facts={"step": step, "reason": redact(reason), "live": champion_of(model, env) or "-"},
            channel=model.config.notify.slack_channel,
        )
    )


def check_usage(model: str | None, due: bool) -> None:
    if due == (model is not None):
        raise UsageError("name one MODEL, or use --due to retrain every model whose schedule is due")
