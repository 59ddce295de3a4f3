"""The `local` target: the bento runs as a background service on the environment's loopback port.

A deploy over a live version starts the candidate on a spare port and verifies it (ready + the
sample request) before the live version is touched. Then the live process is stopped and the candidate is
started on the environment's port and verified again; if that fails, the previous version is
started again. One live process per environment: its identity (pid, start time, command line), its
workers', port and log are in live.json (the version before the last write is kept as live.json.prev).

The server and its workers carry the deployment's folder in their environment (`procs.OWNER_ENV`), so
`undeploy` stops them even when live.json is damaged or gone, and a port held by another deployment is
named in the error (issue 10).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelctl import bentos, procs
from modelctl.console import err
from modelctl.errors import ModelctlError
from modelctl.monitor.serving import active_file, predlog_env
from modelctl.redact import redact
from modelctl.repo import Repo
from modelctl.state import State


class DeployError(ModelctlError):
    pass


class LiveRecordError(DeployError):
    """live.json cannot be used; the message names the file and the fix."""

    def __init__(self, path: Path, why: str, model: str, env: str) -> None:
        self.path = path
        self.why = why
        super().__init__(
            f"{path} is damaged ({why}); run `modelctl undeploy {model} --env {env}`: it stops what modelctl "
            "started there and sets the record aside"
        )


@dataclass
class Live:
    bento: str
    port: int
    log: str
    started_at: float
    server: procs.Identity
    workers: list[procs.Identity] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def identities(self) -> list[procs.Identity]:
        return [self.server, *self.workers]

    def running(self) -> bool:
        """The recorded server process is still the one modelctl started (not merely some process with its pid)."""
        return self.server.matches()

    def to_json(self) -> dict[str, Any]:
        return {
            "bento": self.bento,
            "port": self.port,
            "log": self.log,
            "started_at": self.started_at,
            "server": self.server.to_json(),
            "workers": [w.to_json() for w in self.workers],
        }

    @classmethod
    def from_json(cls, data: object) -> Live:
        """ValueError saying what is wrong when ``data`` is not a live record."""
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object was expected, not {_json_type(data)}")
        bento = _get(data, "bento", str)
        port = _get(data, "port", int)
        if not 0 < port < 65536:
            raise ValueError(f"'port' {port} is not a TCP port")
        log = _get(data, "log", str)
        started_at = float(_get(data, "started_at", (int, float)))
        workers = _get(data, "workers", list)
        if "server" not in data and "pid" in data:  # written before identities were recorded
            return cls._legacy(bento, port, log, started_at, _get(data, "pid", int), workers)
        server = procs.Identity.from_json(_get(data, "server", dict))
        return cls(bento, port, log, started_at, server, [procs.Identity.from_json(w) for w in workers])

    @classmethod
    def _legacy(cls, bento: str, port: int, log: str, started_at: float, pid: int, workers: list[Any]) -> Live:
        """A pid-only record: a pid counts as the server or a worker only if its command line names the bento
        (and the port, for the server); otherwise it gets an identity that never matches."""
        if not all(isinstance(w, int) and not isinstance(w, bool) for w in workers):
            raise ValueError("'workers' must be a list of pids in a record without process identities")
        server = procs.adopt(pid, ["serve", bento, "--port", str(port)]) or _never(pid)
        found = [procs.adopt(w, [bento]) or _never(w) for w in workers]
        return cls(bento, port, log, started_at, server, found)


def _never(pid: int) -> procs.Identity:
    return procs.Identity(pid, 0.0, ())


_KINDS = {str: "a string", int: "an integer", list: "a list", dict: "an object", float: "a number"}


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise ValueError(f"'{key}' is missing")
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = _KINDS[kind if isinstance(kind, type) else kind[-1]]
        raise ValueError(f"'{key}' must be {expected}, not {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def live_file(repo: Repo, model: str, env: str) -> Path:
    return State.of(repo).deploy_dir(model, env) / "live.json"


def _backup(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def _parse(path: Path) -> Live:
    """The record in ``path``; ValueError with a short reason when it cannot be used (OSError when unreadable)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise ValueError("not JSON: nested too deeply") from exc
    return Live.from_json(data)


def read_live(repo: Repo, model: str, env: str) -> Live | None:
    """What is live in ``env`` (None: nothing recorded); LiveRecordError naming the file when it is damaged."""
    path = live_file(repo, model, env)
    if not path.exists():
        return None
    try:
        return _parse(path)
    except (ValueError, OSError) as exc:
        why = str(exc) if isinstance(exc, ValueError) else f"cannot be read: {exc.strerror or exc}"
        raise LiveRecordError(path, why, model, env) from exc


def write_live(repo: Repo, model: str, env: str, live: Live | None) -> None:
    """Replace the record (None: remove it); the version it replaces is kept as live.json.prev."""
    path = live_file(repo, model, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        _atomic_write(_backup(path), path.read_bytes())
    if live is None:
        path.unlink(missing_ok=True)
        return
    _atomic_write(path, (json.dumps(live.to_json(), indent=2) + "\n").encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def deployment_owner(repo: Repo, model: str, env: str) -> str:
    """The marker (`procs.OWNER_ENV`) that the live server of ``model`` in ``env`` and its workers carry."""
    return str(State.of(repo).deploy_dir(model, env).resolve())


def deployments(repo: Repo) -> list[tuple[str, str]]:
    """(model, env) of every local deployment folder in the state directory."""
    root = State.of(repo).root / "deploy"
    if not root.is_dir():
        return []
    return sorted((env.parent.name, env.name) for env in root.glob("*/*") if env.is_dir())


def recover(repo: Repo, model: str, env: str) -> Live | None:
    """What is live, from the running processes marked for this deployment rather than from live.json."""
    server: procs.Identity | None = None
    workers: list[procs.Identity] = []
    for proc in procs.owned_by(deployment_owner(repo, model, env)):
        identity = procs.Identity.of(proc.pid)
        if identity is None:
            continue
        if server is None and _serve_args(identity.cmdline) is not None:
            server = identity
        else:
            workers.append(identity)
    if server is None:
        return None
    bento, port = _serve_args(server.cmdline) or ("?", 0)
    return Live(bento, port, "", server.create_time, server, workers)


def _serve_args(cmdline: tuple[str, ...]) -> tuple[str, int] | None:
    """(bento, port) of a `bentoml serve BENTO ... --port PORT` command line."""
    args = list(cmdline)
    if "serve" not in args or "--port" not in args:
        return None
    try:
        return args[args.index("serve") + 1], int(args[args.index("--port") + 1])
    except (IndexError, ValueError):
        return None


@contextmanager
def deploy_lock(repo: Repo, model: str, env: str, wait_s: float | None = None) -> Iterator[None]:
    """One deploy per model and environment at a time on this machine; a second one waits, then fails clearly."""
    from filelock import FileLock, Timeout  # imported here: the pre-commit hook environment lacks it

    if wait_s is None:
        wait_s = float(os.environ.get("MODELCTL_DEPLOY_LOCK_WAIT", "600"))
    directory = State.of(repo).deploy_dir(model, env)
    directory.mkdir(parents=True, exist_ok=True)
    lock = FileLock(directory / ".deploy.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        err.print(f"waiting for another deploy of {model} to {env} to finish ...", markup=False)
        try:
            lock.acquire(timeout=wait_s)
        except Timeout:
            raise DeployError(
                f"another deploy of {model} to {env} is still running after {wait_s:.0f}s; try again later"
            ) from None
    try:
        yield
    finally:
        lock.release()


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


def _start_verified(
    repo: Repo, model: str, env: str, bento: str, port: int, log: Path, sample: dict[str, Any], live: bool
) -> bentos.Running:
    """A verified server: ``live`` ones outlive modelctl and carry the deployment's marker; candidates do neither."""
    owner = deployment_owner(repo, model, env) if live else None
    # A live deployment writes its prediction log (issue 22) to the state store; a candidate under test does not.
    logging = predlog_env(repo, env) if live else None
    running = bentos.start(repo, model, bento, port, log, detached=live, owner=owner, extra_env=logging)
    try:
        verify(running.url, sample)
    except BaseException:
        running.stop()
        raise
    return running


def _live(running: bentos.Running, log: Path) -> Live:
    return Live(running.bento, running.port, str(log), time.time(), running.server.identity, running.server.workers)


def adopt(repo: Repo, model: str, env: str, running: bentos.Running, sample: dict[str, Any]) -> Live:
    """Make a server that is already running on the environment's port the live deployment, without starting the
    bento again (the first deploy of an environment keeps the candidate that passed the gate). It must have been
    started detached with this deployment's marker; anything else is stopped and refused."""
    previous = read_live(repo, model, env)
    if previous is not None or running.owner != deployment_owner(repo, model, env):
        running.stop()
        raise DeployError(f"cannot hand {running.bento} over as the live {env} deployment of {model}: start it again")
    try:
        verify(running.url, sample)
    except BaseException:
        running.stop()
        raise
    live = _live(running, running.log)
    write_live(repo, model, env, live)
    active_file(repo, model, env).touch()  # its prediction log starts now (monitor.serving.candidate_env)
    return live


def deploy(repo: Repo, model: str, env: str, bento: str, port: int, sample: dict[str, Any]) -> Live:
    """Make ``bento`` live on ``port``; the previous version keeps (or gets back) the port on any failure."""
    directory = State.of(repo).deploy_dir(model, env)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    previous = read_live(repo, model, env)  # damaged: LiveRecordError before anything is touched
    if not _port_is_ours(repo, model, env, port, previous):
        raise DeployError(port_held_message(repo, model, env, port))
    if previous is not None:
        # Something is live: prove the candidate on a spare port before touching it. (With nothing
        # live there is nothing to protect, and the verification on the real port below suffices.)
        candidate_log = directory / f"candidate-{stamp}.log"
        err.print(f"  candidate {bento} on a spare port ...", markup=False)
        candidate = _start_verified(repo, model, env, bento, procs.free_port(), candidate_log, sample, live=False)
        candidate.stop()
        err.print(f"  stopping live {previous.bento} (pid {previous.pid})", markup=False)
    # The marker also finds what a lost record left running (its workers would hold the port).
    stopped = procs.stop_tree(previous.identities if previous else [], owner=deployment_owner(repo, model, env))
    if previous is None and stopped:
        err.print(f"  stopped {len(stopped)} process(es) an earlier deployment to {env} left running", markup=False)
    if procs.port_in_use(port):
        message = port_held_message(repo, model, env, port)
        _restore(repo, model, env, previous, sample)
        raise DeployError(message)
    log = directory / f"server-{stamp}.log"
    try:
        err.print(f"  starting {bento} on port {port}", markup=False)
        running = _start_verified(repo, model, env, bento, port, log, sample, live=True)
    except ModelctlError as exc:
        restored = _restore(repo, model, env, previous, sample)
        note = f"; the previous version {previous.bento} is live again" if restored and previous else ""
        raise DeployError(f"switch to {bento} failed: {exc}{note}") from exc
    live = _live(running, log)
    write_live(repo, model, env, live)
    return live


def _restore(repo: Repo, model: str, env: str, previous: Live | None, sample: dict[str, Any]) -> bool:
    if previous is None:
        write_live(repo, model, env, None)
        return False
    err.print(f"  restoring {previous.bento} on port {previous.port}", markup=False)
    log = Path(previous.log)
    try:
        running = _start_verified(repo, model, env, previous.bento, previous.port, log, sample, live=True)
    except ModelctlError as exc:
        err.print(redact(f"  could not restore {previous.bento}: {exc}"), markup=False)  # a server log tail
        write_live(repo, model, env, None)
        return False
    write_live(repo, model, env, _live(running, log))
    return True


def _port_is_ours(repo: Repo, model: str, env: str, port: int, previous: Live | None) -> bool:
    """The port is free, or held by this deployment's own processes (replaced by the deploy)."""
    if not procs.port_in_use(port):
        return True
    holders = procs.listeners(port)
    if not holders:  # not visible to this user: trust the record
        return previous is not None and previous.port == port and previous.running()
    ours = {i.pid for i in previous.identities if i.matches()} if previous else set()
    owner = deployment_owner(repo, model, env)
    return all(pid in ours or procs.owner_of(pid) == owner for pid in holders)


def port_held_message(repo: Repo, model: str, env: str, port: int) -> str:
    """Who holds ``port`` and how to free it: another deployment (by its record or its processes' marker), a
    server of another modelctl command, or a process modelctl did not start."""
    config = (repo.model_dir(model) / "config.yaml").relative_to(repo.root)
    change = f"change serving.ports.{env} in {config}"
    holders = procs.listeners(port)
    markers = {pid: procs.owner_of(pid) for pid in holders}
    for other_model, other_env in deployments(repo):
        if (other_model, other_env) == (model, env):
            continue
        try:
            record = read_live(repo, other_model, other_env)
        except LiveRecordError:
            record = None
        by_record = record is not None and record.port == port and record.running()
        if by_record or deployment_owner(repo, other_model, other_env) in markers.values():
            what = f" ({record.bento})" if by_record and record is not None else ""
            return (
                f"port {port} ({env}) is held by {other_model}'s {other_env} deployment{what}; free it with "
                f"`modelctl undeploy {other_model} --env {other_env}` or {change}"
            )
    for pid, marker in markers.items():
        identity = procs.Identity.of(pid)
        command = procs.describe(identity.cmdline) if identity else "?"
        if marker is not None:
            return (
                f"port {port} ({env}) is held by a server another modelctl command started (pid {pid}: `{command}`); "
                f"it stops when that command ends, or {change}"
            )
        return (
            f"port {port} ({env}) is in use by a process modelctl did not start (pid {pid}: `{command}`); "
            f"stop it or {change}"
        )
    return f"port {port} ({env}) is in use by a process modelctl did not start; free it or {change}"


def undeploy(repo: Repo, model: str, env: str) -> Live | None:
    """Stop what modelctl started for ``model`` in ``env`` and clear the record; what was live (None: nothing).

    The recorded processes are stopped only while their identity matches; the deployment's marker also finds
    its processes when live.json is damaged or missing (a damaged record is kept as live.json.damaged)."""
    path = live_file(repo, model, env)
    try:
        live = read_live(repo, model, env)
        damaged = False
    except LiveRecordError as exc:
        err.print(f"  {path} is damaged ({exc.why}): stopping what modelctl started for {model} in {env}", markup=False)
        live, damaged = None, True
    recorded = live.identities if live else _backup_identities(path)
    found = live or recover(repo, model, env)
    procs.stop_tree(recorded, owner=deployment_owner(repo, model, env))
    if damaged:
        path.replace(path.with_name(path.name + ".damaged"))
    elif live is not None:
        write_live(repo, model, env, None)
    return found


def _backup_identities(path: Path) -> list[procs.Identity]:
    """The processes of the previous record, when it is readable (those that no longer match are not signalled)."""
    try:
        return _parse(_backup(path)).identities
    except (ValueError, OSError):
        return []
