"""What fuzzing generates for the string formats modelkit documents: real images for image fields (issue 21).

An image field in a model's ``/docs.json`` says what it takes (``modelkit.images``)::

    {"type": "string", "format": "base64-image", "contentEncoding": "base64", "contentMediaType": "image/*",
     "x-image-formats": ["PNG", "JPEG"], "x-max-image-bytes": 524288, "x-max-image-pixels": 4000000}

and an image uploaded as a file (multipart/form-data) is ``"format": "binary"`` with the same ``x-`` keys.

schemathesis knows no generator for ``base64-image`` and would send any string (``"0"``), or any bytes for a
``binary`` file, which the service rightly refuses with 400, and its positive-data check reports that as a
schema-valid request rejected. Registered here (for the run in this process and, through a hooks file, for
schemathesis's own CLI run), positive cases carry small decodable images of an allowed format within the limits;
negative cases are untouched (schemathesis does not build them from format generators), so garbage still has to get
a documented 4xx.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.images import BASE64_IMAGE_FORMAT as BASE64_IMAGE
from modelkit.images import IMAGE_FORMATS_KEY
from modelkit.images import MAX_IMAGE_BYTES_KEY as MAX_BYTES_KEY
from modelkit.images import MAX_IMAGE_PIXELS_KEY as MAX_PIXELS_KEY

# hypothesis is imported where strategies are made: modelctl's commands (and the pre-commit hooks that run them)
# load this module without it.
if TYPE_CHECKING:
    from hypothesis import strategies as st

BINARY = "binary"  # OpenAPI's format of a file (multipart/form-data); modelkit adds the x- keys to an image file

MAX_SIDE = 16  # generated images are at most 16 x 16: enough variety, a few hundred bytes
# Pillow modes each format writes (all of them can be 1 x 1).
_MODES = {
    "PNG": ("L", "RGB", "RGBA", "P"),
    "JPEG": ("L", "RGB"),
    "GIF": ("L", "P"),
    "BMP": ("L", "RGB"),
    "TIFF": ("L", "RGB"),
    "WEBP": ("RGB", "RGBA"),
}
_CHANNELS = {"L": 1, "P": 1, "RGB": 3, "RGBA": 4}


class FormatError(ValueError):
    """A document's image field that no generated image could satisfy (the message says which keyword)."""


@dataclass(frozen=True)
class ImageSpec:
    """What an image must be to be accepted: its formats (Pillow's names) and limits."""

    formats: tuple[str, ...]
    max_bytes: int
    max_pixels: int

    def merged(self, other: ImageSpec) -> ImageSpec:
        """What both accept: two image fields of one document share the format name, so the stricter limits."""
        formats = tuple(f for f in self.formats if f in other.formats)
        return ImageSpec(formats, min(self.max_bytes, other.max_bytes), min(self.max_pixels, other.max_pixels))

    def as_dict(self) -> dict[str, Any]:
        return {"formats": list(self.formats), "max_bytes": self.max_bytes, "max_pixels": self.max_pixels}

    @classmethod
    def of_dict(cls, data: dict[str, Any]) -> ImageSpec:
        return cls(tuple(data["formats"]), int(data["max_bytes"]), int(data["max_pixels"]))

    @classmethod
    def of_schema(cls, schema: dict[str, Any]) -> ImageSpec:
        """The spec of one image field's schema; :class:`FormatError` when its keywords say nothing usable."""
        formats = schema.get(IMAGE_FORMATS_KEY)
        if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
            raise FormatError(f"an image field needs {IMAGE_FORMATS_KEY}: a non-empty list of format names")
        unknown = sorted({f.upper() for f in formats} - set(_MODES))
        if unknown:
            raise FormatError(f"{IMAGE_FORMATS_KEY} has formats fuzzing cannot write: {', '.join(unknown)}")
        return cls(
            tuple(f.upper() for f in formats), _positive(schema, MAX_BYTES_KEY), _positive(schema, MAX_PIXELS_KEY)
        )


def _positive(schema: dict[str, Any], key: str) -> int:
    value = schema.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FormatError(f"an image field needs {key}: a positive integer, not {value!r}")
    return value


def _schemas(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node`` (a whole OpenAPI document), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def image_specs(document: dict[str, Any]) -> dict[str, ImageSpec]:
    """Format name (``base64-image``, ``binary``) -> what the document's image fields of that format accept (the
    stricter limits of all); empty without image fields."""
    specs: dict[str, ImageSpec] = {}
    other_files = False
    for schema in _schemas(document):
        name = schema.get("format")
        if name == BASE64_IMAGE or (name == BINARY and IMAGE_FORMATS_KEY in schema):
            found = ImageSpec.of_schema(schema)
            specs[name] = specs[name].merged(found) if name in specs else found
        elif name == BINARY:
            other_files = True
    if BINARY in specs and other_files:
        # One generator serves every `format: binary` field of a run: images would not do for the others.
        raise FormatError("the document has image file fields and other binary fields: fuzzing cannot tell them apart")
    for name, spec in specs.items():
        if not spec.formats:
            raise FormatError(f"the document's {name} image fields have no format in common")
    return specs


def _encode(fmt: str, mode: str, size: tuple[int, int], pixels: bytes) -> bytes:
    from PIL import Image  # type: ignore[import-not-found, unused-ignore]

    image = Image.frombytes("L" if mode == "P" else mode, size, pixels)
    if mode == "P":
        image = image.convert("P")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def image_bytes(spec: ImageSpec) -> st.SearchStrategy[bytes]:
    """Files of an allowed format, 1 x 1 to 16 x 16 pixels (within ``max_pixels``), at most ``max_bytes``."""
    from hypothesis import strategies as st

    require_pillow()
    side = max(1, min(MAX_SIDE, math.isqrt(spec.max_pixels)))

    @st.composite
    def files(draw: st.DrawFn) -> bytes:
        fmt = draw(st.sampled_from(spec.formats))
        mode = draw(st.sampled_from(_MODES[fmt]))
        width = draw(st.integers(1, side))
        height = draw(st.integers(1, max(1, min(side, spec.max_pixels // width))))
        count = width * height * _CHANNELS[mode]
        # A solid colour or noise: both ends of what compresses well and what does not.
        pixels = draw(st.one_of(st.binary(min_size=1, max_size=4).map(lambda b: (b * count)[:count]),
                                st.binary(min_size=count, max_size=count)))  # fmt: skip
        return _encode(fmt, mode, (width, height), pixels)

    return files().filter(lambda data: len(data) <= spec.max_bytes)


def base64_images(spec: ImageSpec) -> st.SearchStrategy[str]:
    """:func:`image_bytes` as the base64 text of a JSON field (RFC 4648, padded)."""
    return image_bytes(spec).map(lambda data: base64.b64encode(data).decode("ascii"))


def require_pillow() -> None:
    try:
        import PIL  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        raise FormatError(
            "fuzzing a model with image fields needs Pillow in modelctl's environment: pip install pillow"
        ) from None


def _strategy(name: str, spec: ImageSpec) -> st.SearchStrategy[Any]:
    return base64_images(spec) if name == BASE64_IMAGE else image_bytes(spec)


def register(specs: dict[str, ImageSpec]) -> None:
    """Make schemathesis generate images for these formats (in this process)."""
    import schemathesis

    for name, spec in specs.items():
        schemathesis.openapi.format(name, _strategy(name, spec))


def unregister(specs: dict[str, ImageSpec]) -> None:
    """Back to schemathesis's own generators for these formats."""
    from schemathesis.specs.openapi.formats import STRING_FORMATS, unregister_string_format

    for name in specs:
        if name in STRING_FORMATS:
            unregister_string_format(name)


@contextmanager
def registered(specs: dict[str, ImageSpec]) -> Iterator[None]:
    """``specs`` registered for the duration."""
    register(specs)
    try:
        yield
    finally:
        unregister(specs)


def dumps(specs: dict[str, ImageSpec]) -> str:
    return json.dumps({name: spec.as_dict() for name, spec in specs.items()})


def loads(text: str) -> dict[str, ImageSpec]:
    return {name: ImageSpec.of_dict(data) for name, data in json.loads(text).items()}


_HOOKS = '''\
"""schemathesis hooks written by modelctl fuzz: real images for the document's image fields."""

from modelctl.fuzz_formats import loads, register

register(loads({specs!r}))
'''


def write_hooks(specs: dict[str, ImageSpec], folder: Path) -> Path:
    """A hooks file for schemathesis's CLI (``hooks = "<path>"`` in its config): it runs in another process,
    which the registration in this one does not reach."""
    path = folder / "modelctl_fuzz_hooks.py"
    path.write_text(_HOOKS.format(specs=dumps(specs)), encoding="utf-8")
    return path
