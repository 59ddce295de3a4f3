"""Slow request bodies (issue 20, item 7): a body that trickles in gets 408 and never holds a slot that
ordinary requests need.

256 connections each sending a body byte every 10 s used to make every other request get 429 until
``timeout_s``: BentoML counts a request against ``traffic.max_concurrency`` from its headers on. Everything
here runs over real sockets: uvicorn on 127.0.0.1 for the guards alone, ``bentoml serve`` of a toy model
for the attack.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import jsonschema
import numpy as np
import pytest
import uvicorn
from bento_server import bentoml_serve, ready
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelkit import parse_config
from modelkit.errors import ERROR_SCHEMAS, MAX_ERROR_BYTES
from modelkit.serving import BodyDeadline, RequestLimits, body_deadline

HOST = "127.0.0.1"


# --- a raw HTTP/1.1 client: slow bodies need control over every byte --------------------------------


@dataclass
class Answer:
    status: int  # 0: the connection closed without a response; -1: still open when the test gave up
    body: bytes
    seconds: float  # from the request's headers sent to the connection closed


def head(port: int, path: str, length: int | None, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json", "Connection: close"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


async def read_answer(reader: asyncio.StreamReader, started: float) -> Answer:
    raw = await reader.read()  # every request here says Connection: close
    seconds = time.monotonic() - started
    if not raw:
        return Answer(0, b"", seconds)
    header, _, body = raw.partition(b"\r\n\r\n")
    return Answer(int(header.split(b" ", 2)[1]), body, seconds)


async def post(port: int, path: str, body: bytes) -> Answer:
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    writer.write(head(port, path, len(body)) + body)
    await writer.drain()
    try:
        return await read_answer(reader, started)
    finally:
        writer.close()


async def trickle(
    port: int, path: str, length: int | None, chunks: list[bytes], pause: float, extra: str = ""
) -> Answer:
    """Send the headers announcing ``length`` bytes, then ``chunks`` one every ``pause`` seconds (then wait)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    writer.write(head(port, path, length, extra))
    await writer.drain()

    async def send_slowly() -> None:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause)

    sender = asyncio.create_task(send_slowly())
    try:
        return await read_answer(reader, started)
    except ConnectionResetError:
        # The server closed with bytes of ours unread, so its kernel reset the connection, which can
        # discard the answer before we read it: the request was cut off all the same.
        return Answer(0, b"", time.monotonic() - started)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()


# --- the guards on a plain app, served by uvicorn -----------------------------------------------


async def echo(request: Request) -> JSONResponse:
    try:
        body = await request.body()
    except Exception:  # noqa: BLE001 - mimic BentoML, which turns any error into a 500
        return JSONResponse({"error": "boom"}, status_code=500)
    return JSONResponse({"bytes": len(body), "head": body[:20].decode()})


@contextmanager
def uvicorn_on_free_port(app: Any) -> Iterator[int]:
    sock = socket.socket()
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


LIMIT = 4096
GRACE = 0.5
RATE = 100  # bytes per second, after GRACE
CAP = 1.5  # body_timeout_s


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    inner = Starlette(routes=[Route("/predict", echo, methods=["POST"])])
    inner.add_middleware(RequestLimits, max_bytes=LIMIT)
    app = BodyDeadline(inner, max_bytes=LIMIT, timeout_s=CAP, grace_s=GRACE, min_rate=RATE)
    with uvicorn_on_free_port(app) as free_port:
        yield free_port


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_body_in_time_reaches_the_app_whole(port: int) -> None:
    body = b'{"instances": [' + b" " * 100 + b"]}"
    answer = asyncio.run(trickle(port, "/predict", len(body), [body[:40], body[40:90], body[90:]], pause=0.2))
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"bytes": len(body), "head": body[:20].decode()}


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_body_slower_than_the_rate_after_the_grace_is_408(port: int) -> None:
    # one byte every 0.3 s: well under 100 B/s, so it is cut at about GRACE + 1/100 s
    answer = asyncio.run(trickle(port, "/predict", 100, [b" "] * 100, pause=0.3))
    assert answer.status == 408, answer.body
    assert GRACE <= answer.seconds < GRACE + 0.5
    body = json.loads(answer.body)
    jsonschema.validate(body, ERROR_SCHEMAS["RequestTimeout"])  # as /docs.json describes it
    assert len(answer.body) <= MAX_ERROR_BYTES
    assert body["error"] == "request body too slow"
    assert body["detail"] == {**body["detail"], "body_timeout_s": CAP, "min_bytes_per_s": RATE}
    assert 1 <= body["detail"]["received_bytes"] <= 3


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_body_at_the_rate_is_still_cut_at_body_timeout_s(port: int) -> None:
    # 80 bytes every 0.2 s = 400 B/s, well over the rate: only the cap stops it
    answer = asyncio.run(trickle(port, "/predict", LIMIT, [b" " * 80] * 50, pause=0.2))
    assert answer.status == 408, answer.body
    assert CAP <= answer.seconds < CAP + 0.5
    assert json.loads(answer.body)["detail"]["received_bytes"] >= 400


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_declared_length_over_the_limit_is_413_without_waiting_for_the_body(port: int) -> None:
    answer = asyncio.run(trickle(port, "/predict", LIMIT + 1, [], pause=0))
    assert answer.status == 413 and answer.seconds < GRACE


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_chunked_body_over_the_limit_is_still_413(port: int) -> None:
    chunk = b" " * 1000
    encoded = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 6 + [b"0\r\n\r\n"]
    answer = asyncio.run(trickle(port, "/predict", None, encoded, pause=0.01, extra="Transfer-Encoding: chunked\r\n"))
    assert answer.status == 413, answer.body


@pytest.mark.slow  # a real uvicorn server on loopback
def test_a_client_that_leaves_mid_body_does_not_hurt_the_next(port: int) -> None:
    async def leave() -> None:
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(head(port, "/predict", 100) + b"{")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()

    asyncio.run(leave())
    assert asyncio.run(post(port, "/predict", b"{}")).status == 200


def test_limits_come_from_config_yaml() -> None:
    minimal = "name: churn\ndescription: d\nowner: team\nframework: sklearn\n"
    assert body_deadline(parse_config(minimal)) == {
        "max_bytes": 1_048_576,
        "timeout_s": 10.0,
        "grace_s": 2.0,
        "min_rate": 1000,
    }
    custom = parse_config(minimal + "serving: {body_timeout_s: 3, body_grace_s: 0.5, body_min_bytes_per_s: 0}\n")
    options = body_deadline(custom)
    assert (options["timeout_s"], options["grace_s"], options["min_rate"]) == (3, 0.5, 0)
    # no rate: only the cap counts
    assert BodyDeadline(echo, **options).allowed_s(0) == 3  # type: ignore[arg-type]


# --- the attack, on `bentoml serve` ------------------------------------------------------------

SLOW_CLIENTS = 300  # more than max_concurrency (256, the default): before the fix every slot was taken
ATTACK_GRACE = 5.0
ATTACK_CAP = 8.0
ATTACK_CONFIG = f"""\
name: slow_toy
description: Adds two numbers while slow clients trickle bodies in.
owner: team
framework: sklearn
task: regression
serving: {{body_grace_s: {ATTACK_GRACE}, body_timeout_s: {ATTACK_CAP}, body_min_bytes_per_s: 1000}}
"""
SERVICE = """\
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pydantic import BaseModel

from modelkit.service import build_service


class Row(BaseModel):
    a: float
    b: float


class Value(BaseModel):
    value: float


def load(stored):
    return np.load(stored.path_of("weights.npy"))


def predict(model, rows):
    return rows @ model


def postprocess(values):
    return [Value(value=float(v)) for v in values]


SlowToy = build_service(
    Path(__file__).parent, features=Row, prediction=Value,
    model_io=SimpleNamespace(load=load, predict=predict), postprocess=postprocess,
)
"""
PREDICT = json.dumps({"instances": [{"a": 1, "b": 2}]}).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    import bentoml

    folder = tmp_path_factory.mktemp("slow_toy")
    (folder / "config.yaml").write_text(ATTACK_CONFIG)
    (folder / "service.py").write_text(SERVICE)
    with bentoml.models.create("slow_toy") as stored:
        np.save(stored.path_of("weights.npy"), np.array([1.0, 2.0]))
    with bentoml_serve(folder, "SlowToy") as port:
        yield port


STILL_OPEN = Answer(-1, b"", float("inf"))


@dataclass
class Attack:
    slow: list[Answer]
    ordinary: list[Answer]
    slow_done_during_ordinary: int
    ordinary_phase_s: float


async def attack(port: int, ordinary_s: float) -> Attack:
    # each slow client announces 1,000 bytes and sends one every 3 s
    slow = [asyncio.create_task(trickle(port, "/predict", 1000, [b" "] * 1000, pause=3.0)) for _ in range(SLOW_CLIENTS)]
    await asyncio.sleep(1.0)  # every slow request is in the server, reading
    started = time.monotonic()
    ordinary: list[Answer] = []
    while time.monotonic() - started < ordinary_s:  # one after another, then ten at once
        ordinary.append(await post(port, "/predict", PREDICT))
        ordinary += await asyncio.gather(*(post(port, "/predict", PREDICT) for _ in range(10)))
    done_meanwhile = sum(task.done() for task in slow)
    phase = time.monotonic() - started
    _, pending = await asyncio.wait(slow, timeout=ATTACK_CAP + 2)
    finished = [STILL_OPEN if task in pending else task.result() for task in slow]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return Attack(finished, ordinary, done_meanwhile, phase)


@pytest.mark.slow
def test_slow_bodies_do_not_lock_out_ordinary_requests(served: int) -> None:
    # ordinary traffic for 2 s, from 1 s after the slow clients started: well within their grace
    result = asyncio.run(attack(served, ordinary_s=2.0))
    statuses = sorted({answer.status for answer in result.ordinary})
    latencies = sorted(answer.seconds for answer in result.ordinary)
    slow_seconds = sorted(answer.seconds for answer in result.slow)
    print(
        f"\n{SLOW_CLIENTS} slow clients; {len(result.ordinary)} ordinary requests in {result.ordinary_phase_s:.2f} s:"
        f" statuses {statuses}, latency median {latencies[len(latencies) // 2] * 1000:.0f} ms,"
        f" max {latencies[-1] * 1000:.0f} ms; slow ones answered {sorted({a.status for a in result.slow})}"
        f" after {slow_seconds[0]:.2f}-{slow_seconds[-1]:.2f} s"
    )
    assert statuses == [200], [a.body[:200] for a in result.ordinary if a.status != 200][:3]
    assert json.loads(result.ordinary[0].body) == [{"value": 5.0}]
    # the ordinary requests were answered while every slow one was still open
    assert result.slow_done_during_ordinary == 0
    # every slow one was cut off within the bound: 408, or closed when a reset overtook the answer
    assert {a.status for a in result.slow} <= {408, 0}
    assert ATTACK_GRACE <= slow_seconds[0] and slow_seconds[-1] < ATTACK_CAP
    assert json.loads(next(a.body for a in result.slow if a.status == 408))["error"] == "request body too slow"
    # the server answered each with 408, inside BentoML's metrics, and is ready for more
    assert answered(served, 408) == SLOW_CLIENTS
    assert ready(served)


def answered(port: int, status: int) -> float:
    """``bentoml_service_request_total`` for ``POST /predict`` answered with ``status``, from /metrics."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("bentoml_service_request_total{")
        and 'endpoint="/predict"' in line
        and f'http_response_code="{status}"' in line
    )


@pytest.mark.slow
def test_the_served_document_describes_the_408(served: int) -> None:
    with urllib.request.urlopen(f"http://{HOST}:{served}/docs.json", timeout=5) as response:
        document = json.load(response)
    responses = document["paths"]["/predict"]["post"]["responses"]
    assert responses["408"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RequestTimeout"
    assert "body_timeout_s" in document["components"]["schemas"]["RequestTimeout"]["properties"]["detail"]["required"]
