"""A real S3-compatible server for the tests: moto's standalone server on a loopback port."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

WsgiApp = Callable[[dict[str, Any], Any], Any]


def _one_request_at_a_time(app: WsgiApp, ignore: Collection[str] = ()) -> WsgiApp:
    """S3 evaluates a conditional write and stores the object atomically; moto checks, then stores, without a
    lock (and under concurrent PUTs of one key its threaded server once answered 500 "I/O operation on closed
    file"). Serving one request at a time gives the test server S3's guarantee. ``ignore`` names request headers
    dropped before moto sees them: a server that ignores, say, If-None-Match."""
    lock = threading.Lock()
    dropped = ["HTTP_" + header.upper().replace("-", "_") for header in ignore]

    def serve(environ: dict[str, Any], start_response: Any) -> Any:
        for name in dropped:
            environ.pop(name, None)
        with lock:
            return list(app(environ, start_response))

    return serve


@contextmanager
def moto_server(ignore: Collection[str] = ()) -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 (a free port), deaf to the ``ignore`` headers; its endpoint URL.
    Stopped on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    wsgi = server._server  # the werkzeug server ThreadedMotoServer made; wrap its app (see above)
    assert wsgi is not None
    wsgi.app = _one_request_at_a_time(wsgi.app, ignore)
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never the machine's AWS config, profiles or instance metadata.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def use_s3(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str | None = None) -> str:
    """Point this test's environment at ``endpoint`` with a new bucket; the store URL (with a prefix)."""
    import boto3

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MODELCTL_STORE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELCTL_STORE_ENDPOINT_URL", endpoint)
    bucket = bucket or f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team/state"
