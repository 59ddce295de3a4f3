"""A throwaway Redis server for the feature-store tests: Debian's `redis-server` on a free 127.0.0.1 port, no
persistence, in a folder of its own; stopped (and the folder removed) when the context ends.

Without the binary the tests skip with one line saying what to install, except in CI (CI=true), where they fail:
CI must never pass by skipping the Redis online store. The tooling tests load this file too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

INSTALL = "Redis online-store tests need a Redis server: apt-get install redis-server"
# Read once at import: test fixtures may remove CI from the environment of each test.
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
START_TIMEOUT_S = 10.0


def binary() -> str | None:
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(password: str | None = None) -> Iterator[str]:
    """A running server; yields its URL (redis://[:password@]127.0.0.1:PORT/0)."""
    server = binary()
    if server is None:
        raise FileNotFoundError(INSTALL)
    folder = tempfile.mkdtemp(prefix="redis-test-")
    port = _free_port()
    argv = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder]
    if password:
        argv += ["--requirepass", password]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # an AUTH-protected server answers PING with -NOAUTH: wait for the port instead
        while not (_answers(port) if not password else _listening(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port} (exit {process.poll()})")
            time.sleep(0.05)
        auth = f":{password}@" if password else ""
        yield f"redis://{auth}127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def dbsize(url: str) -> int:
    """How many keys the server at ``url`` holds (RESP over a socket: the tooling tests have no Redis client)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=5) as connection:
        if parts.password:
            connection.sendall(f"AUTH {parts.password}\r\n".encode())
            assert connection.recv(64).startswith(b"+OK")
        connection.sendall(b"DBSIZE\r\n")
        reply = connection.recv(64)
    if not reply.startswith(b":"):
        raise RuntimeError(f"DBSIZE answered {reply!r}")
    return int(reply[1:].strip())
