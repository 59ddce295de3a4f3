"""Start, probe and stop servers on 127.0.0.1; every failure says what to look at."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

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


def start_detached(cmd: Sequence[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session (it outlives the CLI), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        return subprocess.Popen(
            list(cmd), cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
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


def stop(pid: int | None, timeout: float = 20.0) -> None:
    """SIGTERM the process group of ``pid``, SIGKILL after ``timeout``."""
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
    try:
        return httpx.get(f"{url}/readyz", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(url: str, pid: int, log: Path, timeout: float = 90.0) -> float:
    """Seconds until ``url``/readyz answers 200; ServerError with the log tail if it dies or times out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not alive(pid):
            raise ServerError(f"the server exited before it became ready; last lines of {log}:\n{log_tail(log)}")
        if healthy(url, timeout=1.0):
            return time.monotonic() - start
        time.sleep(0.25)
    raise ServerError(f"{url}/readyz was not ready after {timeout:.0f}s; last lines of {log}:\n{log_tail(log)}")
