"""The default Locust user, run by Locust itself against a stand-in model server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

API_SCHEMA = """
from typing import Annotated
from pydantic import BaseModel, ConfigDict, Field

class Features(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: Annotated[float, Field(strict=True, ge=0, le=10)]
    legs: Annotated[int, Field(ge=0, le=8)]
"""
SAMPLE = {"instances": [{"size": 10.0, "legs": 8}, {"size": 0.0, "legs": 0}]}


@pytest.fixture
def stand_in() -> Iterator[tuple[str, list[Any]]]:
    """Answers POST /predict with one prediction per row, and keeps every request body."""
    bodies: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            bodies.append(body)
            payload = json.dumps([{"value": 1.0}] * len(body["instances"])).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_locust_runs_the_default_user_from_a_one_line_locustfile(
    tmp_path: Path, stand_in: tuple[str, list[Any]]
) -> None:
    url, bodies = stand_in
    (tmp_path / "api_schema.py").write_text(API_SCHEMA)
    (tmp_path / "sample_request.json").write_text(json.dumps(SAMPLE))
    (tmp_path / "locustfile.py").write_text("from modelkit.loadtest import ModelUser  # noqa: F401\n")
    # Locust counts -t from its own start (imports included), hence a few seconds.
    argv = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--host", url, "--headless"]
    argv += ["-u", "2", "-r", "2", "-t", "8s", "--json", "--stop-timeout", "2"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout)
    assert sum(s["num_requests"] for s in stats) > 0 and sum(s["num_failures"] for s in stats) == 0, done.stderr
    rows = [row for body in bodies for row in body["instances"]]
    assert all(1 <= len(body["instances"]) <= 4 for body in bodies)
    assert all(0 <= row["size"] <= 10 and isinstance(row["legs"], int) and 0 <= row["legs"] <= 8 for row in rows)
    assert len({row["size"] for row in rows}) > 2, "values are jittered"
