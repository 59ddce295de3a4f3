"""The steps of retraining, each callable on its own: `modelctl retrain` runs them in a row, the Airflow
DAG factory (modelctl.airflow_dags) runs each as a task."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from modelctl.envs import model_python, runtime_script
from modelctl.errors import ModelctlError
from modelctl.notify import Message, notify
from modelctl.repo import Repo
from modelctl.retrain import decide
from modelctl.state import State


class RetrainStepError(ModelctlError):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


def run_dir(repo: Repo, model: str, run_id: str) -> Path:
    path = State.of(repo).root / "retrain-runs" / model / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _phase(repo: Repo, model: str, phase: str, folder: Path, **spec: Any) -> dict[str, Any]:
    python = model_python(repo, model)
    spec_file = folder / f"{phase}.spec.json"
    spec_file.write_text(json.dumps({"phase": phase, "run_dir": str(folder), **spec}))
    result = subprocess.run(
        [str(python), str(runtime_script("retrain_step.py")), str(spec_file)],
        cwd=repo.model_dir(model),
        env=State.of(repo).env(),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        data = {"failed_step": phase, "reason": f"exit {result.returncode}: {result.stderr.strip()[-400:]}"}
    if "failed_step" in data:
        raise RetrainStepError(data["failed_step"], data["reason"])
    return data


def champion_of(repo: Repo, model: str, env: str) -> str | None:
    live = State.of(repo).ledger.live(model, env)
    return live.model_tag if live else None


def extract(repo: Repo, model: str, folder: Path) -> int:
    """Fresh data through the model's own train.load_data(), kept in the run folder; the row count."""
    return int(_phase(repo, model, "extract", folder)["rows"])


def train_candidate(repo: Repo, model: str, folder: Path) -> str:
    """A candidate trained on the extracted data, saved as a new model version; its tag."""
    return str(_phase(repo, model, "train", folder)["candidate"])


def evaluate(repo: Repo, model: str, folder: Path, candidate: str, champion: str | None) -> dict[str, Any]:
    """Candidate and champion metrics on the same fresh holdout, and the decision."""
    scores = _phase(repo, model, "evaluate", folder, candidate=candidate, champion=champion)
    decision = decide(repo.config(model), scores["candidate_metrics"], scores.get("champion_metrics"))
    return {
        "candidate": candidate,
        "champion": champion,
        **scores,
        "promote": decision.promote,
        "reason": decision.reason,
        "candidate_score": decision.candidate,
        "champion_score": decision.champion,
    }


def announce(repo: Repo, model: str, env: str, evaluation: dict[str, Any], decision: str) -> None:
    config = repo.config(model)
    metric = config.retrain.metric
    champion = evaluation.get("champion_score")
    notify(
        Message(
            title=f"retrain {model}: {decision}",
            model=model,
            env=env,
            verdict=decision,
            facts={
                f"candidate {metric}": f"{evaluation['candidate_score']:.4f}",
                f"champion {metric}": "-" if champion is None else f"{champion:.4f}",
                "why": evaluation["reason"],
            },
            channel=config.notify.slack_channel,
        )
    )


def alert(repo: Repo, model: str, env: str, step: str, reason: str) -> None:
    notify(
        Message(
            title=f"retrain {model} failed at {step}",
            model=model,
            env=env,
            verdict="failed",
            facts={"step": step, "reason": reason, "live": champion_of(repo, model, env) or "-"},
            channel=repo.config(model).notify.slack_channel,
        )
    )
