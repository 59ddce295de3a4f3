"""Start, probe and stop servers on 127.0.0.1; every failure says what to look at.

A pid alone does not say which process it is: after a crash or a reboot it may belong to anything.
So every process modelctl records is an `Identity` (pid, start time, command line), and nothing is
ever signalled unless its identity still matches, or it is found right now below (or marked by) a
process whose identity matched (issue 15.6).

BentoML's workers call setsid, so they leave the server's process group and outlive a server that
is killed; a server started here carries a marker in its environment (`OWNER_ENV`) that its workers
inherit, so `stop_tree` finds them even when the server is gone or its record is lost (issue 15.7/15.8).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from modelctl.console import err
from modelctl.errors import ModelctlError

# The environment variable that marks a server and everything it starts (workers inherit it).
OWNER_ENV = "MODELCTL_OWNER"
# /proc/stat's boot time is whole seconds and follows clock adjustments, so two readings of one
# process's start time can differ by a second; a reused pid starts later than that.
START_TIME_SLACK_S = 1.0
STOP_TIMEOUT_S = 20.0
KILL_WAIT_S = 10.0


class ServerError(ModelctlError):
    pass


# --- identities ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """What tells one process from a later one with the same pid."""

    pid: int
    create_time: float
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> Identity | None:
        """The identity of the running process ``pid`` (None when there is none, it is a zombie or not ours to read)."""
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    _reap(pid)
                    return None
                return cls(pid, proc.create_time(), tuple(proc.cmdline()))
        except psutil.Error:
            return None

    def process(self) -> psutil.Process | None:
        """The running process this identifies; None when it is gone or its pid now belongs to another process."""
        return _verify(self)[0]

    def matches(self) -> bool:
        return self.process() is not None

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "create_time": self.create_time, "cmdline": list(self.cmdline)}

    @classmethod
    def from_json(cls, data: object) -> Identity:
        """ValueError saying what is wrong when ``data`` is not what `to_json` writes."""
        if not isinstance(data, dict):
            raise ValueError(f"a process identity must be an object, not {type(data).__name__}")
        pid, create_time, cmdline = data.get("pid"), data.get("create_time"), data.get("cmdline")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"'pid' must be a positive integer, not {pid!r}")
        if not isinstance(create_time, int | float) or isinstance(create_time, bool):
            raise ValueError(f"'create_time' of pid {pid} must be a number, not {create_time!r}")
        if not isinstance(cmdline, list) or not all(isinstance(a, str) for a in cmdline):
            raise ValueError(f"'cmdline' of pid {pid} must be a list of strings")
        return cls(pid, float(create_time), tuple(cmdline))


def adopt(pid: int, expected: Sequence[str]) -> Identity | None:
    """The identity of ``pid`` if its command line contains every string of ``expected``.

    For records written before identities were kept (pid only): a bento tag plus a port is specific
    enough that no unrelated process carries them."""
    identity = Identity.of(pid)
    if identity is None or not all(word in identity.cmdline for word in expected):
        return None
    return identity


def _verify(identity: Identity) -> tuple[psutil.Process | None, str | None]:
    """(the process, None) when ``identity`` matches; (None, why) when its pid now runs something else; (None, None)
    when it is simply gone."""
    try:
        proc = psutil.Process(identity.pid)
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                _reap(identity.pid)
                return None, None
            started, cmdline = proc.create_time(), tuple(proc.cmdline())
    except psutil.NoSuchProcess:
        return None, None
    except psutil.AccessDenied:
        return None, "another user's process"
    if cmdline != identity.cmdline:
        return None, f"now runs `{describe(cmdline)}`"
    if abs(started - identity.create_time) > START_TIME_SLACK_S:
        return None, f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}, after the one recorded"
    return proc, None


def describe(cmdline: Sequence[str], limit: int = 80) -> str:
    """A command line shortened for a one-line message."""
    text = " ".join(cmdline) or "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Every process `start` made, by pid: a finished one is reaped through its Popen, which keeps the exit code.
_popens: weakref.WeakValueDictionary[int, subprocess.Popen[bytes]] = weakref.WeakValueDictionary()


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is a finished child of this process (else it stays a zombie)."""
    popen = _popens.get(pid)
    if popen is not None:
        popen.poll()
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _running(proc: psutil.Process) -> bool:
    try:
        if not proc.is_running():
            return False
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return False
        return True
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def alive(pid: int | None) -> bool:
    """A process ``pid`` exists and is not a zombie (prefer `Identity.matches`: a pid may have been reused)."""
    if not pid:
        return False
    try:
        return _running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (workers included: setsid changes the session, not the parent)."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True) if _running(child)]
    except psutil.Error:
        return []


def owned_by(owner: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``OWNER_ENV=owner`` (a server started with that owner, its workers)."""
    mine = _self_and_ancestors()
    found = []
    for proc in psutil.process_iter():
        if proc.pid in mine:
            continue
        try:
            if proc.environ().get(OWNER_ENV) == owner and _running(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def owner_of(pid: int) -> str | None:
    """The ``OWNER_ENV`` marker of ``pid`` (None: not a process modelctl started, or not readable)."""
    try:
        return psutil.Process(pid).environ().get(OWNER_ENV)
    except psutil.Error:
        return None


def listeners(port: int) -> list[int]:
    """Pids listening on TCP ``port`` on this machine (only processes this user may inspect are named)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return []
    return sorted(
        {
            c.pid
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid is not None
        }
    )


def _self_and_ancestors() -> set[int]:
    pids = {os.getpid()}
    try:
        pids.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    return pids


# --- starting --------------------------------------------------------------------------------------------------

# Run before exec'ing a server that must not outlive modelctl: the kernel sends it SIGTERM when its parent
# dies, even by SIGKILL, where no handler of ours runs (Linux only; elsewhere the server starts directly).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)  # the parent is already gone\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


@dataclass
class Server:
    """A process started by `start`: stop it with `stop()` (it and everything it started)."""

    process: subprocess.Popen[bytes]
    identity: Identity
    owner: str
    detached: bool
    log: Path | None = None
    workers: list[Identity] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def record_workers(self) -> list[Identity]:
        """Record the processes below the server now (call once it is ready: BentoML starts workers late)."""
        self.workers = [i for i in map(Identity.of, descendants(self.pid)) if i is not None]
        return self.workers

    @property
    def identities(self) -> list[Identity]:
        return [self.identity, *self.workers]

    def wait(self) -> int:
        return self.process.wait()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        stop_tree(self.identities, owner=self.owner, timeout=timeout)
        _started.pop(self.pid, None)
        self.process.poll()  # reap it


# Servers started by this process that must not outlive it, by pid (see `supervised`).
_started: dict[int, Server] = {}


def start(
    cmd: Sequence[str],
    cwd: Path,
    log: Path | None,
    env: Mapping[str, str] | None = None,
    *,
    owner: str | None = None,
    detached: bool = False,
) -> Server:
    """Start ``cmd`` in its own session, output appended to ``log`` (None: this process's stdout/stderr).

    ``owner`` marks it and everything it starts (default: a fresh unique marker). A ``detached`` server
    outlives modelctl (a local deployment); any other dies with modelctl, even when modelctl is killed.
    """
    owner = owner or f"modelctl-{uuid.uuid4().hex}"
    environment = {**(os.environ if env is None else env), OWNER_ENV: owner}
    argv = list(cmd)
    launcher = [] if detached or not _can_die_with_parent() else [sys.executable, "-S", "-E", "-c", _DIE_WITH_PARENT]
    if launcher:
        launcher.append(str(os.getpid()))
    handle = None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        handle = log.open("ab")
    try:
        process = subprocess.Popen(
            [*launcher, *argv],
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT if handle else None,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=environment,
        )
    finally:
        if handle is not None:
            handle.close()
    _popens[process.pid] = process
    identity = _identity_after_exec(process, argv)
    server = Server(process, identity or Identity(process.pid, 0.0, tuple(argv)), owner, detached, log)
    if not detached:
        _started[process.pid] = server
    return server


def _can_die_with_parent() -> bool:
    # The kernel watches the thread that started the child: from any other thread the server would stop
    # when that thread ends.
    return (
        sys.platform.startswith("linux")
        and bool(sys.executable)
        and threading.current_thread() is threading.main_thread()
    )


def _identity_after_exec(process: subprocess.Popen[bytes], argv: list[str], timeout: float = 30.0) -> Identity | None:
    """The identity once ``argv`` runs: Popen may return while the kernel is still setting up the new command
    line (it reads empty, or the parent's), and the launcher execs later still. The start time never changes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        identity = Identity.of(process.pid)
        if identity is not None and list(identity.cmdline) == argv:
            return identity
        time.sleep(0.01)
    return Identity.of(process.pid)


# --- stopping --------------------------------------------------------------------------------------------------


def stop_tree(
    identities: Iterable[Identity], *, owner: str | None = None, timeout: float = STOP_TIMEOUT_S
) -> list[Identity]:
    """Stop what modelctl started and return what was signalled.

    That is: each recorded process whose identity still matches, every process below those, and every
    process marked with ``owner``. A recorded pid that now belongs to another process is never signalled
    (one line says so). SIGTERM first; SIGKILL for whatever is left after ``timeout`` (at once after a
    second Ctrl-C), then once more for anything started meanwhile (a worker respawned while stopping).
    """
    recorded = list(identities)
    signalled: dict[int, tuple[psutil.Process, Identity | None]] = {}
    for round_, (sig, wait_s) in enumerate(((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_WAIT_S))):
        found = _collect(recorded, owner, known=[p for p, _ in signalled.values()], report=round_ == 0)
        if not found:
            break
        for proc in found:
            signalled.setdefault(proc.pid, (proc, _describe(proc)))
            _signal(proc, sig)
        _wait_gone(found, wait_s, hurry=sig == signal.SIGTERM)
    for pid in signalled:
        _started.pop(pid, None)
    return [identity for _, identity in signalled.values() if identity is not None]


def _describe(proc: psutil.Process) -> Identity | None:
    try:
        with proc.oneshot():
            return Identity(proc.pid, proc.create_time(), tuple(proc.cmdline()))
    except psutil.Error:
        return None


def _collect(
    recorded: list[Identity], owner: str | None, known: Iterable[psutil.Process], report: bool
) -> list[psutil.Process]:
    mine = _self_and_ancestors()
    found: dict[int, psutil.Process] = {}
    for identity in recorded:
        proc, foreign = _verify(identity)
        if foreign and report:
            err.print(
                f"pid {identity.pid} is no longer the process modelctl started ({foreign}): not signalled", markup=False
            )
        if proc is not None:
            found[proc.pid] = proc
    for proc in [*known, *(owned_by(owner) if owner else [])]:
        if _running(proc):
            found.setdefault(proc.pid, proc)
    for proc in list(found.values()):
        try:
            children = proc.children(recursive=True)
        except psutil.Error:
            continue
        for child in children:
            found.setdefault(child.pid, child)
    return [p for pid, p in found.items() if pid not in mine and _running(p)]


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)  # psutil refuses when the pid was reused since `proc` was made
    except psutil.Error:
        pass


def _wait_gone(procs: list[psutil.Process], timeout: float, hurry: bool) -> None:
    """Until ``procs`` are gone or ``timeout`` passed (or, with ``hurry``, a second signal asked not to wait)."""
    deadline = time.monotonic() + timeout
    while any(_running(p) for p in procs) and time.monotonic() < deadline and not (hurry and _signals.hurry):
        time.sleep(0.05)


# --- signals -----------------------------------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGINT arrived: the command unwinds as for Ctrl-C (``finally:`` blocks run)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM
        super().__init__(signal.Signals(signum).name)


@dataclass
class _SignalState:
    unwinding: bool = False  # a signal was turned into Interrupted, or servers are being stopped
    hurry: bool = False  # another signal came while unwinding: SIGKILL instead of waiting
    pending: int | None = None  # a signal that came while stopping servers after a normal exit


_signals = _SignalState()
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - signal handler signature
    if _signals.unwinding:
        _signals.hurry = True
        _signals.pending = _signals.pending or signum
        err.print("stopping the servers this command started ...", markup=False)
        return
    _signals.unwinding = True
    raise Interrupted(signum)


@contextmanager
def supervised(signals: Sequence[int] = FORWARDED) -> Iterator[None]:
    """Run a command that starts servers so that none outlives it.

    Inside, SIGTERM, SIGHUP and SIGINT raise `Interrupted` (a KeyboardInterrupt) once, so the command unwinds
    and its ``finally:`` blocks stop what they started; a second signal while unwinding does not break that
    cleanup, it only makes it SIGKILL at once. On the way out, whatever happened, every server started inside
    with `start` (not ``detached``) that is still running is stopped. Handlers are installed from the main
    thread only; nested use is fine.
    """
    before = set(_started)
    saved = (_signals.unwinding, _signals.hurry, _signals.pending)
    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in signals:
            installed[sig] = signal.signal(sig, _on_signal)
    pending = None
    try:
        yield
    finally:
        _signals.unwinding = True
        try:
            for pid in [p for p in _started if p not in before]:
                server = _started.get(pid)
                if server is not None:
                    server.stop()
        finally:
            pending = _signals.pending
            for sig, previous in installed.items():
                signal.signal(sig, previous)
            _signals.unwinding, _signals.hurry, _signals.pending = saved
    if pending is not None:  # a signal came while the servers of a finished command were stopped
        raise Interrupted(pending)


# --- ports and health ----------------------------------------------------------------------------------------------


_LOW_PORT = 20_000  # below the usual ephemeral range (Linux: 32768-60999)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a server to bind seconds later.

    Taken at random below the kernel's ephemeral range when there is room: a port the kernel hands out (a
    client's connection, BentoML's circus control socket) is never in that range, so it cannot take the port
    while the server starts (seen with servers starting side by side: "ZMQError: Address already in use").
    """
    high = _ephemeral_low() - 1
    if high - _LOW_PORT >= 1_000:
        for _ in range(100):
            port = random.randint(_LOW_PORT, high)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 15, width: int = 300, skip: str = "", max_bytes: int = 4 << 20) -> str:
    """The last ``lines`` lines of the log at ``path``, each cut to ``width``; lines containing ``skip`` (when given)
    left out. Read backwards in blocks, at most ``max_bytes``: a traceback followed by thousands of skipped lines is
    still found, and a huge log is never read whole."""
    kept: list[str] = []
    try:
        with path.open("rb") as handle:
            end = path.stat().st_size
            carry = b""
            read = 0
            while end > 0 and len(kept) < lines and read < max_bytes:
                size = min(65_536, end)
                end -= size
                read += size
                handle.seek(end)
                parts = (handle.read(size) + carry).split(b"\n")
                carry = parts.pop(0) if end > 0 else b""  # a line that may begin in the block before
                for raw in reversed(parts):
                    line = raw.decode("utf-8", errors="replace").rstrip("\r")
                    if line and not (skip and skip in line):
                        kept.append(line[:width])
    except OSError:
        return "(no log)"
    if not kept:
        return f"(no lines but {skip.strip()!r} ones)" if skip and end == 0 else "(empty log)"
    return "\n".join(reversed(kept[:lines]))


def healthy(url: str, timeout: float = 2.0) -> bool:
    import httpx  # deferred: most commands never talk HTTP

    try:
        return httpx.get(f"{url}/readyz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


# BentoML's arbiter keeps respawning a worker whose service fails to start; the server process
# itself stays up, so this line in its log is the earliest sign that it will never be ready.
STARTUP_FAILED = b"Application startup failed"


def _log_contains(log: Path, marker: bytes) -> bool:
    try:
        return marker in log.read_bytes()
    except OSError:
        return False


def wait_ready(url: str, pid: int, log: Path, timeout: float = 90.0) -> float:
    """Seconds until ``url``/readyz answers 200; ServerError with the log tail if it fails, dies or times out."""
    start_time = time.monotonic()
    while time.monotonic() - start_time < timeout:
        if not alive(pid):
            raise ServerError(f"the server exited before it became ready; last lines of {log}:\n{log_tail(log)}")
        if _log_contains(log, STARTUP_FAILED):
            raise ServerError(f"the service failed to start; last lines of {log}:\n{log_tail(log, 25)}")
        if healthy(url, timeout=1.0):
            return time.monotonic() - start_time
        time.sleep(0.25)
    raise ServerError(f"{url}/readyz was not ready after {timeout:.0f}s; last lines of {log}:\n{log_tail(log)}")
