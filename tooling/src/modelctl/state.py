"""Where modelctl keeps machine-local state: model store, ledger, local deployments, reports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelctl.ledger import Ledger, RetrainLog
from modelctl.repo import Repo


@dataclass(frozen=True)
class State:
    root: Path

    @classmethod
    def of(cls, repo: Repo) -> State:
        configured = os.environ.get("MODELCTL_STATE_DIR")
        return cls(Path(configured).resolve() if configured else repo.root / ".modelctl")

    @property
    def bentoml_home(self) -> Path:
        configured = os.environ.get("BENTOML_HOME")
        return Path(configured).resolve() if configured else self.root / "bentoml"

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.root / "ledger")

    @property
    def retrain_log(self) -> RetrainLog:
        return RetrainLog(self.root / "ledger")

    def gate_file(self, bento: str) -> Path:
        """Where the passing load-test summary of ``bento`` is kept (deploy refuses bentos without one)."""
        name, _, version = bento.partition(":")
        return self.root / "gates" / name / f"{version}.json"

    def deploy_dir(self, model: str, env: str) -> Path:
        return self.root / "deploy" / model / env

    def env(self) -> dict[str, str]:
        """Environment for processes that touch the model store."""
        return {**os.environ, "BENTOML_HOME": str(self.bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
