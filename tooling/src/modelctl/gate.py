"""The load-test gate: Locust's aggregated stats against `loadtest.max_p90_ms` and `max_error_rate`."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelctl.errors import ModelctlError
from modelkit import ModelConfig


class GateBreached(ModelctlError):
    exit_code = 3


@dataclass(frozen=True)
class Verdict:
    passed: bool
    requests: int
    failures: int
    error_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    rps: float
    max_p90_ms: float
    max_error_rate: float
    breaches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_stats(path: Path) -> dict[str, str]:
    """The 'Aggregated' row of a Locust `*_stats.csv`."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Name") == "Aggregated":
                    return row
    except OSError as exc:
        raise ModelctlError(f"cannot read Locust stats {path}: {exc}") from exc
    raise ModelctlError(f"{path} has no 'Aggregated' row: did Locust run at all?")


def _number(row: dict[str, str], key: str) -> float:
    value = row.get(key, "")
    try:
        return float(value)
    except ValueError:
        return 0.0  # Locust writes "N/A" for percentiles when no request succeeded


def evaluate(row: dict[str, str], config: ModelConfig) -> Verdict:
    limits = config.loadtest
    requests = int(_number(row, "Request Count"))
    failures = int(_number(row, "Failure Count"))
    error_rate = failures / requests if requests else 1.0
    p90 = _number(row, "90%")
    breaches = []
    if requests == 0:
        breaches.append("no request completed (is the server up?)")
    if p90 > limits.max_p90_ms:
        breaches.append(f"P90 latency {p90:.0f} ms exceeds loadtest.max_p90_ms {limits.max_p90_ms:.0f} ms")
    if error_rate > limits.max_error_rate:
        breaches.append(
            f"error rate {error_rate:.2%} ({failures}/{requests}) exceeds loadtest.max_error_rate {limits.max_error_rate:.2%}"
        )
    return Verdict(
        passed=not breaches, requests=requests, failures=failures, error_rate=round(error_rate, 6),
        p50_ms=_number(row, "50%"), p90_ms=p90, p99_ms=_number(row, "99%"), rps=round(_number(row, "Requests/s"), 2),
        max_p90_ms=limits.max_p90_ms, max_error_rate=limits.max_error_rate, breaches=breaches,
    )


def markdown(model: str, bento: str, verdict: Verdict, report_dir: Path) -> str:
    status = "PASS" if verdict.passed else "FAIL"
    lines = [
        f"### Load test {status}: `{model}` (`{bento}`)",
        "",
        "| metric | measured | limit |",
        "| --- | --- | --- |",
        f"| P90 latency | {verdict.p90_ms:.0f} ms | {verdict.max_p90_ms:.0f} ms |",
        f"| error rate | {verdict.error_rate:.2%} ({verdict.failures}/{verdict.requests}) | {verdict.max_error_rate:.2%} |",
        f"| P50 / P99 | {verdict.p50_ms:.0f} / {verdict.p99_ms:.0f} ms | |",
        f"| throughput | {verdict.rps:.1f} req/s | |",
        "",
        f"Report: `{report_dir / 'report.html'}`",
    ]
    lines += [f"- {b}" for b in verdict.breaches]
    return "\n".join(lines) + "\n"
