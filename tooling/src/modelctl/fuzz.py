"""Fuzz a served model: schemathesis over its OpenAPI document plus hand-written hostile requests.

Pass = no 5xx, every error response is the documented error body (a JSON object with "error"),
the server is still ready afterwards, and its memory grew by less than the allowed bound.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelctl import procs


@dataclass
class Failure:
    case: str
    status: int | None
    problem: str
    curl: str


@dataclass
class FuzzResult:
    cases: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    ready_after: bool = True
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    max_growth_mb: float = 256.0

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.by_status.items() if status.startswith("5"))

    @property
    def passed(self) -> bool:
        grew = self.rss_after_mb - self.rss_before_mb
        return not self.failures and self.ready_after and grew <= self.max_growth_mb

    def problems(self) -> list[str]:
        found = [f"{f.case}: {f.problem}" for f in self.failures[:5]]
        if not self.ready_after:
            found.append("the server is not ready after fuzzing")
        grew = self.rss_after_mb - self.rss_before_mb
        if grew > self.max_growth_mb:
            found.append(f"server memory grew {grew:.0f} MB (limit {self.max_growth_mb:.0f} MB)")
        return found

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(passed=self.passed, server_errors=self.server_errors)
        return data


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


def check(status: int, body: bytes) -> str | None:
    """What is wrong with one response, or None."""
    if status >= 500:
        return f"server error {status}: {body[:200]!r}"
    if status >= 400:
        try:
            parsed = json.loads(body)
        except ValueError:
            return f"{status} with a non-JSON body: {body[:200]!r}"
        if not isinstance(parsed, dict) or "error" not in parsed:
            return f"{status} without the documented error body {{'error': ...}}: {body[:200]!r}"
    return None


def curl(method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
    parts = ["curl", "-sS", "-X", method]
    for key, value in headers.items():
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


def hostile_cases(sample: dict[str, Any], max_bytes: int, max_rows: int) -> Iterator[Hostile]:
    row = sample["instances"][0]
    first = next(iter(row))
    yield Hostile("malformed JSON", b'{"instances": [')
    yield Hostile("not JSON at all", b"\x00\x01\x02 binary")
    yield Hostile("empty body", b"")
    yield Hostile("no body, no content type", None, None)
    yield Hostile("JSON null", b"null")
    yield Hostile("JSON array", b"[]")
    yield Hostile("wrong content type: text/plain", json.dumps(sample).encode(), "text/plain")
    yield Hostile("wrong content type: form", b"a=1&b=2", "application/x-www-form-urlencoded")
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


def run_hostile(url: str, cases: Iterator[Hostile], result: FuzzResult) -> None:
    import httpx

    with httpx.Client(timeout=60) as client:
        for case in cases:
            headers = {"content-type": case.content_type} if case.content_type else {}
            target = f"{url}{case.path}"
            try:
                response = client.post(target, content=case.body, headers=headers)
            except httpx.HTTPError as exc:
                result.cases += 1
                result.failures.append(
                    Failure(case.name, None, f"no response: {exc}", curl("POST", target, headers, case.body))
                )
                continue
            record(
                result,
                case.name,
                response.status_code,
                response.content,
                lambda c=case, h=headers, t=target: curl("POST", t, h, c.body),
            )


def record(result: FuzzResult, name: str, status: int, body: bytes, make_curl: Callable[[], str]) -> None:
    result.cases += 1
    result.by_status[str(status)] = result.by_status.get(str(status), 0) + 1
    problem = check(status, body)
    if problem is not None:
        result.failures.append(Failure(name, status, problem, make_curl()))


def run_schemathesis(url: str, examples: int, result: FuzzResult, seed: int | None = None) -> None:
    """Positive and negative examples for every operation of the service's OpenAPI document."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    for item in schema.get_all_operations():
        operation = item.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if operation.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
                continue  # probe and metrics routes take no input

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
                record(result, label, response.status_code, response.content, case.as_curl_command)  # noqa: B023

            send()


def fuzz(
    url: str,
    sample: dict[str, Any],
    max_bytes: int,
    max_rows: int,
    examples: int,
    server_pids: list[int],
    max_growth_mb: float = 256.0,
) -> FuzzResult:
    result = FuzzResult(max_growth_mb=max_growth_mb)
    result.rss_before_mb = rss_mb(server_pids)
    run_hostile(url, hostile_cases(sample, max_bytes, max_rows), result)
    run_schemathesis(url, examples, result)
    result.ready_after = procs.healthy(url, timeout=10)
    result.rss_after_mb = rss_mb(server_pids)
    return result
