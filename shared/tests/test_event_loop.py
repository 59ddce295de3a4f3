"""The model call never blocks the server's event loop (issue 21): a real `bentoml serve` on 127.0.0.1 answers
``/readyz`` and ``/metrics`` within 100 ms while a 2-second prediction runs.

The toy service is written the way the template writes a model's ``service.py``: a ``ModelService`` subclass
whose ``predict`` calls the model through ``self.in_thread``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bento_server import bentoml_serve

HOST = "127.0.0.1"
MODEL_SECONDS = 2.0
MAX_PROBE_MS = 100.0
CONFIG = """\
name: sleepy_toy
description: Takes two seconds to add two numbers.
owner: team
framework: custom
task: regression
"""
SERVICE = f"""\
from __future__ import annotations

import time
from pathlib import Path

import bentoml
from pydantic import BaseModel

from modelkit import api_options, load_config, model_ref
from modelkit.service import ModelService, request_rows, response_of, service_settings

HERE = Path(__file__).parent
CONFIG = load_config(HERE / "config.yaml")


class Row(BaseModel):
    a: float
    b: float


class Value(BaseModel):
    value: float


Rows = request_rows(Row, CONFIG)
Values = response_of(Value)


def slow_sum(weight: float, rows: list[Row]) -> list[float]:
    time.sleep({MODEL_SECONDS})  # a model that holds its thread (no await): it would block the loop if run on it
    return [weight * (row.a + row.b) for row in rows]


@bentoml.service(**service_settings(CONFIG))
class SleepyToy(ModelService):
    config = CONFIG
    bento_model = bentoml.models.BentoModel(model_ref(CONFIG.name, HERE))

    def setup(self) -> None:
        self.weight = float((Path(self.bento_model.path) / "weight.txt").read_text())

    @bentoml.api(route="/predict", **api_options(CONFIG))
    async def predict(self, instances: Rows) -> Values:
        values = await self.in_thread(slow_sum, self.weight, instances)
        return [Value(value=value) for value in values]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> tuple[int, float]:
    """(status, milliseconds) of a GET."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
        response.read()
        return int(response.status), (time.perf_counter() - started) * 1000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    import bentoml

    folder = tmp_path_factory.mktemp("sleepy_toy")
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "service.py").write_text(SERVICE)
    with bentoml.models.create("sleepy_toy") as stored:
        Path(stored.path_of("weight.txt")).write_text("3")
    with bentoml_serve(folder, "SleepyToy") as port:
        yield port


@pytest.mark.slow
def test_probes_and_metrics_answer_while_a_long_prediction_runs(served: int) -> None:
    port = served
    for path in ("/readyz", "/metrics"):  # warm: the first /metrics builds its registry
        assert get(port, path)[0] == 200
    result: dict[str, Any] = {}

    def predict() -> None:
        body = json.dumps({"instances": [{"a": 1, "b": 2}]}).encode()
        request = urllib.request.Request(
            f"http://{HOST}:{port}/predict", data=body, headers={"content-type": "application/json"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            result["status"], result["body"] = response.status, json.loads(response.read())
        result["seconds"] = time.perf_counter() - started
        result["done"] = time.perf_counter()

    worker = threading.Thread(target=predict)
    worker.start()
    time.sleep(0.5)  # the prediction is under way
    probes: list[tuple[str, int, float, float]] = []
    try:
        while "done" not in result and len(probes) < 40:
            for path in ("/readyz", "/metrics"):
                status, ms = get(port, path)
                probes.append((path, status, ms, time.perf_counter()))
            time.sleep(0.05)
    finally:
        worker.join(30)
    assert result.get("status") == 200 and result["body"] == [{"value": 9.0}], result
    assert result["seconds"] >= MODEL_SECONDS * 0.9, result
    during = [p for p in probes if p[3] < result["done"]]
    assert len(during) >= 4, f"too few probes while the prediction ran: {probes}"
    assert all(status == 200 for _, status, _, _ in during), during
    slowest = max(ms for _, _, ms, _ in during)
    assert slowest < MAX_PROBE_MS, f"a probe took {slowest:.0f} ms while the model ran: {during}"
