"""Images in requests (``input: image``, issue 21): decoded with Pillow within the limits of ``config.yaml``.

A request carries an image as base64 text in a JSON field (:func:`base64_image`, a pydantic type: an image that
is not base64, not a decodable image, of a format not in ``serving.image_formats``, over ``serving.max_image_bytes``
or ``serving.max_image_pixels`` is a validation error naming the field, so a documented 400, never a 5xx), or as a
file uploaded in a multipart/form-data body (:func:`image_file`, the type of an endpoint's file parameter, with the
same checks; :mod:`modelkit.uploads` guards the multipart body itself). The size in pixels is read from the header
and checked before anything is decoded, so a decompression bomb (a few KB that declare a gigapixel image) costs
nothing.

Pillow is imported when an image is decoded: it is in the environment of every model with ``input: image``.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

if TYPE_CHECKING:
    import numpy as np

    from modelkit.config import ModelConfig


# How /docs.json describes an image field (image_schema); modelctl's fuzzer generates images from these.
BASE64_IMAGE_FORMAT = "base64-image"
IMAGE_FORMATS_KEY = "x-image-formats"
MAX_IMAGE_BYTES_KEY = "x-max-image-bytes"
MAX_IMAGE_PIXELS_KEY = "x-max-image-pixels"


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


def media_type(fmt: str) -> str:
    """The media type of a Pillow format name (``JPEG`` -> ``image/jpeg``)."""
    return f"image/{fmt.lower()}"


def image_schema(limits: ImageLimits) -> dict[str, Any]:
    """What ``/docs.json`` says of an image field beyond "a string": base64 text of an image of these formats,
    within these limits. ``format`` names what it is (schemathesis, or any client generator, can register a
    generator for it: ``modelctl fuzz`` sends real images); the ``x-`` keys carry the limits of config.yaml."""
    formats = list(limits.formats)
    return {
        "format": BASE64_IMAGE_FORMAT,
        "contentEncoding": "base64",
        "contentMediaType": media_type(formats[0]) if len(formats) == 1 else "image/*",
        IMAGE_FORMATS_KEY: formats,
        MAX_IMAGE_BYTES_KEY: limits.max_bytes,
        MAX_IMAGE_PIXELS_KEY: limits.max_pixels,
    }


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
            json_schema_extra=image_schema(limits),
        ),
        AfterValidator(_check(limits)),
    ]


def file_schema(limits: ImageLimits) -> dict[str, Any]:
    """What ``/docs.json`` says of an image file field (multipart/form-data): a file (``format: binary``, so clients
    and schemathesis send it as a file part) of these formats, within these limits (as :func:`image_schema`)."""
    schema = image_schema(limits)
    schema.pop("contentEncoding")
    return {**schema, "format": "binary"}


def open_upload(path: Path, limits: ImageLimits) -> Any:
    """The decoded image (a ``PIL.Image.Image``, loaded) of an uploaded file, or :class:`ImageError` saying why not:
    the checks of :func:`open_image`, and the file's size before it is read."""
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise ImageError(f"image is {size} bytes; the limit is {limits.max_bytes} (serving.max_image_bytes)")
    return open_image(path.read_bytes(), limits)


def _check_upload(limits: ImageLimits) -> Any:
    def check(path: Path) -> Path:
        open_upload(path, limits)
        return path

    return check


def image_file(limits: ImageLimits, description: str = "the image file") -> Any:
    """The type of an endpoint's parameter that takes one uploaded image file (``@bentoml.api``: a ``Path`` makes
    BentoML 1.4 take the request as multipart/form-data and write the file part to a temporary file), checked
    against ``limits`` like :func:`base64_image`: anything else is a validation error naming the parameter (400).
    The endpoint gets the file's path; :func:`open_upload` or :func:`upload_batch` decode it.

    Serve it behind :class:`modelkit.uploads.UploadGuard`: BentoML fetches a file field sent as text as a URL."""
    return Annotated[
        Path,
        Field(
            description=f"{description} ({', '.join(limits.formats)}; at most {limits.max_bytes} bytes and "
            f"{limits.max_pixels} pixels), as a file part of a multipart/form-data body",
            json_schema_extra=file_schema(limits),
        ),
        AfterValidator(_check_upload(limits)),
    ]


def upload_batch(paths: list[Path], limits: ImageLimits, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Uploaded image files (already validated) -> float64 array of shape ``(n, height, width)``."""
    import numpy as np

    return np.stack([grayscale(open_upload(p, limits), size, scale) for p in paths])


def grayscale(image: Any, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """``image`` as a float64 array of shape ``(height, width)`` = ``size[::-1]``, 0 (black) to ``scale`` (white)."""
    from PIL import Image  # type: ignore[import-not-found, unused-ignore]

    small = image.convert("L").resize(size, Image.Resampling.BILINEAR)
    import numpy as np

    return np.asarray(small, dtype=np.float64) * (scale / 255.0)


def image_batch(texts: list[str], limits: ImageLimits, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """Base64 images (already validated) -> float64 array of shape ``(n, height, width)``."""
    import numpy as np

    return np.stack([grayscale(open_image(decode_base64(t, limits), limits), size, scale) for t in texts])
