"""Fuzz a served model: schemathesis over its OpenAPI document plus hand-written hostile requests.

Pass = no 5xx; every error response is the documented error body (a JSON object with "error") and
at most ``max_error_bytes`` long; every response conforms to the service's own ``/docs.json`` (all
of schemathesis's checks: status code, content type, headers and body schema, negative data
rejected, positive data accepted); repeated Content-Type or Content-Length headers get 400; the
server log grows by at most ``max_log_bytes`` per bad request (when its path is given); the server
is still ready afterwards and its memory grew by less than the allowed bound.

Image fields (``input: image``, issue 21) get real images in schemathesis's positive cases, base64 in JSON or as
file parts (``modelctl.fuzz_formats``); its negative cases still send garbage, which must get a documented 4xx.
"""

from __future__ import annotations

import itertools
import json
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelctl import cmd, procs
from modelctl.fuzz_formats import FormatError, ImageSpec, image_specs, registered, require_pillow, write_hooks
from modelctl.fuzz_ndjson import failed_checks
from modelctl.processenv import model_process_env
from modelkit import MAX_ERROR_BYTES

# A bad request may add a line or two to the log (BentoML used to add a traceback with the values: ~3.8 MB
# for one request of 1,000 rows with 20 unknown keys, issue 15).
MAX_LOG_BYTES_PER_BAD_REQUEST = 2048
MAX_FAILURES = 50


@dataclass
class Failure:
    case: str
    status: int | None
    problem: str
    curl: str


@dataclass
class Outcome:
    """One hostile request: what it got and what it cost."""

    case: str
    status: int | None
    response_bytes: int
    seconds: float
    log_bytes: int | None = None


@dataclass
class FuzzResult:
    cases: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    ready_after: bool = True
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    max_growth_mb: float = 256.0
    max_error_bytes: int = MAX_ERROR_BYTES
    largest_error_bytes: int = 0
    max_log_bytes: int = MAX_LOG_BYTES_PER_BAD_REQUEST
    bad_requests: int = 0
    log_bytes: int | None = None  # growth of the server log over the whole run; None without a log
    conformance_checks: int = 0  # schemathesis check runs (responses validated against /docs.json)
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.by_status.items() if status.startswith("5"))

    @property
    def log_bytes_per_bad_request(self) -> float | None:
        if self.log_bytes is None:
            return None
        return self.log_bytes / max(1, self.bad_requests)

    def _log_too_big(self) -> bool:
        per_request = self.log_bytes_per_bad_request
        return per_request is not None and per_request > self.max_log_bytes

    @property
    def passed(self) -> bool:
        grew = self.rss_after_mb - self.rss_before_mb
        return not self.failures and self.ready_after and grew <= self.max_growth_mb and not self._log_too_big()

    def problems(self) -> list[str]:
        found = [f"{f.case}: {f.problem}" for f in self.failures[:5]]
        if not self.ready_after:
            found.append("the server is not ready after fuzzing")
        grew = self.rss_after_mb - self.rss_before_mb
        if grew > self.max_growth_mb:
            found.append(f"server memory grew {grew:.0f} MB (limit {self.max_growth_mb:.0f} MB)")
        if self._log_too_big():
            found.append(
                f"the server log grew {self.log_bytes_per_bad_request:.0f} bytes per bad request"
                f" (limit {self.max_log_bytes})"
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            passed=self.passed,
            server_errors=self.server_errors,
            log_bytes_per_bad_request=self.log_bytes_per_bad_request,
        )
        return data

    def fail(self, failure: Failure) -> None:
        """Record a failure once per case and problem; at most MAX_FAILURES."""
        first_line = failure.problem.splitlines()[0] if failure.problem else ""
        seen = {(f.case, f.problem.splitlines()[0] if f.problem else "") for f in self.failures}
        if (failure.case, first_line) not in seen and len(self.failures) < MAX_FAILURES:
            self.failures.append(failure)


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def check(status: int, body: bytes, max_error_bytes: int = MAX_ERROR_BYTES) -> str | None:
    """What is wrong with one response, or None."""
    if status >= 500:
        return f"server error {status}: {body[:200]!r}"
    if status >= 400:
        if len(body) > max_error_bytes:
            return f"{status} body of {len(body)} bytes (limit {max_error_bytes}): {body[:200]!r}"
        try:
            parsed = json.loads(body)
        except ValueError:
            return f"{status} with a non-JSON body: {body[:200]!r}"
        if not isinstance(parsed, dict) or "error" not in parsed:
            return f"{status} without the documented error body {{'error': ...}}: {body[:200]!r}"
    return None


def curl(method: str, url: str, headers: dict[str, str] | list[tuple[str, str]], body: bytes | None) -> str:
    parts = ["curl", "-sS", "-X", method]
    for key, value in headers.items() if isinstance(headers, dict) else headers:
        parts += ["-H", f"{key}: {value}"]
    if body is not None:
        shown = body if len(body) <= 2000 else body[:2000] + b"..."
        parts += ["--data-binary", shown.decode("utf-8", "replace")]
    return " ".join(shlex.quote(p) for p in parts + [url])


@dataclass(frozen=True)
class Hostile:
    name: str
    body: bytes | None
    content_type: str | None = "application/json"
    path: str = "/predict"
    # Extra headers, sent as given (repeats included); a request with any is sent over a raw socket.
    extra_headers: tuple[tuple[str, str], ...] = ()
    # None: any non-5xx documented error; else the status the request must get.
    expect: int | None = None

    def headers(self) -> list[tuple[str, str]]:
        base = [("content-type", self.content_type)] if self.content_type else []
        return base + list(self.extra_headers)


def many_errors_body(row: dict[str, Any], max_bytes: int, max_rows: int, keys: int = 20) -> bytes:
    """The error-amplification request of issue 15: up to max_rows rows, each with ``keys`` unknown keys."""
    wide = {**row, **{f"unknown_{i}": 1.5 for i in range(keys)}}
    rows = max_rows
    body = json.dumps({"instances": [wide] * rows}).encode()
    while len(body) > max_bytes and rows > 1:
        rows //= 2
        body = json.dumps({"instances": [wide] * rows}).encode()
    return body


def hostile_cases(sample: dict[str, Any], max_bytes: int, max_rows: int) -> Iterator[Hostile]:
    row = sample["instances"][0]
    first = next(iter(row))
    sample_body = json.dumps(sample).encode()
    yield Hostile("malformed JSON", b'{"instances": [')
    yield Hostile("not JSON at all", b"\x00\x01\x02 binary")
    yield Hostile("empty body", b"")
    yield Hostile("no body, no content type", None, None)
    yield Hostile("JSON null", b"null")
    yield Hostile("JSON array", b"[]")
    yield Hostile("wrong content type: text/plain", sample_body, "text/plain")
    yield Hostile("wrong content type: form", b"a=1&b=2", "application/x-www-form-urlencoded")
    yield Hostile("huge content type", sample_body, "application/x-" + "a" * 6000, expect=415)
    yield Hostile(
        "multipart body",
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
        "multipart/form-data; boundary=x",
    )
    yield Hostile("pickle content type", b"\x80\x04N.", "application/vnd.bentoml+pickle")
    yield Hostile("oversized body", b'{"instances": [' + b" " * (max_bytes + 1) + b"]}")
    too_many = json.dumps({"instances": [row] * (max_rows + 1)}).encode()
    yield Hostile("one row over max_rows", too_many)
    yield Hostile("huge array of numbers", b'{"instances": [' + b",".join([b"1"] * (max_bytes // 3)) + b"]}")
    yield Hostile("deeply nested JSON", b'{"instances": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    yield Hostile("many rows with 20 unknown keys each", many_errors_body(row, max_bytes, max_rows), expect=400)
    yield Hostile("one very long unknown key", json.dumps({"instances": [{**row, "k" * 100_000: 1}]}).encode())
    for token in ("NaN", "Infinity", "-Infinity", "1e999"):
        body = json.dumps({"instances": [{**row, first: 0}]}).replace(": 0", f": {token}", 1)
        yield Hostile(f"{token} value", body.encode())
    yield Hostile("string number", json.dumps({"instances": [{**row, first: str(row[first])}]}).encode())
    yield Hostile("unicode field name", json.dumps({"instances": [{**row, "p\u00e9tale\u2603": 1}]}).encode())
    yield Hostile("unicode value", json.dumps({"instances": [{**row, first: "\u2603\ud83d\ude00"}]}).encode())
    yield Hostile("invalid UTF-8", b'{"instances": [{"\xff\xfe": 1}]}')
    yield Hostile("extra top-level field", json.dumps({**sample, "debug": True}).encode())
    missing = dict(row)
    missing.pop(first)
    yield Hostile("missing field", json.dumps({"instances": [missing]}).encode())
    yield Hostile("empty instances", b'{"instances": []}')
    yield Hostile("metadata with garbage", b"{garbage", path="/metadata")
    # Issue 15: the guard read the last Content-Type, Starlette the first, so form data got past the 415.
    yield Hostile(
        "two Content-Type headers: form, then JSON",
        b"a=1&b=2",
        "application/x-www-form-urlencoded",
        extra_headers=(("content-type", "application/json"),),
        expect=400,
    )
    yield Hostile(
        "two Content-Type headers: JSON, then form",
        sample_body,
        extra_headers=(("content-type", "application/x-www-form-urlencoded"),),
        expect=400,
    )
    yield Hostile(
        "two Content-Length headers",
        sample_body,
        extra_headers=(("content-length", str(len(sample_body))),),
        expect=400,
    )


_BOUNDARY = "modelctl-fuzz"


def _multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart/form-data body (boundary ``_BOUNDARY``) of (field, filename or None for a text value, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{_BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += (b"Content-Type: image/png\r\n" if filename is not None else b"") + b"\r\n" + content + b"\r\n"
    return body + f"--{_BOUNDARY}--\r\n".encode()


def upload_routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(route, field) of every image file field of a multipart/form-data request body in an OpenAPI document."""
    found = []
    for route, methods in document.get("paths", {}).items():
        content = methods.get("post", {}).get("requestBody", {}).get("content", {})
        properties = content.get("multipart/form-data", {}).get("schema", {}).get("properties", {})
        found += [(route, name) for name, field in properties.items() if isinstance(field, dict) and image_specs(field)]
    return found


def upload_cases(route: str, field: str, max_bytes: int) -> Iterator[Hostile]:
    """Hostile uploads for an image file field (issue 21): each must get a documented 4xx, never a 5xx."""
    multipart = f"multipart/form-data; boundary={_BOUNDARY}"
    from modelkit.testing.hostile import png_declaring  # modelkit.testing needs pytest: only when fuzzing

    bomb = png_declaring(50_000, 40_000)  # a few hundred bytes declaring 2 gigapixels

    def case(name: str, body: bytes, content_type: str | None = multipart, expect: int | None = None) -> Hostile:
        return Hostile(f"{route} {name}", body, content_type, path=route, expect=expect)

    yield case("upload: not an image", _multipart((field, "x.png", b"hello, I am not an image")))
    yield case("upload: decompression bomb", _multipart((field, "bomb.png", bomb)))
    yield case("upload: truncated PNG", _multipart((field, "x.png", bomb[:40])))
    yield case("upload: empty file", _multipart((field, "x.png", b"")))
    yield case("upload: two files", _multipart((field, "a.png", bomb), (field, "b.png", bomb)))
    # BentoML 1.4 fetches a file field sent as text as a URL (modelkit.uploads refuses it first).
    yield case("upload: file field as text (a URL)", _multipart((field, None, b"https://example.com/x.png")))
    yield case("upload: missing file part", _multipart(("other", None, b"1")))
    yield case("upload: unknown file part", _multipart(("other", "x.png", b"\xff\xfe\x00binary")))
    yield case("upload: no parts", f"--{_BOUNDARY}--\r\n".encode())
    yield case("upload: not multipart", b"\x00\x01 garbage")
    yield case("upload: no boundary", _multipart((field, "x.png", bomb)), "multipart/form-data", expect=415)
    yield case("upload: JSON body", json.dumps({field: "iVBORw0KGgo="}).encode(), "application/json", expect=415)
    yield case("upload: oversized body", _multipart((field, "x.png", bomb + b"\0" * max_bytes)), expect=413)


def _send_raw(url: str, case: Hostile, timeout: float = 60) -> tuple[int, bytes]:
    """POST ``case`` over a plain socket, its headers exactly as given (HTTP clients merge repeats)."""
    parts = urlsplit(url)
    body = case.body or b""
    headers = [("content-length", str(len(body))), *case.headers()]
    head = f"POST {case.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    status = int(status_line.split()[1])
    if b"transfer-encoding: chunked" in header_block.lower():
        payload = _unchunk(payload)
    return status, payload


def _unchunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


class LogWatch:
    """How much a server log grows; waits for the writes of one request to land before measuring."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.start = self.size()

    def size(self) -> int:
        try:
            return self.path.stat().st_size if self.path is not None else 0
        except OSError:
            return 0

    def settled(self, quiet: float = 0.1, limit: float = 3.0, poll: float = 0.02) -> int:
        """The log's size once it has not changed for ``quiet`` seconds (at most ``limit`` seconds).

        A server writes a request's lines as it answers (the access line just after): 0.1 s of silence is
        ample on a loaded machine, and polling every 20 ms keeps some 40 hostile requests to a few seconds."""
        deadline = time.monotonic() + limit
        last, still_since = self.size(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(poll)
            now = self.size()
            if now != last:
                last, still_since = now, time.monotonic()
            elif time.monotonic() - still_since >= quiet:
                return now
        return last


def _curl_of(case: Hostile, headers: list[tuple[str, str]], target: str) -> Callable[[], str]:
    return lambda: curl("POST", target, headers, case.body)


def run_hostile(url: str, cases: Iterator[Hostile], result: FuzzResult, server_log: Path | None = None) -> None:
    import httpx

    watch = LogWatch(server_log)
    before = watch.settled() if server_log else 0
    with httpx.Client(timeout=60) as client:
        for case in cases:
            target = f"{url}{case.path}"
            headers = case.headers()
            make_curl = _curl_of(case, headers, target)
            started = time.monotonic()
            try:
                if case.extra_headers:
                    status, content = _send_raw(url, case)
                else:
                    response = client.post(target, content=case.body, headers=dict(headers))
                    status, content = response.status_code, response.content
            except (httpx.HTTPError, OSError, ValueError, IndexError) as exc:
                result.cases += 1
                result.fail(Failure(case.name, None, f"no response: {exc}", make_curl()))
                continue
            seconds = time.monotonic() - started
            after = watch.settled() if server_log else 0
            grew = after - before if server_log else None
            before = after
            result.outcomes.append(Outcome(case.name, status, len(content), round(seconds, 3), grew))
            record(result, case.name, status, content, make_curl, expect=case.expect, raw_http=bool(case.extra_headers))
            if grew is not None and status >= 400 and grew > result.max_log_bytes:
                result.fail(
                    Failure(
                        case.name,
                        status,
                        f"the server log grew {grew} bytes (limit {result.max_log_bytes})",
                        make_curl(),
                    )
                )


def record(
    result: FuzzResult,
    name: str,
    status: int,
    body: bytes,
    make_curl: Callable[[], str],
    expect: int | None = None,
    raw_http: bool = False,
) -> None:
    result.cases += 1
    result.by_status[str(status)] = result.by_status.get(str(status), 0) + 1
    if status >= 400:
        result.bad_requests += 1
        result.largest_error_bytes = max(result.largest_error_bytes, len(body))
    if expect is not None and status != expect:
        result.fail(Failure(name, status, f"expected {expect}, got {status}: {body[:200]!r}", make_curl()))
        return
    problem = check(status, body, result.max_error_bytes)
    # The HTTP parser itself may refuse a malformed request (e.g. uvicorn: two Content-Length headers)
    # with a short plain-text 400 before the app sees it: that is the expected refusal.
    if problem is not None and raw_http and status == expect and len(body) <= result.max_error_bytes:
        problem = None
    if problem is not None:
        result.fail(Failure(name, status, problem, make_curl()))


def _failure_text(exc: BaseException) -> str:
    title = getattr(exc, "title", type(exc).__name__)
    message = str(getattr(exc, "message", exc)).strip()
    return f"{title}: {message[:400]}" if message else str(title)


# What counts as refusing data that breaks the schema: schemathesis's defaults plus 413, the answer to a body over
# serving.max_request_bytes (refused before it is parsed). A negative case can grow past a small limit: without
# 413 here such a case was reported as "schema-violating request accepted" (an intermittent test failure).
NEGATIVE_REJECTIONS = ("400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx")


def _schemathesis_config() -> dict[str, Any]:
    return {"checks": {"negative_data_rejection": {"expected-statuses": list(NEGATIVE_REJECTIONS)}}}


def run_schemathesis(url: str, examples: int, result: FuzzResult, seed: int | None = None) -> None:
    """Positive and negative examples for every operation of the service's OpenAPI document.

    Each response is recorded (no 5xx, documented error body, size) and validated with every
    schemathesis check enabled by default: status code, content type, headers and body against
    the document, negative data rejected, positive data accepted.
    """
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig
    from schemathesis.core.result import Ok

    config = SchemathesisConfig.from_dict(_schemathesis_config())
    schema = schemathesis.openapi.from_url(f"{url}/docs.json", config=config)
    with _document_formats(schema.raw_schema, result):
        for item in schema.get_all_operations():
            if not isinstance(item, Ok):
                result.fail(Failure("/docs.json", None, f"an operation cannot be tested: {item.err()}", ""))
                continue
            operation = item.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if operation.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
                    continue  # probe and metrics routes take no input
                _schemathesis_test(url, operation, mode, examples, result, seed)()


@contextmanager
def _document_formats(document: dict[str, Any], result: FuzzResult) -> Iterator[None]:
    """Generators for the document's own formats (real images for image fields, issue 21) while schemathesis runs;
    a field fuzzing cannot generate for is a failure that says why."""
    try:
        specs = _usable(image_specs(document))
    except FormatError as exc:
        result.fail(Failure("/docs.json", None, str(exc), ""))
        specs = {}
    with registered(specs):
        yield


def _usable(specs: dict[str, ImageSpec]) -> dict[str, ImageSpec]:
    if specs:
        require_pillow()
    return specs


def _document_at(url: str, result: FuzzResult) -> dict[str, Any]:
    """The service's /docs.json ({} and a failure when it cannot be read)."""
    import httpx

    try:
        document = httpx.get(f"{url}/docs.json", timeout=60).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        result.fail(Failure("/docs.json", None, f"cannot read the document: {exc}", f"curl -sS {url}/docs.json"))
        return {}
    return document if isinstance(document, dict) else {}


def _image_specs_at(url: str, result: FuzzResult) -> dict[str, ImageSpec]:
    try:
        return _usable(image_specs(_document_at(url, result)))
    except FormatError as exc:
        result.fail(Failure("/docs.json", None, str(exc), ""))
    return {}


def _upload_routes_at(url: str, result: FuzzResult) -> list[tuple[str, str]]:
    try:
        return upload_routes(_document_at(url, result))
    except FormatError:
        return []  # reported where the formats are registered


def _schemathesis_test(
    url: str, operation: Any, mode: Any, examples: int, result: FuzzResult, seed: int | None
) -> Callable[[], None]:
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.core.failures import FailureGroup

    label = f"{operation.method.upper()} {operation.path} ({mode.value})"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        response = case.call(base_url=url, timeout=60)
        record(result, label, response.status_code, response.content, case.as_curl_command)
        result.conformance_checks += 1
        try:
            case.validate_response(response)
        except FailureGroup as group:
            for failure in group.exceptions:
                result.fail(Failure(label, response.status_code, _failure_text(failure), case.as_curl_command()))

    test: Callable[[], None] = send
    return test


def run_coverage(url: str, result: FuzzResult, timeout: float = 600) -> None:
    """schemathesis's own run, coverage phase, every check on: boundary values, missing or wrong bodies,
    methods the document does not list (405 with Allow). What an independent conformance run does."""
    document = f"{url}/docs.json"
    with tempfile.TemporaryDirectory(prefix="modelctl-fuzz-") as tmp:
        report = Path(tmp) / "schemathesis.json"
        cases = Path(tmp) / "schemathesis.ndjson"  # every request and answer: what a failure was
        config = Path(tmp) / "schemathesis.toml"
        statuses = ", ".join(json.dumps(status) for status in NEGATIVE_REJECTIONS)
        # A format registered in this process does not reach schemathesis's own run: its hooks file does.
        specs = _image_specs_at(url, result)
        hooks = f"hooks = {json.dumps(str(write_hooks(specs, Path(tmp))))}\n" if specs else ""
        config.write_text(
            f"{hooks}[checks.negative_data_rejection]\nexpected-statuses = [{statuses}]\n", encoding="utf-8"
        )
        argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", document]
        argv += ["--checks", "all", "--phases", "coverage"]
        argv += ["--workers", "1", "--report", "json,ndjson", "--report-json-path", str(report)]
        argv += ["--report-ndjson-path", str(cases)]
        # From the temporary folder: schemathesis keeps a cache folder (.schemathesis/) where it runs.
        # The allow-listed environment: schemathesis runs while the model's server is up, beside model code.
        env = model_process_env({"HOME": tmp})
        completed = cmd.run(argv, what="schemathesis", check=False, timeout=timeout, cwd=Path(tmp), env=env)
        reproduce = " ".join(shlex.quote(a) for a in ["schemathesis", *argv[5:11]])
        if not report.is_file():
            result.fail(Failure("schemathesis coverage", None, f"no report: {cmd.tail_of(completed.output)}", ""))
            return
        data = json.loads(report.read_text())
        # Each failed check with its request and answer; the summary's counts where the cases cannot be read.
        details = failed_checks(cases) if data.get("failures") and cases.is_file() else []
    result.conformance_checks += int(data.get("test_cases", {}).get("generated", 0))
    for check in details:
        # A request body too large to keep (or none recorded): schemathesis's own command reproduces it.
        kept = check.method and (check.request_body is not None or not check.request_bytes)
        shown = curl(check.method, check.url, list(check.headers), check.request_body) if kept else reproduce
        result.fail(Failure(f"schemathesis coverage: {check.operation}", check.status, check.problem(), shown))
    shown_codes = {(check.code, check.operation) for check in details}
    for found in data.get("failures", []):
        operations = [str(o) for o in found.get("operations", [])]
        if operations and all((str(found.get("code")), o) in shown_codes for o in operations):
            continue  # each of its operations has a case shown above
        where = ", ".join(operations) or "the API"
        problem = f"{found.get('code')} {found.get('title')} ({found.get('count')} cases)"
        result.fail(Failure(f"schemathesis coverage: {where}", None, problem, reproduce))
    for error in data.get("errors", []):
        result.fail(Failure("schemathesis coverage", None, f"error: {str(error)[:300]}", reproduce))


def fuzz(
    url: str,
    sample: dict[str, Any],
    max_bytes: int,
    max_rows: int,
    examples: int,
    server_pids: list[int],
    max_growth_mb: float = 256.0,
    server_log: Path | None = None,
    max_error_bytes: int = MAX_ERROR_BYTES,
    max_log_bytes: int = MAX_LOG_BYTES_PER_BAD_REQUEST,
    coverage: bool = True,
) -> FuzzResult:
    """Fuzz the server at ``url``: hostile cases, schemathesis fuzzing with every check on, then
    schemathesis's coverage phase (``coverage``). ``server_log`` (the server's log file) turns on the
    log-growth checks."""
    result = FuzzResult(max_growth_mb=max_growth_mb, max_error_bytes=max_error_bytes, max_log_bytes=max_log_bytes)
    watch = LogWatch(server_log)
    result.rss_before_mb = rss_mb(server_pids)
    uploads = [case for route, name in _upload_routes_at(url, result) for case in upload_cases(route, name, max_bytes)]
    run_hostile(url, itertools.chain(hostile_cases(sample, max_bytes, max_rows), uploads), result, server_log)
    run_schemathesis(url, examples, result)
    if server_log is not None:
        # Measured before the coverage run, whose requests are not counted one by one.
        result.log_bytes = watch.settled() - watch.start
    if coverage:
        run_coverage(url, result)
    result.ready_after = procs.healthy(url, timeout=10)
    result.rss_after_mb = rss_mb(server_pids)
    return result
