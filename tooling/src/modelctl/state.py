"""Where modelctl keeps its state: a shared store for what outlives a runner, a local folder for the rest.

Shared (``State.store``, see ``modelctl.statestore``: ``MODELCTL_STORE``, else ``[tool.modelctl] store``
in the root pyproject.toml, else the local folder): the release ledger, the retrain log, gate and fuzz results
and the model and bento archives that were evaluated and gated.

Runner-local (``State.root``: ``<repo>/.modelctl`` or ``$MODELCTL_STATE_DIR``), never shared: the
BentoML home (model and bento store), local deployments (pids, ports, logs), retrain working folders.
With no store configured, both are the same folder, laid out as before (``ledger/``, ``gates/``, ``fuzz/``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from modelctl.errors import UsageError
from modelctl.ledger import Ledger, RetrainLog
from modelctl.repo import Repo
from modelctl.statestore import Artifact, CorruptStateError, LocalStore, Store, StoreError, check_name, configured_store

ArtifactKind = Literal["bento", "model"]


class BadTagError(UsageError):
    """A bento or model tag that cannot name anything in the store (``name:version``, plain names only)."""


def split_tag(tag: str) -> tuple[str, str]:
    """(name, version) of a ``name:version`` tag whose parts are plain names (never a path: issue 13.2)."""
    name, sep, version = tag.partition(":")
    try:
        if not sep:
            raise StoreError(f"tag {tag!r} has no ':version'")
        check_name(name, "tag name")
        check_name(version, "tag version")
    except StoreError as exc:
        raise BadTagError(f"{exc}; expected NAME:VERSION like iris_classifier:abc123") from None
    return name, version


@dataclass(frozen=True)
class State:
    root: Path
    #: The repository whose pyproject.toml may name the store (None: the store is given or is ``root``).
    repo_root: Path | None = None
    given_store: Store | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, repo: Repo) -> State:
        configured = os.environ.get("MODELCTL_STATE_DIR")
        root = Path(configured).resolve() if configured else repo.root / ".modelctl"
        return cls(root, repo.root)

    @cached_property
    def store(self) -> Store:
        """The shared store, resolved on first use (commands that never touch it never import s3fs)."""
        if self.given_store is not None:
            return self.given_store
        if self.repo_root is None:
            return LocalStore(self.root)
        return configured_store(self.repo_root, self.root)

    # --- runner-local ----------------------------------------------------------------------------

    @property
    def bentoml_home(self) -> Path:
        configured = os.environ.get("BENTOML_HOME")
        return Path(configured).resolve() if configured else self.root / "bentoml"

    def deploy_dir(self, model: str, env: str) -> Path:
        return self.root / "deploy" / model / env

    # --- shared ----------------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.store)

    @property
    def retrain_log(self) -> RetrainLog:
        return RetrainLog(self.store)

    @staticmethod
    def gate_key(bento: str) -> str:
        name, version = split_tag(bento)
        return f"gates/{name}/{version}.json"

    @staticmethod
    def fuzz_key(bento: str) -> str:
        name, version = split_tag(bento)
        return f"fuzz/{name}/{version}.json"

    def _result(self, key: str, what: str, fix: str) -> dict[str, Any] | None:
        found = self.store.read_json(key, fix=fix)
        if found is None:
            return None
        summary = found[0]
        if not isinstance(summary, dict):
            raise CorruptStateError(self.store.where(key), f"is not a {what} (expected a JSON object)", fix)
        return summary

    def gate_result(self, bento: str) -> dict[str, Any] | None:
        """The passing load-test summary of ``bento`` (deploy refuses bentos without one), or None."""
        fix = f"run `modelctl loadtest {split_tag(bento)[0]} --bento {bento}` again to replace it"
        return self._result(self.gate_key(bento), "gate result", fix)

    def put_gate_result(self, bento: str, summary: dict[str, Any]) -> None:
        self.store.write_json(self.gate_key(bento), summary)

    def fuzz_result(self, bento: str) -> dict[str, Any] | None:
        """The passing fuzz summary of ``bento`` (deploy refuses bentos without one, beside the gate's), or None."""
        fix = f"run `modelctl fuzz {split_tag(bento)[0]} --bento {bento}` again to replace it"
        return self._result(self.fuzz_key(bento), "fuzz result", fix)

    def put_fuzz_result(self, bento: str, summary: dict[str, Any]) -> None:
        self.store.write_json(self.fuzz_key(bento), summary)

    @staticmethod
    def artifact_key(kind: ArtifactKind, tag: str) -> str:
        """Where the archive of a bento (``kind="bento"``, a ``bentoml export``) or model is kept in the store."""
        name, version = split_tag(tag)
        return f"artifacts/{kind}s/{name}/{version}.{kind}"

    def put_artifact(self, kind: ArtifactKind, tag: str, path: Path) -> Artifact:
        """Store an evaluated/gated archive once under its tag; (key, sha256, size)."""
        return self.store.put_file(self.artifact_key(kind, tag), path)

    def get_artifact(self, kind: ArtifactKind, tag: str, dest: Path, sha256: str | None = None) -> Artifact:
        """Download the archive of ``tag`` to ``dest``, checked against its stored sha256 (and ``sha256``)."""
        return self.store.get_file(self.artifact_key(kind, tag), dest, sha256)
