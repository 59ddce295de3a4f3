"""The fuzzing checks and hostile cases, against real HTTP stand-ins on 127.0.0.1."""

from __future__ import annotations

import json

from modelctl.fuzz import FuzzResult, check, curl, hostile_cases, run_hostile
from tests.stand_ins import http_stand_in

SAMPLE = {"instances": [{"a": 1.0, "b": 2.0}]}


def test_check() -> None:
    assert check(200, b"[]") is None
    assert check(400, b'{"error": "bad", "detail": []}') is None
    assert "server error 500" in check(500, b"boom")
    assert "non-JSON body" in check(400, b"<html>")
    assert "without the documented error body" in check(415, b'[{"error": "x"}]')


def test_hostile_cases_cover_the_issue_list() -> None:
    names = " ".join(c.name for c in hostile_cases(SAMPLE, max_bytes=1024, max_rows=10))
    for expected in (
        "malformed JSON",
        "wrong content type",
        "empty body",
        "oversized body",
        "huge array",
        "deeply nested",
        "NaN",
        "Infinity",
        "unicode",
        "extra top-level field",
        "missing field",
    ):
        assert expected in names
    oversized = next(c for c in hostile_cases(SAMPLE, 1024, 10) if c.name == "oversized body")
    assert len(oversized.body) > 1024
    nan = next(c for c in hostile_cases(SAMPLE, 1024, 10) if c.name == "NaN value")
    assert b"NaN" in nan.body


def test_a_500_is_a_failure_with_a_reproducible_curl() -> None:
    result = FuzzResult()
    with http_stand_in([], default=500) as server:
        run_hostile(server.url, hostile_cases(SAMPLE, 1024, 10), result)
    assert result.server_errors == result.cases > 20
    assert not result.passed
    first = result.failures[0]
    assert first.curl.startswith("curl -sS -X POST") and f"{server.url}/predict" in first.curl


def test_clean_server_passes() -> None:
    result = FuzzResult()
    with http_stand_in([], default=200) as server:
        run_hostile(server.url, hostile_cases(SAMPLE, 1024, 10), result)
    assert result.passed and result.by_status == {"200": result.cases}


def test_curl_quotes_bodies() -> None:
    command = curl("POST", "http://127.0.0.1:1/p", {"content-type": "application/json"}, json.dumps(SAMPLE).encode())
    assert command == (
        "curl -sS -X POST -H 'content-type: application/json' --data-binary "
        '\'{"instances": [{"a": 1.0, "b": 2.0}]}\' http://127.0.0.1:1/p'
    )
