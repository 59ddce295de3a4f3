"""The release ledger: every deploy attempt per model and environment, append-only.

One JSON file per model under ``<state>/ledger/``. Every write takes an exclusive lock,
re-reads the file, appends, writes a temp file, fsyncs and renames it over the old one:
a crash leaves either the old or the new file (never a torn one) and two concurrent
deploys cannot lose each other's records.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelctl.errors import ModelctlError

OUTCOMES = ("deployed", "failed", "rolled_back", "undeployed", "rendered")


class LedgerError(ModelctlError):
    pass


@dataclass
class Record:
    model: str
    env: str
    target: str
    outcome: str
    bento: str | None = None
    model_tag: str | None = None
    git_commit: str | None = None
    version: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    loadtest: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    sha256: str | None = None
    reason: str | None = None
    triggered_by: str = ""
    at: str = ""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def triggered_by() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        env = os.environ
        repository = f"{env.get('GITHUB_SERVER_URL', '')}/{env.get('GITHUB_REPOSITORY', '')}"
        run = f"{repository}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        return f"github-actions {env.get('GITHUB_WORKFLOW', '')} {run}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def locked(directory: Path, name: str) -> Iterator[None]:
    """An exclusive lock on ``name`` in ``directory`` (held across read-modify-write)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def atomic_write_json(target: Path, payload: object) -> None:
    """Write ``payload`` to a temp file, fsync it and rename it over ``target``: never a torn file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(payload, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RetrainLog:
    """Every retraining run per model (scores, decision, versions), next to the release ledger."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, model: str) -> Path:
        return self.directory / f"{model}.retrain.json"

    def records(self, model: str) -> list[dict[str, Any]]:
        path = self.path(model)
        if not path.exists():
            return []
        try:
            return list(json.loads(path.read_text(encoding="utf-8"))["runs"])
        except (OSError, ValueError, KeyError) as exc:
            raise LedgerError(f"{path} is unreadable ({exc}); restore it from backup") from exc

    def append(self, model: str, run: dict[str, Any]) -> dict[str, Any]:
        with locked(self.directory, f"{model}.retrain"):
            runs = self.records(model)
            run = {"at": now(), "triggered_by": triggered_by(), **run}
            runs.append(run)
            atomic_write_json(self.path(model), {"model": model, "runs": runs})
        return run


class Ledger:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, model: str) -> Path:
        return self.directory / f"{model}.json"

    def records(self, model: str) -> list[Record]:
        path = self.path(model)
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise LedgerError(f"{path} is unreadable ({exc}); restore it from backup before deploying") from exc
        return [Record(**item) for item in data.get("records", [])]

    def _locked(self, model: str) -> AbstractContextManager[None]:
        return locked(self.directory, model)

    def append(self, record: Record) -> Record:
        with self._locked(record.model):
            records = self.records(record.model)
            if record.outcome == "deployed":
                record.version = 1 + max((r.version for r in records if r.outcome == "deployed"), default=0)
            record.at = record.at or now()
            record.triggered_by = record.triggered_by or triggered_by()
            records.append(record)
            self._write(record.model, records)
        return record

    def _write(self, model: str, records: list[Record]) -> None:
        atomic_write_json(self.path(model), {"model": model, "records": [asdict(r) for r in records]})

    def live(self, model: str, env: str) -> Record | None:
        """The record of what is live in ``env``: the last deploy, rollback or undeploy there."""
        for record in reversed(self.records(model)):
            if record.env == env and record.outcome in ("deployed", "rolled_back", "undeployed"):
                return None if record.outcome == "undeployed" else record
        return None

    def previous_good(self, model: str, env: str, before: Record | None) -> Record | None:
        """The last successful deploy in ``env`` of a different bento than ``before``."""
        current = before.bento if before else None
        for record in reversed(self.records(model)):
            if record.env == env and record.outcome in ("deployed", "rolled_back") and record.bento != current:
                return record
        return None

    def find_version(self, model: str, env: str, version: int) -> Record | None:
        for record in self.records(model):
            if record.env == env and record.outcome == "deployed" and record.version == version:
                return record
        return None
