"""The baseline of bench/serving.py: the same model and request schema, hand-served by FastAPI + uvicorn.

    python bench/fastapi_baseline.py MODEL_DIR MODEL_TAG PORT

Deliberately minimal (no body limit, no metrics): what an engineer would write by hand.
"""

from __future__ import annotations

import sys
from operator import attrgetter
from pathlib import Path

import bentoml
import numpy as np
import uvicorn
from fastapi import FastAPI

model_dir, tag, port = Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3])
sys.path.insert(0, str(model_dir))

import model_io  # noqa: E402
from api_schema import CLASS_NAMES, FEATURES, Features, Prediction  # noqa: E402

model = model_io.load(bentoml.models.get(tag))
row_values = attrgetter(*FEATURES)
app = FastAPI()


@app.post("/predict")
async def predict(body: dict[str, list[Features]]) -> list[Prediction]:
    instances = body["instances"]
    rows = np.array([row_values(r) for r in instances], dtype=np.float64).reshape(len(instances), -1)
    out = []
    for p in model_io.predict_proba(model, rows):
        class_id = int(p.argmax())
        out.append(
            Prediction(
                label=CLASS_NAMES[class_id],
                class_id=class_id,
                probabilities={n: round(float(v), 6) for n, v in zip(CLASS_NAMES, p, strict=True)},
            )
        )
    return out


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)
