"""Images in requests (``input: image``, issue 21): decoded with Pillow within the limits of ``config.yaml``.

A request carries an image as base64 text in a JSON field (:func:`base64_image`, a pydantic type: an image that
is not base64, not a decodable image, of a format not in ``serving.image_formats``, over ``serving.max_image_bytes``
or ``serving.max_image_pixels`` is a validation error naming the field, so a documented 400, never a 5xx). The size
in pixels is read from the header and checked before anything is decoded, so a decompression bomb (a few KB that
declare a gigapixel image) costs nothing.

Pillow is imported when an image is decoded: it is in the environment of every model with ``input: image``.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import AfterValidator, Field

if TYPE_CHECKING:
    from modelkit.config import ModelConfig


class ImageError(ValueError):
    """An image a request may not carry; the message says why (and never repeats the image's bytes)."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int
    formats: tuple[str, ...]

    @classmethod
    def of(cls, config: ModelConfig) -> ImageLimits:
        serving = config.serving
        return cls(serving.max_image_bytes, serving.max_image_pixels, tuple(serving.image_formats))

    @property
    def max_base64_chars(self) -> int:
        return 4 * math.ceil(self.max_bytes / 3)


def decode_base64(text: str, limits: ImageLimits) -> bytes:
    if len(text) > limits.max_base64_chars:
        raise ImageError(f"image is over {limits.max_bytes} bytes (serving.max_image_bytes)")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("image is not base64 text (RFC 4648, standard alphabet, padded)") from None
    return data


def open_image(data: bytes, limits: ImageLimits) -> Any:
    """The decoded image (a ``PIL.Image.Image``, loaded) of ``data``, or :class:`ImageError` saying why not."""
    from PIL import Image, UnidentifiedImageError  # type: ignore[import-not-found, unused-ignore]

    if not data:
        raise ImageError("image is empty")
    if len(data) > limits.max_bytes:
        raise ImageError(f"image is {len(data)} bytes; the limit is {limits.max_bytes} (serving.max_image_bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # formats= limits which decoders Pillow even tries: the others never see the bytes.
            image = Image.open(io.BytesIO(data), formats=list(limits.formats))
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ImageError(
                    f"image is {width}x{height} = {width * height} pixels; "
                    f"the limit is {limits.max_pixels} (serving.max_image_pixels)"
                )
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not a decodable image of an allowed format ({', '.join(limits.formats)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image declares more than {limits.max_pixels} pixels (serving.max_image_pixels)") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes is the client's bad image
        raise ImageError(f"image could not be decoded ({type(exc).__name__})") from None
    return image


def _check(limits: ImageLimits) -> Any:
    def check(text: str) -> str:
        open_image(decode_base64(text, limits), limits)
        return text

    return check


def base64_image(limits: ImageLimits, description: str = "the image, base64-encoded") -> Any:
    """The pydantic type of a JSON field carrying an image as base64 text, checked against ``limits``."""
    return Annotated[
        str,
        Field(
            strict=True,
            min_length=1,
            max_length=limits.max_base64_chars,
            description=f"{description} ({', '.join(limits.formats)}; at most {limits.max_bytes} bytes and "
            f"{limits.max_pixels} pixels)",
            json_schema_extra={"contentEncoding": "base64"},
        ),
        AfterValidator(_check(limits)),
    ]


def grayscale(image: Any, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """``image`` as a float64 array of shape ``(height, width)`` = ``size[::-1]``, 0 (black) to ``scale`` (white)."""
    from PIL import Image  # type: ignore[import-not-found, unused-ignore]

    small = image.convert("L").resize(size, Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float64) * (scale / 255.0)


def image_batch(texts: list[str], limits: ImageLimits, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Base64 images (already validated) -> float64 array of shape ``(n, height, width)``."""
    return np.stack([grayscale(open_image(decode_base64(t, limits), limits), size, scale) for t in texts])
