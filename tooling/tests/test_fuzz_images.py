"""Fuzzing image models (issue 21): schemathesis's positive cases carry real images of an allowed format, so a
service that refuses everything else is not reported as refusing valid data; negative cases still send garbage.

Against a real HTTP stand-in on 127.0.0.1 whose /predict validates rows with modelkit's own image type (the code a
served image model runs) and whose /docs.json documents the field as modelkit writes it."""

from __future__ import annotations

import base64
import email
import email.policy
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelctl.fuzz import FuzzResult, run_coverage, run_hostile, run_schemathesis, upload_cases, upload_routes
from modelctl.fuzz_formats import (
    BASE64_IMAGE,
    FormatError,
    ImageSpec,
    base64_images,
    dumps,
    image_bytes,
    image_specs,
    loads,
    registered,
    require_pillow,
    unregister,
    write_hooks,
)
from modelkit.errors import ERROR_SCHEMAS, bad_request
from modelkit.images import ImageError, ImageLimits, base64_image, file_schema, open_image
from tests.stand_ins import JsonAnswers, serving

try:
    import PIL.Image  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
except ImportError:  # pragma: no cover - the environment decides
    # modelctl needs Pillow to write images; CI never passes by skipping these tests.
    MISSING = "Pillow is not in modelctl's environment: pip install pillow"
    if os.environ.get("CI") == "true":
        pytest.fail(MISSING, pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)

LIMITS = ImageLimits(max_bytes=4096, max_pixels=100, formats=("PNG", "GIF"))
MAX_ROWS, MAX_BODY = 5, 60_000


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: base64_image(LIMITS)  # type: ignore[valid-type]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instances: Annotated[list[Row], Field(min_length=1, max_length=MAX_ROWS)]


def document(row: dict[str, Any], file_field: dict[str, Any]) -> dict[str, Any]:
    def error(name: str) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{name}"}
        return {"description": name, "content": {"application/json": {"schema": ref}}}

    request = {
        "type": "object",
        "required": ["instances"],
        "additionalProperties": False,
        "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": MAX_ROWS, "items": row}},
    }
    answer = {"type": "array", "items": {"type": "object", "required": ["pixels"], "properties": {"pixels": {}}}}
    upload = {"type": "object", "required": ["image"], "properties": {"image": file_field}}
    errors = {"400": error("BadRequest"), "413": error("PayloadTooLarge"), "415": error("UnsupportedMediaType")}
    return {
        "openapi": "3.0.2",
        "info": {"title": "image stand-in", "version": "1"},
        "paths": {
            "/predict": {
                "post": {
                    "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": answer}}},
                        **errors,
                    },
                }
            },
            "/predict_file": {
                "post": {
                    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": upload}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": answer}}},
                        **errors,
                    },
                }
            },
        },
        "components": {"schemas": json.loads(json.dumps(ERROR_SCHEMAS))},
    }


ROW_SCHEMA = Row.model_json_schema()
FILE_FIELD = {"type": "string", **file_schema(LIMITS)}
# The same fields as an image model documented them before issue 21's fix: "a base64 string", "a file".
PLAIN_ROW_SCHEMA = json.loads(json.dumps(ROW_SCHEMA))
for key in ("format", "contentMediaType", "x-image-formats", "x-max-image-bytes", "x-max-image-pixels"):
    PLAIN_ROW_SCHEMA["properties"]["image"].pop(key)
PLAIN_FILE_FIELD = {"type": "string", "format": "binary"}


def uploaded(content_type: str, raw: bytes) -> list[tuple[str, str | None, bytes]]:
    """(name, filename, content) of each part of a multipart/form-data body (the standard library's parser)."""
    message = email.message_from_bytes(
        f"content-type: {content_type}\r\n\r\n".encode("latin-1") + raw, policy=email.policy.HTTP
    )
    if not message.is_multipart():
        return []
    return [
        (part.get_param("name", header="content-disposition") or "", part.get_filename(), part.get_payload(decode=True))
        for part in message.iter_parts()
    ]


@contextmanager
def image_model(row_schema: dict[str, Any], file_field: dict[str, Any]) -> Iterator[str]:
    """A server that answers as a modelkit image model does: 200 for rows of decodable images within LIMITS
    (``/predict``, JSON) or one image file (``/predict_file``, multipart/form-data), the documented 400/413/415
    otherwise, 405 with Allow for other methods."""
    spec = json.dumps(document(row_schema, file_field)).encode()

    class Handler(JsonAnswers):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/docs.json":
                self.answer(200, json.loads(spec))
            else:
                self.not_allowed()

        def not_allowed(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.answer(405, {"error": "Method Not Allowed"}, (("allow", "POST"),))

        do_PUT = do_DELETE = do_PATCH = do_TRACE = do_OPTIONS = do_QUERY = not_allowed  # noqa: N815

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path == "/predict_file":
                return self.upload(raw)
            media = (self.headers.get("content-type") or "application/json").split(";")[0].strip()
            if media != "application/json":
                return self.answer(415, {"error": "x", "detail": {"content_type": media[:100], "expected": "j"}})
            if len(raw) > MAX_BODY:
                return self.answer(413, {"error": "too large", "detail": {"bytes": str(len(raw)), "max_bytes": 1}})
            try:
                request = Request.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                return self.answer(400, bad_request(exc.errors(include_input=False, include_context=False)))
            images = [open_image(base64.b64decode(row.image), LIMITS) for row in request.instances]
            return self.answer(200, [{"pixels": image.width * image.height} for image in images])

        def upload(self, raw: bytes) -> None:
            content_type = self.headers.get("content-type") or ""
            if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
                return self.answer(415, {"error": "x", "detail": {"content_type": content_type[:100], "expected": "m"}})
            if len(raw) > MAX_BODY:
                return self.answer(413, {"error": "too large", "detail": {"bytes": str(len(raw)), "max_bytes": 1}})
            files = [(name, data) for name, filename, data in uploaded(content_type, raw) if filename is not None]
            try:
                if [name for name, _ in files] != ["image"]:
                    raise ImageError("one file part named image expected")
                image = open_image(files[0][1], LIMITS)
            except ImageError as exc:
                return self.answer(400, bad_request([{"loc": ["image"], "msg": str(exc), "type": "value_error"}]))
            return self.answer(200, [{"pixels": image.width * image.height}])

    with serving(Handler) as url:
        yield url


def test_modelkit_documents_what_an_image_field_takes() -> None:
    field = ROW_SCHEMA["properties"]["image"]
    assert field["format"] == BASE64_IMAGE and field["contentEncoding"] == "base64"
    spec = ImageSpec(("PNG", "GIF"), 4096, 100)
    assert image_specs(document(ROW_SCHEMA, FILE_FIELD)) == {BASE64_IMAGE: spec, "binary": spec}
    assert image_specs(document(PLAIN_ROW_SCHEMA, PLAIN_FILE_FIELD)) == {}


def test_images_cannot_stand_for_other_files_of_the_document() -> None:
    with pytest.raises(FormatError, match="image file fields and other binary fields"):
        image_specs({"image": FILE_FIELD, "audio": PLAIN_FILE_FIELD})


def test_two_image_fields_share_the_stricter_limits() -> None:
    other = {**ROW_SCHEMA["properties"]["image"], "x-image-formats": ["GIF", "JPEG"], "x-max-image-pixels": 9}
    both = {"a": ROW_SCHEMA["properties"]["image"], "b": other}
    assert image_specs(both) == {BASE64_IMAGE: ImageSpec(("GIF",), 4096, 9)}
    with pytest.raises(FormatError, match="base64-image image fields have no format in common"):
        image_specs({**both, "c": {**other, "x-image-formats": ["WEBP"]}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x-image-formats": []}, "x-image-formats: a non-empty list"),
        ({"x-image-formats": ["PNG", "SVG"]}, "cannot write: SVG"),
        ({"x-max-image-pixels": 0}, "x-max-image-pixels: a positive integer, not 0"),
        ({"x-max-image-bytes": "4096"}, "x-max-image-bytes: a positive integer, not '4096'"),
    ],
)
def test_an_image_field_fuzzing_cannot_generate_for_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatError, match=message):
        image_specs({"image": {**ROW_SCHEMA["properties"]["image"], **change}})


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_every_generated_image_decodes_within_the_limits(fmt: str) -> None:
    spec = ImageSpec((fmt,), 2048, 30)
    limits = ImageLimits(spec.max_bytes, spec.max_pixels, spec.formats)

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=image_bytes(spec))
    def decodes(data: bytes) -> None:
        image = open_image(data, limits)  # modelkit's own check: format, bytes, pixels
        assert image.format == fmt and image.width * image.height <= 30

    decodes()


def test_base64_images_are_what_the_json_field_takes() -> None:
    @settings(max_examples=20, deadline=None, database=None)
    @given(text=base64_images(ImageSpec(LIMITS.formats, LIMITS.max_bytes, LIMITS.max_pixels)))
    def accepted(text: str) -> None:
        assert Row(image=text).image == text

    accepted()
    with pytest.raises(ValidationError):  # and the field refuses what the generator does not write
        Row(image=base64.b64encode(b"GIF89a" + b"\0" * 20).decode())


def test_without_pillow_the_failure_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(FormatError, match="needs Pillow in modelctl's environment: pip install pillow"):
        require_pillow()


def test_the_hooks_file_registers_the_images_in_the_process_that_loads_it(tmp_path: Path) -> None:
    from schemathesis.specs.openapi.formats import STRING_FORMATS

    specs = {BASE64_IMAGE: ImageSpec(("PNG",), 999, 16), "binary": ImageSpec(("GIF",), 500, 4)}
    path = write_hooks(specs, tmp_path)
    assert loads(dumps(specs)) == specs
    assert BASE64_IMAGE not in STRING_FORMATS
    with registered({}):
        assert BASE64_IMAGE not in STRING_FORMATS
    namespace: dict[str, Any] = {}
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - what schemathesis does with it
        assert BASE64_IMAGE in STRING_FORMATS and "binary" in STRING_FORMATS
    finally:
        unregister(specs)
    assert BASE64_IMAGE not in STRING_FORMATS and "binary" not in STRING_FORMATS


def served_images(result: FuzzResult) -> int:
    return result.by_status.get("200", 0)


def test_an_image_model_passes_schemathesis_with_real_images() -> None:
    """Positive cases are accepted (200: images were sent, in JSON and as files), negative ones refused with
    documented 4xx, and the coverage phase (schemathesis's CLI, another process: the hooks file) passes too."""
    result = FuzzResult()
    with image_model(ROW_SCHEMA, FILE_FIELD) as url:
        run_schemathesis(url, 25, result, seed=1)
        assert served_images(result) > 20, result.by_status
        assert result.by_status.get("400", 0) > 5, result.by_status  # negative cases: garbage still refused
        run_coverage(url, result)
    assert not result.failures, [(f.case, f.problem) for f in result.failures]
    assert result.server_errors == 0 and result.conformance_checks > 50


def test_without_the_format_valid_looking_strings_are_refused_and_reported() -> None:
    """The control: the fields as documented before (a base64 string, a file) make schemathesis send strings and
    bytes the service rightly refuses, reported as schema-valid requests rejected (what kept image models from
    deploying)."""
    result = FuzzResult()
    with image_model(PLAIN_ROW_SCHEMA, PLAIN_FILE_FIELD) as url:
        run_schemathesis(url, 25, result, seed=1)
    rejected = {f.case for f in result.failures if "Schema-valid request rejected" in f.problem}
    assert rejected == {"POST /predict (positive)", "POST /predict_file (positive)"}, result.failures


def test_a_generated_image_over_the_pixel_limit_would_be_refused() -> None:
    """What the stand-in checks is modelkit's own limit: the generator stays under it, not the server over it."""
    big = io.BytesIO()
    PIL.Image.new("L", (11, 10)).save(big, format="PNG")
    with pytest.raises(ImageError, match="110 pixels; the limit is 100"):
        open_image(big.getvalue(), LIMITS)


def test_hostile_uploads_get_documented_refusals() -> None:
    """The hand-written hostile uploads `modelctl fuzz` sends to every image file field (issue 21)."""
    assert upload_routes(document(ROW_SCHEMA, FILE_FIELD)) == [("/predict_file", "image")]
    assert upload_routes(document(ROW_SCHEMA, PLAIN_FILE_FIELD)) == []
    cases = list(upload_cases("/predict_file", "image", MAX_BODY))
    assert {"upload: two files", "upload: file field as text (a URL)", "upload: decompression bomb"} <= {
        c.name.split(" ", 1)[1] for c in cases
    }
    result = FuzzResult()
    with image_model(ROW_SCHEMA, FILE_FIELD) as url:
        run_hostile(url, iter(cases), result)
    assert not result.failures, [(f.case, f.status, f.problem) for f in result.failures]
    assert result.cases == len(cases) and set(result.by_status) == {"400", "413", "415"}, result.by_status
