"""Images uploaded as files (multipart/form-data, issue 21): a real `bentoml serve` on 127.0.0.1 of an endpoint
whose parameter is ``modelkit.images.image_file``, behind modelkit's guards (``RequestLimits`` for the body's
size, ``UploadGuard`` for the multipart body, ``ErrorBodies``). Every hostile upload gets a documented 400, 413 or
415 naming what is wrong, never a 5xx, and the server stays up."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from bento_server import bentoml_serve

from modelkit.errors import MAX_ERROR_BYTES
from modelkit.testing.hostile import png_declaring

Image = pytest.importorskip("PIL.Image", reason="Pillow is in the environment of every image model: pip install pillow")
httpx = pytest.importorskip("httpx")

HOST = "127.0.0.1"
MAX_IMAGE_BYTES, MAX_REQUEST_BYTES = 4096, 8192
CONFIG = f"""\
name: upload_toy
description: Says what it was sent.
owner: team
framework: custom
task: classification
input: image
serving: {{max_image_bytes: {MAX_IMAGE_BYTES}, max_image_pixels: 10000, max_request_bytes: {MAX_REQUEST_BYTES}}}
"""
# The guards by hand, as GuardedService would add them for an upload route (RequestLimits' JSON-only check is for
# JSON routes; UploadGuard answers 415 for an upload route's non-multipart body).
SERVICE = """\
from __future__ import annotations

from pathlib import Path

import bentoml
from pydantic import BaseModel

from modelkit import load_config
from modelkit.errors import ErrorBodies, quiet_client_errors
from modelkit.images import ImageLimits, image_file, open_upload
from modelkit.serving import RequestLimits
from modelkit.uploads import UploadGuard, upload_routes

HERE = Path(__file__).parent
CONFIG = load_config(HERE / "config.yaml")
LIMITS = ImageLimits.of(CONFIG)
ImageFile = image_file(LIMITS)
quiet_client_errors()


class Seen(BaseModel):
    width: int
    height: int
    format: str


@bentoml.service
class UploadToy:
    @bentoml.api(route="/predict_file")
    async def predict_file(self, image: ImageFile) -> Seen:
        picture = open_upload(image, LIMITS)
        return Seen(width=picture.width, height=picture.height, format=picture.format)


UploadToy.add_asgi_middleware(RequestLimits, max_bytes=CONFIG.serving.max_request_bytes, json_only=False)
UploadToy.add_asgi_middleware(UploadGuard, routes=upload_routes(UploadToy))
UploadToy.add_asgi_middleware(ErrorBodies)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def ready(url: str) -> bool:
    try:
        return bool(httpx.get(f"{url}/readyz", timeout=5).status_code == 200)
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("upload_toy")
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "service.py").write_text(SERVICE)
    with bentoml_serve(folder, "UploadToy") as port:
        yield f"http://{HOST}:{port}"


def encoded(fmt: str, size: tuple[int, int] = (16, 12), mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, 200).save(buffer, format=fmt)
    return buffer.getvalue()


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{url}/predict_file", timeout=30, **kwargs)


def refused(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The documented error body of ``response``, which must have ``status`` and mention ``words``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert len(response.content) <= MAX_ERROR_BYTES
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str), body
    text = json.dumps(body)
    for word in words:
        assert word in text, (word, body)
    return body


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_an_allowed_image_is_accepted_as_a_file(served: str, fmt: str) -> None:
    response = post(served, files={"image": (f"digit.{fmt.lower()}", encoded(fmt), f"image/{fmt.lower()}")})
    assert response.status_code == 200, response.text
    assert response.json() == {"width": 16, "height": 12, "format": fmt}
    # the part's own content type is not trusted: the bytes say what the file is
    unlabelled = post(served, files={"image": ("digit", encoded(fmt), "application/octet-stream")})
    assert unlabelled.status_code == 200, unlabelled.text


def test_the_document_says_the_field_is_an_image_file(served: str) -> None:
    document = httpx.get(f"{served}/docs.json", timeout=30).json()
    body = document["paths"]["/predict_file"]["post"]["requestBody"]["content"]
    field = body["multipart/form-data"]["schema"]["properties"]["image"]
    assert field["format"] == "binary" and field["contentMediaType"] == "image/*"
    assert (field["x-image-formats"], field["x-max-image-bytes"], field["x-max-image-pixels"]) == (
        ["PNG", "JPEG"],
        MAX_IMAGE_BYTES,
        10000,
    )


def test_images_that_are_not_acceptable_get_400_naming_the_field(served: str) -> None:
    png = encoded("PNG")
    cases = {
        "not an image": (b"hello, I am not an image", "allowed format"),
        "truncated PNG": (png[: len(png) // 2], "image"),
        "GIF": (encoded("GIF"), "allowed format (PNG, JPEG)"),
        "BMP": (encoded("BMP"), "allowed format (PNG, JPEG)"),
        "empty file": (b"", "image is empty"),
        "over max_image_bytes": (png + b"\0" * MAX_IMAGE_BYTES, "the limit is 4096"),
        "decompression bomb": (png_declaring(50_000, 40_000), "pixels"),
        "over max_image_pixels": (png_declaring(101, 100), "the limit is 10000"),
    }
    for name, (data, words) in cases.items():
        started = time.monotonic()
        response = post(served, files={"image": ("x.png", data, "image/png")})
        body = refused(response, 400, words)
        assert ["image"] in [item["loc"][-1:] for item in body["detail"]], (name, body)
        assert time.monotonic() - started < 5, name


def test_a_body_over_max_request_bytes_gets_413(served: str) -> None:
    big = encoded("PNG") + b"\0" * (MAX_REQUEST_BYTES * 2)
    refused(post(served, files={"image": ("x.png", big, "image/png")}), 413, "too large")


def test_a_multipart_body_the_endpoint_does_not_take_gets_400(served: str) -> None:
    png = ("x.png", encoded("PNG"), "image/png")
    missing = post(served, data={"other": "1"}, files={"other_file": png})
    refused(missing, 400, "a file is required", "a file the endpoint does not take")
    # an unknown text field is ignored, as an unknown key of a JSON body is
    assert post(served, data={"note": "{}"}, files={"image": png}).status_code == 200
    refused(post(served, files=[("image", png), ("image", png)]), 400, "one file expected, got 2")
    # A file field sent as text: BentoML would fetch it as a URL; refused before BentoML sees it.
    refused(post(served, data={"image": "https://example.com/digit.png"}, files={"x": png}), 400, "a file part")
    many = [("image", png)] * 5
    refused(post(served, files=many), 400, "multipart body refused")
    empty = b"--b--\r\n"
    refused(post(served, content=empty, headers={"content-type": "multipart/form-data; boundary=b"}), 400, "required")
    garbage = b"\x00\x01 not multipart at all"
    response = post(served, content=garbage, headers={"content-type": "multipart/form-data; boundary=b"})
    refused(response, 400)


def test_a_body_that_is_not_multipart_gets_415(served: str) -> None:
    refused(post(served, json={"image": "iVBORw0KGgo="}), 415, "multipart/form-data")
    refused(post(served, content=encoded("PNG"), headers={"content-type": "image/png"}), 415, "image/png")
    no_boundary = post(served, content=b"x", headers={"content-type": "multipart/form-data"})
    assert refused(no_boundary, 415)["detail"]["expected"] == "multipart/form-data; boundary=..."
    refused(post(served, content=b""), 415)


def test_the_server_is_still_ready_after_every_hostile_upload(served: str) -> None:
    for _ in range(3):
        post(served, files={"image": ("x.png", png_declaring(60_000, 60_000), "image/png")})
    assert ready(served)
