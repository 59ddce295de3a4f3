"""Fuzzing a served model (schemathesis + hostile requests, `modelctl.fuzz`): the one place it passes or fails."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from modelctl.console import err
from modelctl.errors import GateRefusedError
from modelctl.fuzz import FuzzResult, fuzz
from modelctl.model import Model

# Examples per operation and mode: about a minute for the example model on 2 cores, server included.
DEFAULT_EXAMPLES = 60


class FuzzFailedError(GateRefusedError):
    pass


@dataclass(frozen=True)
class Fuzzed:
    result: FuzzResult
    markdown: str

    @property
    def passed(self) -> bool:
        return self.result.passed

    def one_line(self) -> str:
        r = self.result
        return f"{r.cases} cases, {r.server_errors} 5xx, {len(r.failures)} failures"


def markdown(model: str, result: FuzzResult) -> str:
    status = "PASS" if result.passed else "FAIL"
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.by_status.items()))
    lines = [
        f"### Fuzz {status}: `{model}`",
        "",
        f"- cases sent: {result.cases} ({statuses})",
        f"- 5xx responses: {result.server_errors}",
        f"- failures: {len(result.failures)}",
        f"- largest error body: {result.largest_error_bytes} bytes",
        f"- server log per bad request: {_log_per_request(result)}",
        f"- server memory: {result.rss_before_mb:.0f} -> {result.rss_after_mb:.0f} MB",
        f"- ready afterwards: {'yes' if result.ready_after else 'NO'}",
    ]
    if result.failures:
        first = result.failures[0]
        lines += ["", f"First failure ({first.case}): {first.problem}", "", "```bash", first.curl, "```"]
    return "\n".join(lines) + "\n"


def fuzz_served(
    model: Model,
    url: str,
    reports: Path,
    server_pids: list[int],
    examples: int = DEFAULT_EXAMPLES,
    server_log: Path | None = None,
) -> Fuzzed:
    """Fuzz the server at ``url``; results written to ``reports`` (fuzz.json, fuzz.md). With ``server_log`` (a
    server this process started), its growth per bad request is checked too."""
    serving = model.config.serving
    err.print(f"fuzzing {url}: hostile cases + {examples} schemathesis examples per operation and mode", markup=False)
    result = fuzz(
        url, model.sample(), serving.max_request_bytes, serving.max_rows, examples, server_pids, server_log=server_log
    )
    text = markdown(model.name, result)
    (reports / "fuzz.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    (reports / "fuzz.md").write_text(text, encoding="utf-8")
    return Fuzzed(result, text)


def _log_per_request(result: FuzzResult) -> str:
    value = result.log_bytes_per_bad_request
    return "not measured (server started elsewhere)" if value is None else f"{value:.0f} bytes"
