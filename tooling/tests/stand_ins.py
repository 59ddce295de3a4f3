"""Real HTTP servers on 127.0.0.1 standing in for Slack and the GitHub API in tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StandIn:
    url: str
    statuses: list[int]
    requests: list[Recorded] = field(default_factory=list)


@contextmanager
def http_stand_in(statuses: list[int], default: int = 200) -> Iterator[StandIn]:
    """Answers each request with the next status of ``statuses`` (then ``default``) and records it."""
    state = StandIn(url="", statuses=list(statuses))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
                body = raw.decode(errors="replace")
            with lock:
                state.requests.append(Recorded(self.command, self.path, dict(self.headers), body))
                status = state.statuses.pop(0) if state.statuses else default
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"error")

        do_POST = _answer  # noqa: N815 - http.server's naming
        do_GET = _answer  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` behind a threading HTTP server on a free 127.0.0.1 port, its URL; shut down afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class JsonAnswers(BaseHTTPRequestHandler):
    """A request handler that answers JSON bodies with a status and extra headers (HTTP/1.1, keep-alive)."""

    protocol_version = "HTTP/1.1"

    def answer(self, status: int, body: Any, extra: tuple[tuple[str, str], ...] = ()) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for key, value in extra:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass
