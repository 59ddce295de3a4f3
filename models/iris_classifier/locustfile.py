"""Load test for iris_classifier: realistic requests drawn from the model's own data.

    locust -f locustfile.py --host http://127.0.0.1:3000 --headless -u 50 -r 25 -t 20s

`modelctl loadtest iris_classifier` runs this with the users, spawn rate,
duration and P90/error-rate gate from config.yaml.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, constant, task

from api_schema import FEATURES
from train import load_data

_ROWS = [dict(zip(FEATURES, map(float, row), strict=True)) for row in load_data().features]
MAX_ROWS_PER_REQUEST = 4


def payload(rng: random.Random) -> dict[str, list[dict[str, float]]]:
    """1-4 real rows, each value jittered by up to 2 % so the server cannot cache answers."""
    rows = rng.sample(_ROWS, rng.randint(1, MAX_ROWS_PER_REQUEST))
    return {"instances": [{k: round(v * rng.uniform(0.98, 1.02), 4) for k, v in row.items()} for row in rows]}


class ModelUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()

    @task
    def predict(self) -> None:
        with self.client.post("/predict", json=payload(self.rng), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            elif not isinstance(response.json(), list):
                response.failure("response is not a list of predictions")
