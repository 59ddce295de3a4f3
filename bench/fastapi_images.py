"""The image rows of bench/fastapi_baseline.py, written by hand: what modelkit.images does for the service.

The same checks within the same limits of the model's config.yaml (`serving.max_image_bytes`, `max_image_pixels`,
`image_formats`: base64 text, then Pillow reading the size from the header before decoding), the same grey levels
(converted to L, resized bilinear to the model's input size, 0 to 16 as scikit-learn's digits); anything refused
is a 400. Unlike the service, which checks an image in its request schema and decodes it again to preprocess it,
each image is decoded once.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np
from fastapi import HTTPException
from PIL import Image
from pydantic import BaseModel, Field

# The template's image models read grey levels from 0 (black) to 16 (white): scikit-learn's digits.
SCALE = 16.0


def image_row(config: Any) -> type[BaseModel]:
    """The request row: one base64 image, no longer than `serving.max_image_bytes` allows."""
    max_chars = 4 * math.ceil(config.serving.max_image_bytes / 3)

    class ImageRow(BaseModel):
        image: str = Field(min_length=1, max_length=max_chars)

    return ImageRow


def grey_levels(text: str, config: Any, size: tuple[int, int]) -> np.ndarray:
    serving = config.serving
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image: not base64") from None
    if not data or len(data) > serving.max_image_bytes:
        raise HTTPException(400, f"image: empty or over {serving.max_image_bytes} bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=list(serving.image_formats))
        if image.width * image.height > serving.max_image_pixels:
            raise HTTPException(400, f"image: over {serving.max_image_pixels} pixels")
        small = image.convert("L").resize(size, Image.Resampling.BILINEAR)
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - any decoder failure on untrusted bytes is the client's bad image
        raise HTTPException(400, "image: not a decodable image of an allowed format") from None
    return np.asarray(small, dtype=np.float64) * (SCALE / 255.0)


def pixels(rows: list[Any], config: Any, size: tuple[int, int]) -> np.ndarray:
    """Request rows -> grey levels of shape (n_rows, height, width) for ``size`` = (width, height): what the
    model's `model_io.predict` reads."""
    return np.stack([grey_levels(row.image, config, size) for row in rows])
