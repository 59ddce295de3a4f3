"""Endpoints that take uploaded files (multipart/form-data, issue 21): the guard in front of BentoML's parser.

An ``@bentoml.api`` parameter typed ``Path`` (``modelkit.images.image_file``) makes BentoML 1.4 read the request as
multipart/form-data. Its parser (``_bentoml_impl.serde.MultipartSerde``) trusts the body more than a service may:
a file field sent as a text value is fetched as a URL (any public address, of any size, outside
``serving.max_request_bytes``), every part of a repeated field is read (or fetched) and the first kept, and a file
part the endpoint does not take is parsed as JSON (binary content: a 500). :class:`UploadGuard` answers those before
BentoML sees them:

- 415 unless the body is ``multipart/form-data`` with a boundary (the JSON routes keep their own 415);
- 400 naming the field (the documented ``BadRequest`` body): a file field missing, sent twice, or sent as text
  rather than a file part; a file part the endpoint does not take; a body that is not well-formed multipart.

Text fields the endpoint does not take are ignored, as unknown top-level keys of a JSON body are (the document
allows them: BentoML's request schemas do not forbid additional properties).

The body's size is :class:`modelkit.serving.RequestLimits`'s to refuse (413), before this guard reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelkit.asgi import ASGIApp, Message, Receive, Scope, Send, send_json
from modelkit.errors import bad_request

MULTIPART = "multipart/form-data"
_MAX_ECHO = 100  # characters of a header value repeated in an error body
_MAX_FIELDS = 1000  # text fields in one body: starlette's default, what BentoML's own parse allows


@dataclass(frozen=True)
class UploadRoute:
    """The fields of one endpoint that takes files: ``files`` are file parts, ``fields`` plain values."""

    files: frozenset[str]
    fields: frozenset[str] = frozenset()


def upload_routes(service: Any) -> dict[str, UploadRoute]:
    """Route -> its fields, for every endpoint of a ``bentoml.Service`` that takes files (multipart/form-data)."""
    routes: dict[str, UploadRoute] = {}
    for api in service.apis.values():
        spec = api.input_spec
        files = frozenset(getattr(spec, "multipart_fields", ()))
        if files:
            routes[api.route] = UploadRoute(files, frozenset(spec.model_fields) - files)
    return routes


class UploadGuard:
    """ASGI middleware: the checks of this module's docstring, for POST requests to ``routes``."""

    def __init__(self, app: ASGIApp, routes: Mapping[str, UploadRoute]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type")
        if not _is_multipart(content_type):
            shown = None if content_type is None else content_type[:_MAX_ECHO]
            detail = {"content_type": shown, "expected": f"{MULTIPART}; boundary=..."}
            await send_json(send, 415, {"error": "unsupported content type", "detail": detail})
            return
        messages, complete = await _read_body(receive)
        # Incomplete: the client went away, or RequestLimits cut an oversized body (its 413 answers it).
        errors = await _form_errors(scope, messages, route) if complete else []
        if errors:
            await send_json(send, 400, bad_request(errors, "invalid multipart body"))
            return
        await self.app(scope, _replay(messages, receive), send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _is_multipart(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media, _, params = content_type.partition(";")
    return media.strip().lower() == MULTIPART and "boundary=" in params.lower()


async def _read_body(receive: Receive) -> tuple[list[Message], bool]:
    """The request's messages up to the end of its body; False when it did not end (a disconnect came first)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False
        if not message.get("more_body", False):
            return messages, True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _error(loc: str | None, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body"] if loc is None else ["body", loc], "msg": msg, "type": kind}


async def _form_errors(scope: Scope, messages: list[Message], route: UploadRoute) -> list[dict[str, Any]]:
    """What is wrong with the multipart body in ``messages`` for ``route``: pydantic-style errors, or none."""
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.requests import Request

    async def nothing_more() -> Message:
        return {"type": "http.disconnect"}

    request = Request(scope, _replay(messages, nothing_more))
    try:
        # One file per file field, and one more so that a repeat or an extra file is seen; text fields as BentoML.
        form = await request.form(max_files=len(route.files) + 1, max_fields=_MAX_FIELDS)
    except HTTPException as exc:  # starlette's answer to a malformed body or too many parts
        return [_error(None, f"multipart body refused: {str(exc.detail)[:_MAX_ECHO]}", "multipart")]
    except (ValueError, KeyError, UnicodeError):  # python-multipart on a broken boundary or header
        return [_error(None, "not a well-formed multipart body", "multipart")]
    try:
        errors: list[dict[str, Any]] = []
        for name in sorted(route.files):
            values = form.getlist(name)
            if not values:
                errors.append(_error(name, "a file is required", "missing"))
            elif len(values) > 1:
                errors.append(_error(name, f"one file expected, got {len(values)}", "too_many_files"))
            elif not isinstance(values[0], UploadFile):
                errors.append(_error(name, "a file part (with a filename) expected, got a text value", "file_type"))
        for name, value in form.multi_items():
            if name not in route.files and isinstance(value, UploadFile):
                errors.append(_error(name[:_MAX_ECHO], "a file the endpoint does not take", "extra_forbidden"))
        return errors
    finally:
        await form.close()
