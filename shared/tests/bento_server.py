"""A test's own BentoML service, served with `bentoml serve` on 127.0.0.1 (a free port) and stopped afterwards.

The server runs in a session of its own, so stopping it stops its workers too; a server that does not answer
`/readyz` in time fails the test with the end of its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def bentoml_serve(folder: Path, service: str, timeout: float = 60) -> Iterator[int]:
    """Serve ``service:<service>`` from ``folder``; the port, once it is ready."""
    port = free_port()
    log_path = folder / "server.log"
    log = log_path.open("wb")
    command = [sys.executable, "-m", "bentoml", "serve", f"service:{service}", "--host", HOST, "--port", str(port)]
    server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready(port):
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = log_path.read_text(errors="replace")[-3000:]
                pytest.fail(f"bentoml serve did not become ready (exit {server.poll()}):\n{tail}")
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)
        log.close()
