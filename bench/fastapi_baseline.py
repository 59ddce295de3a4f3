"""The baseline of bench/serving.py: the same model, request schema and pre/post-processing, hand-served by FastAPI.

    python bench/fastapi_baseline.py MODEL_DIR MODEL_TAG PORT

Deliberately minimal (no body limit, no metrics, no error bodies): what an engineer would write by hand
around the model's own `preprocess` and `postprocess` (from its service.py) and `model_io`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bentoml
import uvicorn
from fastapi import FastAPI

model_dir, tag, port = Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3])
sys.path.insert(0, str(model_dir))

import model_io  # noqa: E402
from api_schema import Features  # noqa: E402
from service import postprocess, preprocess  # noqa: E402

model = model_io.load(bentoml.models.get(tag))
app = FastAPI()


@app.post("/predict")
async def predict(body: dict[str, list[Features]]) -> list[Any]:
    return postprocess(model_io.predict(model, preprocess(body["instances"])))


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)
