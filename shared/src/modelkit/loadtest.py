"""The default Locust user of a model: realistic requests from its ``sample_request.json`` and request schema.

A model's ``locustfile.py``::

    from modelkit.loadtest import ModelUser  # noqa: F401  (Locust runs every User class it finds)

Locust runs from the model folder (``modelctl loadtest --locustfile``, ``bench/serving.py``); set ``MODEL_DIR``
to run it from elsewhere. Each request carries 1-4 rows drawn from the sample, numbers jittered by up
to 2 % within the schema's bounds (so the server cannot cache answers); a response passes when it
is 200 and a JSON list of one prediction per row. Needs ``locust`` (the model's requirements-dev.txt).

The load-test gate does not run the model's locustfile: it runs its own subclass of `PredictUser` (the same
requests and checks) from plain JSON, in a process that imports nothing from the model folder.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
from functools import cache
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, task

from modelkit.loader import load_config
from modelkit.samples import SAMPLE_FILE, RequestMaker, numeric_bounds, read_sample

MAX_ROWS_PER_REQUEST = 4


def model_dir() -> Path:
    return Path(os.environ.get("MODEL_DIR", os.getcwd())).resolve()


@cache
def request_maker(folder: Path) -> RequestMaker:
    """Rows from the model's load-test payload (``loadtest.payload``, sample_request.json by default);
    numeric bounds from the service's request schema.

    The schema is read from ``api_schema.Features`` when the model folder is importable, so the
    load test never sends what the service refuses; without it the sample's values are only jittered.
    """
    payload = load_config(folder / "config.yaml").loadtest.payload if (folder / "config.yaml").is_file() else None
    rows = read_sample(folder, payload or SAMPLE_FILE)["instances"]
    bounds: dict[str, Any] = {}
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        schema = importlib.import_module("api_schema")
        bounds = numeric_bounds(schema.Features.model_json_schema())
    except (ImportError, AttributeError):
        pass
    return RequestMaker(rows, bounds, max_rows=MAX_ROWS_PER_REQUEST)


class PredictUser(FastHttpUser):
    """POST /predict as fast as it is answered (``wait_time`` 0): the load gate measures the server.

    Subclasses say where the requests come from (`make_requests`)."""

    abstract = True
    wait_time = constant(0)

    def make_requests(self) -> RequestMaker:
        raise NotImplementedError

    def on_start(self) -> None:
        self.rng = random.Random()
        self.maker = self.make_requests()

    @task
    def predict(self) -> None:
        body = self.maker.request(self.rng)
        with self.client.post("/predict", json=body, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            predictions = response.json()
            if not isinstance(predictions, list) or len(predictions) != len(body["instances"]):
                response.failure("response is not a list of one prediction per row")


class ModelUser(PredictUser):
    """The model folder's own requests (`request_maker`): for a model's locustfile and exploratory runs."""

    def make_requests(self) -> RequestMaker:
        return request_maker(model_dir())
