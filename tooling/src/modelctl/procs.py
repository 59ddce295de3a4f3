"""Start, probe and stop servers on 127.0.0.1; every failure says what to look at."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from modelctl.errors import ModelctlError


class ServerError(ModelctlError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def start_detached(
    cmd: Sequence[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (it outlives the CLI), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process is not alive
        finished, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return finished == 0


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux /proc).

    BentoML's workers call setsid, so they leave the server's process group; if the server is
    killed they are re-parented to init and keep the port. Their pids are recorded at start so
    that stop() can still reach them.
    """
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def stop(pid: int | None, timeout: float = 20.0, workers: Sequence[int] = ()) -> None:
    """SIGTERM the process group of ``pid`` (SIGKILL after ``timeout``), then any of ``workers`` left."""
    _stop_group(pid, timeout)
    for worker in workers:
        if alive(worker):
            try:
                os.kill(worker, signal.SIGKILL)
            except ProcessLookupError:
                continue
            while alive(worker):
                time.sleep(0.05)


def _stop_group(pid: int | None, timeout: float) -> None:
    if not alive(pid):
        return
    assert pid is not None
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while alive(pid):
        time.sleep(0.05)


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
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not alive(pid):
            raise ServerError(f"the server exited before it became ready; last lines of {log}:\n{log_tail(log)}")
        if _log_contains(log, STARTUP_FAILED):
            raise ServerError(f"the service failed to start; last lines of {log}:\n{log_tail(log, 25)}")
        if healthy(url, timeout=1.0):
            return time.monotonic() - start
        time.sleep(0.25)
    raise ServerError(f"{url}/readyz was not ready after {timeout:.0f}s; last lines of {log}:\n{log_tail(log)}")
