"""Turn a :class:`ModelConfig` into BentoML service options and guards.

Kept free of a bentoml import so that `modelctl` and tests can use it without a server.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Collection
from pathlib import Path
from typing import Any

from modelkit.asgi import ASGIApp, Message, Receive, Scope, Send, send_json
from modelkit.config import ModelConfig
from modelkit.errors import bad_request

# Probe and metrics routes are never traced and never counted against max_concurrency.
INFRA_PATHS = ("/healthz", "/readyz", "/livez", "/metrics")


def service_options(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for ``@bentoml.service(**service_options(config))``."""
    serving = config.serving
    options: dict[str, Any] = {
        "name": config.name,
        "description": config.description,
        "labels": {"owner": config.owner, "framework": config.framework},
        "workers": serving.workers,
        "traffic": {"timeout": serving.timeout_s, "max_concurrency": serving.max_concurrency},
        "metrics": {"enabled": serving.metrics},
        "logging": {"access": {"enabled": serving.access_log}},
        "resources": resources(config),
    }
    if serving.concurrency == "threads":
        options["threads"] = serving.threads
    if not serving.tracing:
        # Tracing off means: skip OpenTelemetry's ASGI middleware for every route
        # (sample_rate=0 does not; only excluded_urls does).
        options["tracing"] = {"excluded_urls": [".*"]}
    return options


def body_deadline(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for :class:`BodyDeadline` (``build_service`` wraps the served app in it)."""
    serving = config.serving
    return {
        "max_bytes": serving.max_request_bytes,
        "timeout_s": serving.body_timeout_s,
        "grace_s": serving.body_grace_s,
        "min_rate": serving.body_min_bytes_per_s,
    }


def service_class(model_name: str) -> str:
    """The name of a model's service in its service.py (``bentoml serve service:<name>``), as the template
    derives it: ``iris_classifier`` -> ``IrisClassifier``."""
    return model_name.title().replace("_", "")


def resources(config: ModelConfig) -> dict[str, Any]:
    res = config.deploy.resources
    out: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpu:
        out["gpu"] = res.gpu
    return out


def api_options(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for the main ``@bentoml.api`` (batching from config)."""
    batching = config.serving.batching
    if not batching.enabled:
        return {}
    return {
        "batchable": True,
        "max_batch_size": config.serving.batch_rows,  # never below max_rows: a lone request is one call
        "max_latency_ms": batching.max_latency_ms,
    }


def error_body(message: str, detail: Any = None) -> dict[str, Any]:
    """An error body: ``{"error": str, "detail": ...}`` (the shapes are documented in modelkit.errors)."""
    body: dict[str, Any] = {"error": message}
    if detail is not None:
        body["detail"] = detail
    return body


# Headers a request may carry once: with two Content-Type headers this guard read the last and
# Starlette (so BentoML) the first, so form data slipped past the 415 (issue 15).
_SINGLE = (b"content-type", b"content-length")
_MAX_ECHO = 100  # characters of a header value repeated in an error body
# Set in the scope by BodyDeadline when a body arrived too slowly; RequestLimits answers it with 408.
LATE_BODY = "modelkit.late_body"


class RequestLimits:
    """ASGI middleware: refuse repeated headers (400), bodies :class:`BodyDeadline` found too slow (408),
    non-JSON bodies (415), bodies over ``max_bytes`` (413).

    BentoML reads the whole body before validation and has no size limit (an 84 MB body
    was parsed for 9 s here), so the limit is enforced while the body streams in: the
    Content-Length header is checked first, and chunked bodies are counted as they arrive.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, json_only: bool = True, upload_routes: Collection[str] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.json_only = json_only
        # Routes that take files (multipart/form-data): modelkit.uploads.UploadGuard checks their content type.
        self.upload_routes = frozenset(upload_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type: str | None = None
        declared: str | None = None
        repeated: list[str] = []
        for raw_key, raw_value in scope["headers"]:
            key = raw_key.lower()
            if key not in _SINGLE:
                continue
            value = raw_value.decode("latin-1")
            if key == b"content-type":
                if content_type is not None:
                    repeated.append("content-type")
                content_type = value
            else:
                if declared is not None:
                    repeated.append("content-length")
                declared = value
        if repeated:
            errors = [
                {"loc": ["header", name], "msg": "header sent more than once", "type": "duplicate_header"}
                for name in repeated
            ]
            await send_json(send, 400, bad_request(errors, "invalid request headers"))
            return
        late = scope.get(LATE_BODY)
        if late is not None:
            await send_json(send, 408, error_body("request body too slow", late))
            return
        if scope.get("method") not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        if self.json_only and not _is_json(content_type) and scope.get("path") not in self.upload_routes:
            shown = None if content_type is None else content_type[:_MAX_ECHO]
            await send_json(
                send,
                415,
                error_body("unsupported content type", {"content_type": shown, "expected": "application/json"}),
            )
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await send_json(send, 413, self._too_large(declared[:32]))
            return
        await self._guarded(scope, receive, send)

    def _too_large(self, size: str) -> dict[str, Any]:
        return error_body("request body too large", {"bytes": size, "max_bytes": self.max_bytes})

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"received": 0, "too_large": False, "started": False}

        async def counted_receive() -> Message:
            if state["too_large"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    # Pretend the client went away: the app stops reading and answers with
                    # an error, which guarded_send below replaces with the 413.
                    state["too_large"] = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not state["too_large"]:
                await send(message)
                return
            if message["type"] == "http.response.start" and not state["started"]:
                state["started"] = True
                await send_json(send, 413, self._too_large(f">{self.max_bytes}"))

        await self.app(scope, counted_receive, guarded_send)
        if state["too_large"] and not state["started"]:
            await send_json(send, 413, self._too_large(f">{self.max_bytes}"))


class BodyDeadline:
    """ASGI middleware, outermost: read a request's body, in time, before the rest of the app sees the request.

    BentoML counts a request against ``traffic.max_concurrency`` from its headers on, so clients that
    trickle a body in held the slots until ``timeout_s`` while every other request got 429: 256
    connections sending a byte every 10 s locked a service out (issue 20, item 7). Here a body may take
    ``grace_s`` plus one second per ``min_rate`` bytes received (``min_rate`` 0: no rate), never more
    than ``timeout_s``, and only then does the request go on, its body in hand. A body that is too slow
    goes on marked (``scope[LATE_BODY]``) and without its body, and :class:`RequestLimits` answers 408,
    inside BentoML's metrics. At most ``max_bytes`` + one chunk is held; what lies beyond is left for
    RequestLimits to refuse (413), as are a declared length over the limit and repeated headers,
    unread.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float, grace_s: float, min_rate: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.min_rate = min_rate

    def allowed_s(self, received: int) -> float:
        """How long a body may have taken once ``received`` bytes of it arrived."""
        if not self.min_rate:
            return self.timeout_s
        return min(self.timeout_s, self.grace_s + received / self.min_rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope["headers"], self.max_bytes):
            await self.app(scope, receive, send)
            return
        clock = asyncio.get_running_loop().time
        start = clock()
        chunks: list[bytes] = []
        received = 0
        more = True
        tail: Message | None = None
        while more and received <= self.max_bytes:
            try:
                async with asyncio.timeout(start + self.allowed_s(received) - clock()):
                    message = await receive()
            except TimeoutError:
                scope[LATE_BODY] = {
                    "received_bytes": received,
                    "seconds": round(clock() - start, 1),
                    "body_timeout_s": self.timeout_s,
                    "min_bytes_per_s": self.min_rate,
                }
                await self.app(scope, _disconnected, send)
                return
            if message["type"] != "http.request":  # the client went away: the app sees that after the body
                tail = message
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            received += len(chunk)
            more = bool(message.get("more_body", False))
        pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": more}]
        if tail is not None:
            pending.append(tail)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}


def _has_body(headers: list[tuple[bytes, bytes]], max_bytes: int) -> bool:
    """Whether BodyDeadline should read this request's body first: one is announced, within the limit,
    and the headers that describe it are not repeated (RequestLimits refuses those without reading)."""
    lengths = [value for key, value in headers if key.lower() == b"content-length"]
    if len(lengths) > 1 or sum(1 for key, _ in headers if key.lower() == b"content-type") > 1:
        return False
    if lengths:
        return lengths[0].isdigit() and 0 < int(lengths[0]) <= max_bytes
    return any(key.lower() == b"transfer-encoding" for key, _ in headers)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True  # BentoML treats a missing Content-Type as JSON; so do we
    media = content_type.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def freeze_gc() -> None:
    """Call at the end of a service's ``__init__``.

    Moves everything loaded so far (model, schemas) out of the collector's reach: measured
    here, full collections under load paused workers for up to 295 ms; freezing halved P99.
    """
    gc.collect()
    gc.freeze()


PIN_FILE = "modelctl-build/MODEL_TAG"


def model_ref(name: str, folder: Path) -> str:
    """The model a service loads: the tag pinned into its bento at build time, else ``name:latest``.

    Without the pin, a bento served from a shared model store would load whatever model is newest
    there, so a rollback would bring back the old code with the new model.
    """
    pinned = folder / PIN_FILE
    if pinned.is_file():
        return pinned.read_text(encoding="utf-8").strip()
    return f"{name}:latest"
