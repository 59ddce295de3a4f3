"""Reading schemathesis's NDJSON report (modelctl.fuzz_ndjson): what a failed check was, and never a crash on a
layout it does not know. The report of a real run is read in test_fuzz.py (a 500 at the schema's maximum)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from modelctl.fuzz_ndjson import MAX_BODY_CHARS, failed_checks


def b64(data: bytes) -> dict[str, str]:
    return {"$base64": base64.b64encode(data).decode()}


def scenario(recorder: Any) -> str:
    return json.dumps({"ScenarioFinished": {"id": "x", "recorder": recorder}})


GOOD = {
    "label": "POST /predict",
    "checks": {
        "c1": [
            {
                "name": "not_a_server_error",
                "status": "failure",
                "failure_info": {"failure": {"code": "ST101", "title": "Server error"}},
            },
            {"name": "status_code_conformance", "status": "success"},
        ]
    },
    "interactions": {
        "c1": {
            "request": {
                "method": "POST",
                "uri": "http://127.0.0.1:1/predict",
                "headers": {"Content-Type": ["application/json"]},
                "body": b64(b'{"instances": []}'),
            },
            "response": {
                "status_code": 503,
                "content": b64(b'{"error":"overloaded"}\n\x1b[31mred\r\nmore' + b"y" * 1000),
            },
        }
    },
}


def test_a_failed_check_is_named_with_its_request_and_a_one_line_answer(tmp_path: Path) -> None:
    report = tmp_path / "run.ndjson"
    report.write_text(json.dumps({"Initialize": {}}) + "\n" + scenario(GOOD) + "\n")
    [found] = failed_checks(report)
    assert (found.operation, found.check, found.code, found.status) == (
        "POST /predict",
        "not_a_server_error",
        "ST101",
        503,
    )
    assert found.request_body == b'{"instances": []}' and found.headers == (("Content-Type", "application/json"),)
    assert found.body.startswith('{"error":"overloaded"} [31mred more') and len(found.body) == MAX_BODY_CHARS
    assert "\x1b" not in found.problem() and "\n" not in found.problem()
    assert found.problem().startswith("ST101 Server error (not_a_server_error): answered 503 to a request of 17 bytes")


def test_layouts_it_does_not_know_are_skipped_never_a_crash(tmp_path: Path) -> None:
    report = tmp_path / "run.ndjson"
    odd = [
        scenario({"label": "x", "checks": [], "interactions": []}),
        scenario({"label": "x", "checks": {"c": [{"status": "failure", "failure_info": "text"}]}}),
        json.dumps({"ScenarioFinished": ["a", "list"]}),
        '{"ScenarioFinished": {"recorder": ',  # cut off
        scenario("a string"),
    ]
    report.write_bytes(
        ("\n".join(odd) + "\n").encode() + b'{"ScenarioFinished": "\xff\xfe"}\n' + (scenario(GOOD) + "\n").encode()
    )
    found = failed_checks(report)
    assert [f.status for f in found] == [None, 503]  # the failure without its case says so; the good one is read
    assert found[0].problem().endswith("no request or response recorded")
