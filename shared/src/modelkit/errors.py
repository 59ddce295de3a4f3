"""Error responses every model service returns: bounded in size, quiet in the log, and documented.

BentoML 1.4 answers a request that fails validation with every pydantic error (``detail``: a list)
and logs the exception with its traceback and the offending values (``_bentoml_impl/server/app.py``,
``api_endpoint_wrapper`` -> ``log_exception``). One 266 KB request of 1,000 rows with 20 unknown
keys each got a 3 MB answer and ~3.8 MB of log (issue 15). Its OpenAPI document says ``detail`` is
a string. Here:

- :class:`ErrorBodies` (ASGI middleware) rewrites every JSON error body the app produces into the
  documented shape: a 400 lists at most ``MAX_ITEMS`` kinds of error, each once with its count (an
  unknown key in 1,000 rows is one entry), plus the total; no body exceeds ``MAX_ERROR_BYTES``. It
  also rewrites ``/docs.json`` so the document describes the bodies actually returned.
- :class:`ClientErrorLogFilter` (a :class:`logging.Filter`) turns BentoML's traceback for a client
  error into one line without request values.

Kept free of a bentoml import: the middleware and the filter only see ASGI messages and log records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from modelkit.asgi import ASGIApp, Message, Receive, Scope, Send

MAX_ERROR_BYTES = 8192
MAX_ITEMS = 20
_MAX_MSG = 200
_MAX_NAME = 64
_MAX_LOC = 8
_MAX_ERROR_TEXT = 300

# Where BentoML 1.4 logs an exception raised while handling a request (log_exception()).
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
CLIENT_ERROR_LINE = "client error on "  # how each client error's one log line starts (ClientErrorLogFilter)

_REF = "#/components/schemas/{}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loc_part(part: Any) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    return _short(str(part), _MAX_NAME)


def bad_request(errors: Iterable[Any], message: str = "invalid request") -> dict[str, Any]:
    """The 400 body for a list of pydantic-style errors (``{"loc", "msg", "type"}``), bounded.

    Errors of the same type at the same path (row indices ignored) are one entry with a count,
    so an unknown key repeated in every row is reported once; at most ``MAX_ITEMS`` entries.
    """
    groups: dict[tuple[str, tuple[str | int, ...]], dict[str, Any]] = {}
    total = 0
    for error in errors:
        total += 1
        item = error if isinstance(error, dict) else {"msg": str(error)}
        raw_loc = item.get("loc") or ()
        loc = [_loc_part(p) for p in (raw_loc if isinstance(raw_loc, list | tuple) else (raw_loc,))][:_MAX_LOC]
        kind = _short(str(item.get("type", "invalid")), _MAX_NAME)
        key = (kind, tuple("*" if isinstance(p, int) else p for p in loc))
        if key in groups:
            groups[key]["count"] += 1
        elif len(groups) < MAX_ITEMS:
            groups[key] = {"loc": loc, "msg": _short(str(item.get("msg", "")), _MAX_MSG), "type": kind, "count": 1}
    detail = list(groups.values())
    noun = "error" if total == 1 else "errors"
    body: dict[str, Any] = {"error": f"{message}: {total} validation {noun}", "detail": detail, "count": total}
    while detail and len(_dumps(body)) > MAX_ERROR_BYTES:
        detail.pop()
    return body


def plain_error(status: int, message: str | None = None) -> dict[str, Any]:
    """The body of any other error status: ``{"error": str}``."""
    text = message if message else _phrase(status)
    return {"error": _short(text, _MAX_ERROR_TEXT)}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def bounded_error_body(status: int, body: bytes) -> bytes:
    """Rewrite the JSON error body an app produced into the documented, bounded shape."""
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and len(parsed) == 1 and isinstance(parsed[0], dict):
        parsed = parsed[0]  # BentoML answers other 4xx with a one-item list: ({"error": ...},)
    message = parsed.get("error") if isinstance(parsed, dict) else None
    if status == 400:
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        if isinstance(detail, list) and detail:
            return _dumps(bad_request(detail))
        text = message if isinstance(message, str) and message else "invalid request"
        return _dumps(bad_request([{"loc": [], "msg": _short(text, _MAX_MSG), "type": "invalid_request"}]))
    return _dumps(plain_error(status, message if isinstance(message, str) else None))


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- the OpenAPI document -------------------------------------------------------------------

ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorItem": {
        "type": "object",
        "description": "One kind of validation error: where, what, and how many times it occurred.",
        "required": ["loc", "msg", "type", "count"],
        "properties": {
            "loc": {
                "type": "array",
                "description": "path to the value: field names and row indices (the first occurrence)",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"type": "string"},
            "type": {"type": "string", "description": "pydantic error type, e.g. extra_forbidden, missing"},
            "count": {"type": "integer", "minimum": 1, "description": "occurrences of this error in the request"},
        },
    },
    "BadRequest": {
        "type": "object",
        "description": f"The request is invalid. At most {MAX_ITEMS} kinds of error are listed; `count` is the total.",
        "required": ["error", "detail", "count"],
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": "array", "maxItems": MAX_ITEMS, "items": {"$ref": _REF.format("ErrorItem")}},
            "count": {"type": "integer", "minimum": 0},
        },
    },
    "PayloadTooLarge": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string"},
            "detail": {
                "type": "object",
                "required": ["bytes", "max_bytes"],
                "properties": {
                    "bytes": {"type": "string", "description": "the declared length, or >max_bytes when streamed"},
                    "max_bytes": {"type": "integer"},
                },
            },
        },
    },
    "RequestTimeout": {
        "type": "object",
        "description": "The body arrived too slowly: the connection is closed.",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string"},
            "detail": {
                "type": "object",
                "required": ["received_bytes", "seconds", "body_timeout_s", "min_bytes_per_s"],
                "properties": {
                    "received_bytes": {"type": "integer", "minimum": 0},
                    "seconds": {"type": "number", "description": "how long the body had been arriving"},
                    "body_timeout_s": {"type": "number"},
                    "min_bytes_per_s": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "UnsupportedMediaType": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string"},
            "detail": {
                "type": "object",
                "required": ["content_type", "expected"],
                "properties": {
                    "content_type": {"type": "string", "nullable": True},
                    "expected": {"type": "string"},
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "description": "Any other error.",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
}

# What an API operation can answer besides 200, and the body of each.
_API_ERRORS: dict[str, tuple[str, str]] = {
    "400": ("Invalid request: bad JSON, a field missing, unknown, of the wrong type or out of range", "BadRequest"),
    "404": ("Not Found (input: entity, an id the feature store holds no features for; the error names it)", "Error"),
    "408": ("Body slower than serving.body_min_bytes_per_s or longer than serving.body_timeout_s", "RequestTimeout"),
    "413": ("Request body larger than serving.max_request_bytes", "PayloadTooLarge"),
    "415": ("Content type other than JSON (multipart/form-data on an upload route)", "UnsupportedMediaType"),
    "429": ("More requests in flight than serving.max_concurrency", "Error"),
    "500": ("Internal Server Error", "Error"),
    "503": ("Service Unavailable (e.g. the batch queue is full)", "Error"),
    "504": ("Not answered within serving.timeout_s", "Error"),
}
_PROBES = ("/healthz", "/livez", "/readyz")
_BENTOML_ERROR_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError")


def document_errors(document: dict[str, Any]) -> dict[str, Any]:
    """The service's OpenAPI document with the error bodies it really returns, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _BENTOML_ERROR_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(ERROR_SCHEMAS)
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if method == "post" and _has_required_fields(operation.get("requestBody"), schemas):
                # BentoML leaves the body optional, but an absent body is `{}`, which lacks these: a 400.
                operation["requestBody"]["required"] = True
            if method == "post":
                for status, (description, schema) in _API_ERRORS.items():
                    responses[status] = {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": _REF.format(schema)}}},
                    }
            elif path in _PROBES:
                responses.setdefault("503", {"description": "Not ready or not alive (plain text)"})
    return document


def _has_required_fields(body: Any, schemas: dict[str, Any]) -> bool:
    if not isinstance(body, dict):
        return False
    for media in body.get("content", {}).values():
        schema = media.get("schema", {}) if isinstance(media, dict) else {}
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = schemas.get(ref.rsplit("/", 1)[-1], {})
        if schema.get("required"):
            return True
    return False


# --- the middleware ---------------------------------------------------------------------------


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class ErrorBodies:
    """ASGI middleware: bounded, documented error bodies, and a ``/docs.json`` that describes them.

    A JSON response with status >= 400 is held back, rewritten by :func:`bounded_error_body` and
    sent with its new length; successful responses stream through untouched.
    """

    def __init__(self, app: ASGIApp, docs_path: str = "/docs.json") -> None:
        self.app = app
        self.docs_path = docs_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.docs_path and scope.get("method") == "GET":
            await self.app(scope, receive, _Rewriting(send, _rewrite_document, statuses=(200,)))
            return
        await self.app(scope, receive, _Rewriting(send, bounded_error_body, statuses=None))


def _rewrite_document(status: int, body: bytes) -> bytes:  # noqa: ARG001 - same signature as bounded_error_body
    return json.dumps(document_errors(json.loads(body))).encode()


class _Rewriting:
    """A ``send`` that buffers a JSON response it should rewrite, then sends the rewritten body."""

    def __init__(self, send: Send, rewrite: Callable[[int, bytes], bytes], statuses: tuple[int, ...] | None) -> None:
        self.send = send
        self.rewrite = rewrite
        self.statuses = statuses
        self.held: Message | None = None
        self.chunks: list[bytes] = []

    def _wanted(self, message: Message) -> bool:
        status = int(message["status"])
        if (status < 400) if self.statuses is None else (status not in self.statuses):
            return False
        content_type = _header(message.get("headers", []), b"content-type") or b""
        return content_type.split(b";")[0].strip().lower() == b"application/json"

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self._wanted(message):
                self.held = message
                return
        elif message["type"] == "http.response.body" and self.held is not None:
            self.chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            held, self.held = self.held, None
            body = self.rewrite(int(held["status"]), b"".join(self.chunks))
            headers = [(k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self.send({**held, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
            return
        await self.send(message)


# --- the log ----------------------------------------------------------------------------------


def _client_error(exc: BaseException | None) -> str | None:
    """A one-line summary of an exception a client caused, without its values; None for others."""
    if exc is None:
        return None
    name = type(exc).__name__
    counter = getattr(exc, "error_count", None)
    if name == "ValidationError" and callable(counter):
        return f"{counter()} validation errors"  # the count only: listing them is what made the log grow
    if name == "ClientDisconnect":
        return "client disconnected (or the body was cut off at serving.max_request_bytes)"
    status = getattr(getattr(exc, "error_code", None), "value", None)
    if isinstance(status, int) and 400 <= status < 500:
        return f"{status} {name}"
    return None


class ClientErrorLogFilter(logging.Filter):
    """Log a client error as one INFO line: no traceback, no request values.

    Server errors (5xx) keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        summary = _client_error(record.exc_info[1] if record.exc_info else None)
        if summary is None:
            return True
        where = record.getMessage().removeprefix("Exception on ")
        record.msg = CLIENT_ERROR_LINE + "%s: %s"
        record.args = (where, summary)
        record.exc_info = None
        record.exc_text = None
        record.levelno = logging.INFO
        record.levelname = logging.getLevelName(logging.INFO)
        return True


CLIENT_ERROR_FILTER = ClientErrorLogFilter()


def quiet_client_errors(logger_name: str = BENTOML_REQUEST_LOGGER) -> None:
    """Attach :class:`ClientErrorLogFilter` to BentoML's request logger (idempotent)."""
    logging.getLogger(logger_name).addFilter(CLIENT_ERROR_FILTER)
