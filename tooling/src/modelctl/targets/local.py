"""The `local` target: the bento runs as a background service on the environment's loopback port.

A deploy over a live version starts the candidate on a spare port and verifies it (ready + the
sample request) before the live version is touched. Then the live process is stopped and the candidate is
started on the environment's port and verified again; if that fails, the previous version is
started again. One live process per environment: its pid, port and log are in live.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelctl import bentos, procs
from modelctl.console import err
from modelctl.errors import ModelctlError
from modelctl.repo import Repo
from modelctl.state import State


class DeployError(ModelctlError):
    pass


@dataclass
class Live:
    bento: str
    port: int
    pid: int
    log: str
    started_at: float
    workers: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def live_file(repo: Repo, model: str, env: str) -> Path:
    return State.of(repo).deploy_dir(model, env) / "live.json"


def read_live(repo: Repo, model: str, env: str) -> Live | None:
    path = live_file(repo, model, env)
    if not path.exists():
        return None
    return Live(**json.loads(path.read_text()))


def write_live(repo: Repo, model: str, env: str, live: Live | None) -> None:
    path = live_file(repo, model, env)
    if live is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(live), indent=2))
    tmp.replace(path)


@contextmanager
def deploy_lock(repo: Repo, model: str, env: str, wait_s: float | None = None) -> Iterator[None]:
    """One deploy per model and environment at a time; a second one waits, then fails clearly."""
    if wait_s is None:
        wait_s = float(os.environ.get("MODELCTL_DEPLOY_LOCK_WAIT", "600"))
    directory = State.of(repo).deploy_dir(model, env)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".deploy.lock", "w") as lock:
        deadline = time.monotonic() + wait_s
        announced = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeployError(
                        f"another deploy of {model} to {env} is still running after {wait_s:.0f}s; try again later"
                    ) from None
                if not announced:
                    err.print(f"waiting for another deploy of {model} to {env} to finish ...", markup=False)
                    announced = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def verify(url: str, sample: dict[str, Any]) -> None:
    """The sample request must get a 200 JSON list with one prediction per row."""
    import httpx  # deferred: most commands never talk HTTP

    try:
        response = httpx.post(f"{url}/predict", json=sample, timeout=30)
    except httpx.HTTPError as exc:
        raise DeployError(f"sample request to {url}/predict failed: {exc}") from exc
    if response.status_code != 200:
        raise DeployError(f"sample request to {url}/predict answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    if not isinstance(body, list) or len(body) != len(sample.get("instances", [])):
        raise DeployError(f"sample request to {url}/predict returned an unexpected body: {str(body)[:300]}")


def _start_verified(repo: Repo, model: str, bento: str, port: int, log: Path, sample: dict[str, Any]) -> bentos.Running:
    running = bentos.start(repo, model, bento, port, log)
    try:
        verify(running.url, sample)
    except BaseException:
        running.stop()
        raise
    return running


def deploy(repo: Repo, model: str, env: str, bento: str, port: int, sample: dict[str, Any]) -> Live:
    """Make ``bento`` live on ``port``; the previous version keeps (or gets back) the port on any failure."""
    directory = State.of(repo).deploy_dir(model, env)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    previous = read_live(repo, model, env)
    if previous is not None:
        # Something is live: prove the candidate on a spare port before touching it. (With nothing
        # live there is nothing to protect, and the verification on the real port below suffices.)
        candidate_log = directory / f"candidate-{stamp}.log"
        err.print(f"  candidate {bento} on a spare port ...", markup=False)
        candidate = _start_verified(repo, model, bento, procs.free_port(), candidate_log, sample)
        candidate.stop()

    if previous is not None:
        err.print(f"  stopping live {previous.bento} (pid {previous.pid})", markup=False)
        procs.stop(previous.pid, workers=previous.workers)
    if procs.port_in_use(port):
        _restore(repo, model, env, previous, sample)
        raise DeployError(
            f"port {port} ({env}) is in use by a process modelctl did not start; free it or change serving.ports.{env}"
        )
    log = directory / f"server-{stamp}.log"
    try:
        err.print(f"  starting {bento} on port {port}", markup=False)
        running = _start_verified(repo, model, bento, port, log, sample)
    except ModelctlError as exc:
        restored = _restore(repo, model, env, previous, sample)
        note = f"; the previous version {previous.bento} is live again" if restored and previous else ""
        raise DeployError(f"switch to {bento} failed: {exc}{note}") from exc
    live = Live(bento=bento, port=port, pid=running.pid, log=str(log), started_at=time.time(), workers=running.workers)
    write_live(repo, model, env, live)
    return live


def _restore(repo: Repo, model: str, env: str, previous: Live | None, sample: dict[str, Any]) -> bool:
    if previous is None:
        write_live(repo, model, env, None)
        return False
    err.print(f"  restoring {previous.bento} on port {previous.port}", markup=False)
    log = Path(previous.log)
    try:
        running = _start_verified(repo, model, previous.bento, previous.port, log, sample)
    except ModelctlError as exc:
        err.print(f"  could not restore {previous.bento}: {exc}", markup=False)
        write_live(repo, model, env, None)
        return False
    write_live(
        repo, model, env, Live(previous.bento, previous.port, running.pid, str(log), time.time(), running.workers)
    )
    return True


def undeploy(repo: Repo, model: str, env: str) -> Live | None:
    live = read_live(repo, model, env)
    if live is not None:
        procs.stop(live.pid, workers=live.workers)
        write_live(repo, model, env, None)
    return live
