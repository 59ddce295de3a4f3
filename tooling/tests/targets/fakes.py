"""Real HTTP servers on 127.0.0.1 standing in for a BentoML service, the Kubernetes API and BentoCloud.

Every server records the requests it got and is stopped when its ``with`` block ends.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# BentoML 1.4's default duration buckets (bentoml/_internal/utils/metrics.py DEFAULT_BUCKET).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, math.inf)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str -> text
    content_type: str | None = None


Handler = Callable[[Call], Reply]


@dataclass
class Server:
    url: str
    calls: list[Call] = field(default_factory=list)
    port: int = 0


@contextmanager
def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    """A ThreadingHTTPServer on a free loopback port answering every request with ``handler`` (HTTPS with ``tls``)."""
    server_state = Server(url="")
    lock = threading.Lock()

    class Handle(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with lock:
                server_state.calls.append(call)
            reply = handler(call)
            if isinstance(reply.body, (dict, list)):
                data, content_type = json.dumps(reply.body).encode(), "application/json"
            else:
                data, content_type = str(reply.body or "").encode(), "text/plain; version=0.0.4"
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type or content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server_state.port = int(server.server_address[1])
    server_state.url = f"{'https' if tls else 'http'}://127.0.0.1:{server_state.port}"
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class FakeBento:
    """A BentoML 1.4 service's HTTP surface: /predict, the probes, and /metrics in BentoML's exact format.

    ``fail_after``: /predict answers 500 from request number fail_after + 1 on. ``latency_s`` is the
    duration recorded for each /predict (no real waiting: the tests make no timing assumptions).
    """

    fail_after: int | None = None
    latency_s: float = 0.004
    metrics_status: int = 200
    name: str = "iris_classifier"
    version: str = "k3xq2mhf5cvbqaav"
    predictions: int = 0
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    durations: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: Call) -> Reply:
        path = call.path.split("?")[0]
        if path == "/metrics":
            return Reply(self.metrics_status, self.metrics() if self.metrics_status == 200 else "not found")
        with self.lock:
            if path == "/predict":
                self.predictions += 1
                failing = self.fail_after is not None and self.predictions > self.fail_after
                status, duration = (500, self.latency_s) if failing else (200, self.latency_s)
                reply = Reply(status, {"error": "boom"} if failing else {"prediction": [0]})
            elif path in ("/livez", "/readyz", "/healthz"):
                status, duration, reply = 200, 0.001, Reply(200, "")
            else:
                status, duration, reply = 404, 0.001, Reply(404, {"error": "not found"})
            self.counts[(path, status)] = self.counts.get((path, status), 0) + 1
            self.durations.setdefault((path, status), []).append(duration)
        return reply

    def metrics(self) -> str:
        """The exposition BentoML 1.4.40 serves (names, label order, float format from a real /metrics)."""
        with self.lock:
            counts = dict(self.counts)
            durations = {key: list(values) for key, values in self.durations.items()}
        lines = [
            "# HELP bentoml_service_request_duration_seconds runner RPC duration in seconds",
            "# TYPE bentoml_service_request_duration_seconds histogram",
        ]
        for (endpoint, code), values in durations.items():
            labels = f'endpoint="{endpoint}",http_response_code="{code}"'
            rest = f'runner_name="IrisClassifier",service_name="{self.name}",service_version="{self.version}"'
            lines.append(f"bentoml_service_request_duration_seconds_sum{{{labels},{rest}}} {sum(values)}")
            for bound in BUCKETS:
                le = "+Inf" if math.isinf(bound) else repr(bound)
                below = float(sum(1 for v in values if v <= bound))
                lines.append(f'bentoml_service_request_duration_seconds_bucket{{{labels},le="{le}",{rest}}} {below}')
            lines.append(f"bentoml_service_request_duration_seconds_count{{{labels},{rest}}} {float(len(values))}")
        lines += [
            "# HELP bentoml_service_request_total Total number of runner RPC",
            "# TYPE bentoml_service_request_total counter",
        ]
        for (endpoint, code), count in counts.items():
            lines.append(
                f'bentoml_service_request_total{{endpoint="{endpoint}",http_response_code="{code}",'
                f'runner_name="IrisClassifier",service_name="{self.name}",service_version="{self.version}"}} '
                f"{float(count)}"
            )
        return "\n".join(lines) + "\n"
