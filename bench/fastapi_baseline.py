"""The baseline of bench/serving.py: the same model, request schema and pre/post-processing, hand-served by FastAPI.

    python bench/fastapi_baseline.py MODEL_DIR MODEL_TAG PORT

Deliberately minimal (no body limit, no metrics, no error bodies): what an engineer would write by hand
around the model's own `preprocess` and `postprocess` (from its service.py) and `model_io`. Tabular and text
models (bench/serving_inputs.py) take the model's own request rows (`api_schema.Features`: for text, the length
limit). An image model's rows are checked and decoded by hand instead (bench/fastapi_images.py): base64, Pillow
within config.yaml's limits, grey levels at the model's size, each image decoded once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bentoml
import uvicorn
from fastapi import FastAPI

from modelkit import load_config

model_dir, tag, port = Path(sys.argv[1]).resolve(), sys.argv[2], int(sys.argv[3])
sys.path.insert(0, str(model_dir))

import model_io  # noqa: E402
from api_schema import Features  # noqa: E402
from service import postprocess, preprocess  # noqa: E402

config = load_config(model_dir / "config.yaml")
model = model_io.load(bentoml.models.get(tag))
app = FastAPI()

if config.input == "image":
    from api_schema import SIZE  # noqa: E402  (an image model's input size)
    from fastapi_images import image_row, pixels  # noqa: E402

    ImageRow = image_row(config)

    @app.post("/predict")
    async def predict_images(body: dict[str, list[ImageRow]]) -> list[Any]:  # type: ignore[valid-type]
        return postprocess(model_io.predict(model, pixels(body["instances"], config, SIZE)))

else:

    @app.post("/predict")
    async def predict(body: dict[str, list[Features]]) -> list[Any]:
        return postprocess(model_io.predict(model, preprocess(body["instances"])))


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)
