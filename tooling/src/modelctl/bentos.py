"""Serve a built bento from a model's environment on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from modelctl import procs
from modelctl.console import err
from modelctl.envs import model_python
from modelctl.errors import UsageError
from modelctl.processenv import model_process_env
from modelctl.repo import Repo
from modelctl.state import State


@dataclass
class Running:
    """A bento served by `start`; `stop()` (or leaving ``with``) stops the server and its workers."""

    bento: str
    port: int
    log: Path
    server: procs.Server

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.server.process

    @property
    def workers(self) -> list[int]:
        """The worker pids recorded once the server was ready."""
        return [w.pid for w in self.server.workers]

    @property
    def identities(self) -> list[procs.Identity]:
        """The server, then its workers: what to record to stop them later (`procs.stop_tree`)."""
        return self.server.identities

    @property
    def owner(self) -> str:
        return self.server.owner

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def serve_command(python: Path, bento: str, port: int) -> list[str]:
    return [str(python), "-m", "bentoml", "serve", bento, "--host", "127.0.0.1", "--port", str(port)]


def start(
    repo: Repo,
    model: str,
    bento: str,
    port: int,
    log: Path,
    ready_timeout: float = 90.0,
    *,
    detached: bool = False,
    owner: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Running:
    """Start ``bento`` on ``port`` and wait until /readyz answers (ServerError otherwise, server stopped).

    A ``detached`` server outlives modelctl (a deployment); any other stops with it, even when modelctl
    is killed. ``owner`` marks the server and its workers (`procs.OWNER_ENV`) so they can be found later.
    ``extra_env``: variables the platform adds for this server (a deployment's prediction-log settings), never a
    credential.
    """
    python = model_python(repo, model)
    # No deploy secrets reach a model; bytecode is cached in its environment.
    env = model_process_env({**(extra_env or {}), "BENTOML_HOME": str(State.of(repo).bentoml_home)}, python=python)
    server = procs.start(serve_command(python, bento, port), repo.root, log, env, owner=owner, detached=detached)
    try:
        procs.wait_ready(f"http://127.0.0.1:{port}", server.pid, log, timeout=ready_timeout)
        server.record_workers()
    except BaseException:
        server.stop()
        raise
    return Running(bento, port, log, server)


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


# The service a model's service.py defines: `Name = build_service(...)` (the template), or a hand-written
# `@bentoml.service` class.
_SERVICE_CLASS = re.compile(
    r"^(\w+)\s*=\s*build_service\(|^@bentoml\.service\b.*?^class\s+(\w+)", re.MULTILINE | re.DOTALL
)


def folder_target(repo: Repo, model: str) -> str:
    """`bentoml serve`'s name for the service in the model folder: ``service:<Class>``."""
    path = repo.model_dir(model) / "service.py"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"{model} has no bento and {path} cannot be read ({exc}); run `modelctl build {model}`"
        ) from exc
    found = _SERVICE_CLASS.search(text)
    if found is None:
        raise UsageError(
            f"no service in {path} (`Name = build_service(...)` or an @bentoml.service class); "
            f"run `modelctl build {model}` or pass --bento"
        )
    return f"service:{found.group(1) or found.group(2)}"


def serve_foreground(repo: Repo, model: str, bento: str | None, port: int) -> int:
    """Serve ``bento`` (default: the newest built, else the model folder) on ``port`` until it exits or modelctl
    is stopped; the server's exit code. Call inside `procs.supervised()`: a signal then stops the server and
    its workers before modelctl exits (issue 15.7)."""
    python = model_python(repo, model)
    target = bento or latest_bento(repo, model)
    if target is None:
        target = folder_target(repo, model)
        err.print(f"no bento built; serving the model folder ({target})", markup=False)
    err.print(f"serving {target} on http://127.0.0.1:{port} (Ctrl-C to stop)", markup=False)
    # The model's code gets the allow-listed environment, as in every other command: no credential modelctl
    # holds reaches the server or its workers.
    env = model_process_env({"BENTOML_HOME": str(State.of(repo).bentoml_home)}, python=python)
    server = procs.start(serve_command(python, target, port), repo.model_dir(model), None, env)
    try:
        return server.wait()
    finally:
        server.stop()
