"""modelkit.images: images in requests are decoded within config.yaml's limits, and anything else is a clear
ValueError (so a documented 400 naming the field), never a decoder's exception (issue 21)."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from modelkit import ModelConfig
from modelkit.images import (
    ImageError,
    ImageLimits,
    base64_image,
    decode_base64,
    file_schema,
    image_batch,
    image_file,
    image_schema,
    open_image,
    open_upload,
    upload_batch,
)
from modelkit.testing.hostile import hostile_images, png_declaring

Image = pytest.importorskip("PIL.Image", reason="Pillow is in the environment of every image model: pip install pillow")

CONFIG = ModelConfig.model_validate(
    {"name": "digits", "description": "d", "owner": "o", "framework": "sklearn", "input": "image"}
)
LIMITS = ImageLimits.of(CONFIG)


def encoded(fmt: str = "PNG", size: tuple[int, int] = (16, 16), mode: str = "L", fill: Any = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, fill).save(buffer, format=fmt)
    return buffer.getvalue()


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: base64_image(LIMITS)  # type: ignore[valid-type]


def test_the_limits_come_from_the_config() -> None:
    assert LIMITS == ImageLimits(524_288, 4_000_000, ("PNG", "JPEG"))
    identity = {"name": "digits", "description": "d", "owner": "o", "framework": "sklearn", "input": "image"}
    serving = {"max_image_bytes": 1000, "max_image_pixels": 64, "image_formats": ["PNG"]}
    narrow = ModelConfig.model_validate({**identity, "serving": serving})
    assert ImageLimits.of(narrow) == ImageLimits(1000, 64, ("PNG",))
    with pytest.raises(ValidationError, match="image_formats"):
        ModelConfig.model_validate({**identity, "serving": {"image_formats": ["SVG"]}})


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_allowed_image_decodes_to_grey_levels(fmt: str) -> None:
    image = open_image(encoded(fmt, (32, 16), "RGB", (255, 255, 255)), LIMITS)
    assert image.size == (32, 16)
    batch = image_batch([base64.b64encode(encoded(fmt)).decode()] * 3, LIMITS, (8, 8), scale=16.0)
    assert batch.shape == (3, 8, 8) and batch.dtype == np.float64
    assert np.allclose(batch, 16.0, atol=0.2)


def test_every_hostile_image_is_a_validation_error_naming_the_field() -> None:
    for name, text in hostile_images(CONFIG).items():
        with pytest.raises(ValidationError) as caught:
            Row(image=text)
        errors = caught.value.errors()
        assert [e["loc"] for e in errors] == [("image",)], (name, errors)
        assert len(str(caught.value)) < 2000, name


def test_a_decompression_bomb_is_refused_from_its_header_in_milliseconds() -> None:
    bomb = png_declaring(60_000, 60_000)  # 3.6 gigapixels declared, a few hundred bytes sent
    assert len(bomb) < 2000
    started = time.perf_counter()
    with pytest.raises(ImageError, match="pixels"):
        open_image(bomb, LIMITS)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(ImageError, match=r"3000x2000 = 6000000 pixels; the limit is 4000000"):
        open_image(png_declaring(3000, 2000), LIMITS)


def test_errors_say_why_without_repeating_the_bytes() -> None:
    secret = b"SECRET-BYTES" * 10
    with pytest.raises(ImageError) as caught:
        open_image(secret, LIMITS)
    assert "SECRET" not in str(caught.value) and "allowed format (PNG, JPEG)" in str(caught.value)
    with pytest.raises(ImageError, match="not base64"):
        decode_base64("%%%", LIMITS)
    with pytest.raises(ImageError, match="is empty"):
        open_image(b"", LIMITS)
    with pytest.raises(ImageError, match="the limit is 524288"):
        open_image(encoded() + b"\0" * LIMITS.max_bytes, LIMITS)


def test_a_format_outside_the_list_is_refused_even_when_pillow_reads_it() -> None:
    gif = encoded("GIF")
    assert Image.open(io.BytesIO(gif)).format == "GIF"
    with pytest.raises(ImageError, match="allowed format"):
        open_image(gif, LIMITS)
    assert open_image(gif, ImageLimits(LIMITS.max_bytes, LIMITS.max_pixels, ("GIF",))).size == (16, 16)


def test_the_document_says_what_an_image_field_takes() -> None:
    """What /docs.json shows, and what `modelctl fuzz` generates images from (issue 21)."""
    field = Row.model_json_schema()["properties"]["image"]
    assert field == {
        **field,
        "type": "string",
        "format": "base64-image",
        "contentEncoding": "base64",
        "contentMediaType": "image/*",
        "x-image-formats": ["PNG", "JPEG"],
        "x-max-image-bytes": 524_288,
        "x-max-image-pixels": 4_000_000,
        "maxLength": LIMITS.max_base64_chars,
    }
    png_only = ImageLimits(1000, 64, ("PNG",))
    assert image_schema(png_only)["contentMediaType"] == "image/png"
    upload = file_schema(png_only)
    assert upload["format"] == "binary" and "contentEncoding" not in upload  # a file part, raw bytes
    assert (upload["x-image-formats"], upload["x-max-image-bytes"]) == (["PNG"], 1000)


class Upload(BaseModel):
    image: image_file(LIMITS)  # type: ignore[valid-type]


def test_an_uploaded_file_is_checked_like_a_base64_image(tmp_path: Path) -> None:
    good = tmp_path / "digit.png"
    good.write_bytes(encoded("JPEG"))  # the name says PNG, the bytes are what count
    assert Upload(image=good).image == good
    assert open_upload(good, LIMITS).format == "JPEG"
    batch = upload_batch([good, good], LIMITS, (8, 8), scale=16.0)
    assert batch.shape == (2, 8, 8) and np.allclose(batch, 16.0, atol=0.3)
    for name, data in {"gif": encoded("GIF"), "bomb": png_declaring(60_000, 60_000), "empty": b""}.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValidationError) as caught:
            Upload(image=path)
        assert [e["loc"] for e in caught.value.errors()] == [("image",)], name
    big = tmp_path / "big"
    big.write_bytes(encoded() + b"\0" * LIMITS.max_bytes)
    with pytest.raises(ImageError, match=r"the limit is 524288 \(serving.max_image_bytes\)"):
        open_upload(big, LIMITS)
