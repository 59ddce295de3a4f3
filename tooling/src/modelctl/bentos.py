"""Serve a built bento from a model's environment on 127.0.0.1."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from modelctl import procs
from modelctl.console import err
from modelctl.envs import model_python
from modelctl.errors import UsageError
from modelctl.repo import Repo
from modelctl.state import State


@dataclass
class Running:
    bento: str
    port: int
    pid: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    workers: list[int] = field(default_factory=list)

    def stop(self) -> None:
        procs.stop(self.pid, workers=self.workers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve_command(python: Path, bento: str, port: int) -> list[str]:
    return [str(python), "-m", "bentoml", "serve", bento, "--host", "127.0.0.1", "--port", str(port)]


def start(repo: Repo, model: str, bento: str, port: int, log: Path, ready_timeout: float = 90.0) -> Running:
    """Start ``bento`` detached on ``port`` and wait until /readyz answers (ServerError otherwise, server stopped)."""
    python = model_python(repo, model)
    proc = procs.start_detached(serve_command(python, bento, port), cwd=repo.root, log=log, env=State.of(repo).env())
    running = Running(bento, port, proc.pid, log, proc)
    try:
        procs.wait_ready(running.url, proc.pid, log, timeout=ready_timeout)
    except BaseException:
        procs.stop(proc.pid, workers=procs.descendants(proc.pid))
        raise
    running.workers = procs.descendants(proc.pid)
    return running


def start_or_use(repo: Repo, model: str, url: str | None, bento: str | None, log: Path) -> Running | None:
    """None when ``url`` is given (a server someone else runs); else ``bento`` (default: the newest built)
    started on a free loopback port. The caller stops what this returns."""
    if url is not None:
        return None
    bento = bento or latest_bento(repo, model)
    if bento is None:
        raise UsageError(f"no bento of {model} is built; run `modelctl build {model}` (or pass --url)")
    err.print(f"starting {bento} on a free loopback port ...", markup=False)
    return start(repo, model, bento, procs.free_port(), log)


def latest_bento(repo: Repo, model: str) -> str | None:
    """The newest bento of ``model`` in the store (None when there is none)."""
    home = State.of(repo).bentoml_home / "bentos" / model
    if not home.is_dir():
        return None
    versions = [p for p in home.iterdir() if p.is_dir() and (p / "bento.yaml").exists()]
    if not versions:
        return None
    newest = max(versions, key=lambda p: (p / "bento.yaml").stat().st_mtime)
    return f"{model}:{newest.name}"
