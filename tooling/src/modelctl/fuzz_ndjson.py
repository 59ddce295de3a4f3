"""Which request got which answer in schemathesis's own run (``modelctl.fuzz.run_coverage``), from its NDJSON report.

The run's JSON summary names a failure by its code and count only ("ST101 Server error (1 cases)"): not the request,
nor the status and body it got, which is what a 5xx seen once in CI needs to be understood. The NDJSON report holds
every case's request, response and checks; :func:`failed_checks` reads the failed checks out of it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BODY_CHARS = 300  # of a response body quoted in a failure
MAX_REQUEST_BYTES = 1_048_576  # of a request body kept for the curl that reproduces it (curl() shortens its display)


@dataclass(frozen=True)
class FailedCheck:
    """One failed check of one case: what was sent and what came back."""

    operation: str  # "POST /predict"
    check: str  # schemathesis's check name: not_a_server_error, ...
    title: str  # the failure's title: "Server error", ...
    code: str  # its code: ST101, ...
    status: int | None  # None: no response (a timeout, a reset) or none recorded
    body: str  # the response body, cut to MAX_BODY_CHARS
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    request_body: bytes | None  # None when absent or over MAX_REQUEST_BYTES
    request_bytes: int

    def problem(self) -> str:
        if self.status is not None:
            answer = f"answered {self.status} to a request of {self.request_bytes} bytes"
        elif self.method:
            answer = f"no response to a request of {self.request_bytes} bytes"
        else:
            answer = "no request or response recorded"
        text = f"{self.code} {self.title} ({self.check}): {answer}"
        if self.body:
            text += f": {self.body}"
        return text


def failed_checks(path: Path, limit: int = 5) -> list[FailedCheck]:
    """The first ``limit`` failed checks in the NDJSON report at ``path``, one per (operation, check, status)."""
    found: list[FailedCheck] = []
    seen: set[tuple[str, str, int | None]] = set()
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"ScenarioFinished"' not in line[:64]:
                continue  # only the finished scenarios carry cases, checks and interactions
            try:
                event = json.loads(line)["ScenarioFinished"]
                recorder = event.get("recorder") if isinstance(event, dict) else None
                failures = _scenario_failures(recorder) if isinstance(recorder, dict) else []
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a layout this reader does not know: the run's summary still names the failure
            for failed in failures:
                key = (failed.operation, failed.check, failed.status)
                if key not in seen:
                    seen.add(key)
                    found.append(failed)
                if len(found) >= limit:
                    return found
    return found


def _scenario_failures(recorder: dict[str, Any]) -> list[FailedCheck]:
    operation = _clean(str(recorder.get("label") or "the API"))
    interactions = _dict(recorder.get("interactions"))
    failures = []
    for case_id, checks in _dict(recorder.get("checks")).items():
        for check in checks if isinstance(checks, list) else []:
            if not isinstance(check, dict) or check.get("status") != "failure":
                continue
            failure = _dict(_dict(check.get("failure_info")).get("failure"))
            interaction = _dict(interactions.get(case_id))
            request = _dict(interaction.get("request"))
            response = _dict(interaction.get("response"))
            status = response.get("status_code")
            sent = _bytes(request.get("body"))
            failures.append(
                FailedCheck(
                    operation=operation,
                    check=_clean(str(check.get("name", "?"))),
                    title=_clean(str(failure.get("title", ""))),
                    code=_clean(str(failure.get("code", ""))),
                    status=status if isinstance(status, int) else None,
                    body=_clean(_text(response.get("content"))),
                    method=str(request.get("method", "")),
                    url=str(request.get("uri", "")),
                    headers=_headers(request.get("headers")),
                    request_body=sent if sent is not None and len(sent) <= MAX_REQUEST_BYTES else None,
                    request_bytes=0 if sent is None else len(sent),
                )
            )
    return failures


def _bytes(value: Any) -> bytes | None:
    """A serialized body: ``{"$base64": ...}``, or text."""
    if isinstance(value, dict) and isinstance(value.get("$base64"), str):
        try:
            return base64.b64decode(value["$base64"])
        except (binascii.Error, ValueError):
            return None
    if isinstance(value, str):
        return value.encode()
    return None


def _text(value: Any) -> str:
    data = _bytes(value)
    return "" if data is None else data[: MAX_BODY_CHARS * 4].decode("utf-8", errors="replace")


def _clean(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """One line of printable text (a body may hold newlines or terminal escapes), at most ``limit`` characters."""
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:limit]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    pairs = []
    for name, values in value.items():
        for one in values if isinstance(values, list) else [values]:
            pairs.append((str(name), str(one)))
    return tuple(pairs)
