"""Fuzzing a served model (schemathesis + hostile requests, `modelctl.fuzz`): the one place it passes or fails.

A bento that passed is recorded in the state store (`save_pass`); deploy and export need that record beside the
load-test gate's (issue #20, item 6: a bento that was only load-tested must not deploy)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelctl import procs
from modelctl.console import err
from modelctl.errors import GateRefusedError, ModelctlError
from modelctl.fuzz import FuzzResult, fuzz
from modelctl.model import Model
from modelctl.redact import redact
from modelkit.errors import CLIENT_ERROR_LINE

# Examples per operation and mode: about a minute for the example model on 2 cores, server included.
DEFAULT_EXAMPLES = 60


SHOWN_FAILURES = 5  # failures listed in the summary (fuzz.json has them all)
LOG_TAIL_LINES = 30
FENCE = "```"


class FuzzFailedError(GateRefusedError):
    pass


@dataclass(frozen=True)
class Fuzzed:
    result: FuzzResult
    markdown: str
    report_dir: Path | None = None
    examples: int = DEFAULT_EXAMPLES

    @property
    def passed(self) -> bool:
        return self.result.passed

    def one_line(self) -> str:
        r = self.result
        return f"{r.cases} cases, {r.server_errors} 5xx, {len(r.failures)} failures"


def markdown(model: str, result: FuzzResult, server_log: Path | None = None) -> str:
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
        more = result.failures[1:SHOWN_FAILURES]
        if more:
            lines += ["", "Then:", *(f"- {f.case}: {f.problem}" for f in more)]
    if server_log is not None and any(f.status is not None and f.status >= 500 for f in result.failures):
        # What the server said when it failed (the traceback a 5xx seen once in CI is understood by), without the
        # one line each refused request adds.
        # Masked as every log line modelctl emits (a traceback may print a connection string); no line may close
        # the code block.
        tail = redact(procs.log_tail(server_log, LOG_TAIL_LINES, skip=CLIENT_ERROR_LINE)).replace(FENCE, "` ` `")
        lines += ["", f"Server log, last {LOG_TAIL_LINES} lines but client errors:", "", "```text", tail, FENCE]
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
    text = markdown(model.name, result, server_log)
    (reports / "fuzz.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    (reports / "fuzz.md").write_text(text, encoding="utf-8")
    return Fuzzed(result, text, reports, examples)


def save_pass(model: Model, bento: str, fuzzed: Fuzzed) -> None:
    """Remember that ``bento`` passed fuzzing, in the state store (deploy and export refuse bentos without)."""
    from modelctl.state import State

    if not fuzzed.passed:
        raise ModelctlError(f"{bento} did not pass fuzzing: nothing to record")
    r = fuzzed.result
    summary = {
        "model": model.name,
        "bento": bento,
        "passed": True,
        "cases": r.cases,
        "examples": fuzzed.examples,
        "by_status": r.by_status,
        "server_errors": r.server_errors,
        "report_dir": str(fuzzed.report_dir) if fuzzed.report_dir else None,
    }
    State.of(model.repo).put_fuzz_result(bento, summary)


def passed_summary(model: Model, bento: str) -> dict[str, Any] | None:
    """What ``bento`` passed fuzzing with, or None when it never did."""
    from modelctl.state import State

    summary = State.of(model.repo).fuzz_result(bento)
    return summary if summary is not None and summary.get("passed") is True else None


def _log_per_request(result: FuzzResult) -> str:
    value = result.log_bytes_per_bad_request
    return "not measured (server started elsewhere)" if value is None else f"{value:.0f} bytes"
