"""Hostile inputs for image models (issue 21): what the contract sends, each of which must get a documented 400 or
413, never a 5xx. Built here, byte by byte where Pillow would refuse to write them (a decompression bomb is a few
hundred bytes of PNG declaring a huge image).
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

from modelkit.config import ModelConfig


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels, with a few rows of zeros as data:
    a decoder that trusts the header allocates width x height bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + min(width, 4096)) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _image(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image  # type: ignore[import-not-found, unused-ignore]

    buffer = io.BytesIO()
    Image.new("L", size, 128).save(buffer, format=fmt)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hostile_images(config: ModelConfig) -> dict[str, str]:
    """Name -> the text of a JSON image field that the service must refuse (400, or 413 for the body)."""
    serving = config.serving
    png = _image("PNG")
    cases = {
        "empty": "",
        "not base64": "this is not base64!",
        "base64 with a line break": _b64(png)[:20] + "\n" + _b64(png)[20:],
        "base64 of text": _b64(b"hello, I am not an image"),
        "base64 of an SVG": _b64(b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>'),
        "a PNG signature alone": _b64(png[:8]),
        "a truncated PNG": _b64(png[: len(png) // 2]),
        "a PNG with a broken checksum": _b64(png[:30] + bytes([png[30] ^ 0xFF]) + png[31:]),
        "decompression bomb (declares 2 gigapixels)": _b64(png_declaring(50_000, 40_000)),
        "a PNG over max_image_pixels": _b64(png_declaring(serving.max_image_pixels + 1, 1)),
        "an image over max_image_bytes": _b64(png + b"\x00" * serving.max_image_bytes),
    }
    for fmt in ("GIF", "BMP", "TIFF", "WEBP"):
        if fmt not in serving.image_formats:
            cases[f"a {fmt} (not in serving.image_formats)"] = _b64(_image(fmt))
    return cases
