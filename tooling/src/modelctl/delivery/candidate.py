"""A candidate: a built bento started once on 127.0.0.1, shared by the load-test gate, fuzzing and the deploy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelctl import archive, bentos, bentostore, procs
from modelctl.console import err
from modelctl.errors import UsageError
from modelctl.model import Model
from modelctl.monitor.serving import candidate_env
from modelctl.targets import local


def resolve_bento(model: Model, bento: str | None) -> str:
    """``bento`` or the newest built bento of ``model``, checked before anything starts (or any report folder is
    made); a clear error when there is none."""
    chosen = bento or bentos.latest_bento(model.repo, model.name)
    if chosen is None:
        raise UsageError(f"no bento of {model.name} is built; run `modelctl build {model.name}` (or pass --url)")
    try:
        archive.check_tag(chosen, model.name)
    except archive.ArchiveError as exc:
        raise UsageError(str(exc)) from None
    if not bentostore.bento_exists(model.repo, chosen):
        raise UsageError(f"bento {chosen} is not in the store; `modelctl build {model.name}` builds one")
    return chosen


def check_url(url: str, path: str = "/readyz") -> None:
    """A server someone else runs must be reachable over HTTP before a load test or fuzzing is aimed at it."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url {url!r}: expected an http:// or https:// address")
    try:
        httpx.get(url.rstrip("/") + path, timeout=10)
    except httpx.HTTPError as exc:
        raise UsageError(f"--url {url}: cannot reach {path} ({type(exc).__name__}: {exc})") from exc


@dataclass
class Candidate:
    model: Model
    bento: str
    running: bentos.Running
    handed_over: bool = False

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def pids(self) -> list[int]:
        return [self.running.pid, *self.running.workers]

    def hand_over(self) -> bentos.Running:
        """Keep the server running after the block: it becomes the live deployment."""
        self.handed_over = True
        return self.running


@contextmanager
def started(model: Model, bento: str, log: Path, live_env: str | None = None) -> Iterator[Candidate]:
    """``bento`` served on a free loopback port until the block ends, unless handed over.

    With ``live_env`` it is started on that environment's local port as a detached server that carries the
    deployment's marker, so that the first deploy of a local environment can keep the very process that passed
    the gate (`hand_over`) instead of starting the bento a second time.
    """
    port = model.port(live_env) if live_env else procs.free_port()
    owner = local.deployment_owner(model.repo, model.name, live_env) if live_env else None
    err.print(f"starting {bento} on 127.0.0.1:{port} ...", markup=False)
    # A candidate that may become the live deployment gets the environment's prediction-log settings, with logging
    # off until it does (fuzzing and load-test traffic are no predictions to monitor).
    logging = candidate_env(model.repo, model.name, live_env) if live_env else None
    running = bentos.start(
        model.repo, model.name, bento, port, log, detached=live_env is not None, owner=owner, extra_env=logging
    )
    candidate = Candidate(model, bento, running)
    try:
        yield candidate
    finally:
        if not candidate.handed_over:
            candidate.running.stop()
