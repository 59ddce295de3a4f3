"""The load-test gate: Locust's aggregated stats against `loadtest.max_p90_ms` and `max_error_rate`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelctl.errors import ModelctlError
from modelkit import ModelConfig


class GateBreachedError(ModelctlError):
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


def read_summary(path: Path) -> dict[str, Any]:
    """The final aggregated stats written by the runtime/locust_summary.py plugin."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelctlError(f"{path} is missing: Locust did not finish (see locust.log beside it)") from None
    except (OSError, ValueError) as exc:
        raise ModelctlError(f"cannot read Locust's summary {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelctlError(f"{path} is not a JSON object")
    return data


def evaluate(stats: dict[str, Any], config: ModelConfig) -> Verdict:
    limits = config.loadtest
    requests = int(stats.get("requests") or 0)
    failures = int(stats.get("failures") or 0)
    error_rate = failures / requests if requests else 1.0
    p90 = float(stats.get("p90_ms") or 0.0)
    breaches = []
    if requests == 0:
        breaches.append("no request completed (is the server up?)")
    if p90 > limits.max_p90_ms:
        breaches.append(f"P90 latency {p90:.0f} ms exceeds loadtest.max_p90_ms {limits.max_p90_ms:.0f} ms")
    if error_rate > limits.max_error_rate:
        measured = f"error rate {error_rate:.2%} ({failures}/{requests})"
        breaches.append(f"{measured} exceeds loadtest.max_error_rate {limits.max_error_rate:.2%}")
    return Verdict(
        passed=not breaches,
        requests=requests,
        failures=failures,
        error_rate=round(error_rate, 6),
        p50_ms=float(stats.get("p50_ms") or 0.0),
        p90_ms=p90,
        p99_ms=float(stats.get("p99_ms") or 0.0),
        rps=round(float(stats.get("rps") or 0.0), 2),
        max_p90_ms=limits.max_p90_ms,
        max_error_rate=limits.max_error_rate,
        breaches=breaches,
    )


def markdown(model: str, bento: str, verdict: Verdict, report_dir: Path) -> str:
    status = "PASS" if verdict.passed else "FAIL"
    lines = [
        f"### Load test {status}: `{model}` (`{bento}`)",
        "",
        "| metric | measured | limit |",
        "| --- | --- | --- |",
        f"| P90 latency | {verdict.p90_ms:.0f} ms | {verdict.max_p90_ms:.0f} ms |",
        f"| error rate | {verdict.error_rate:.2%} ({verdict.failures}/{verdict.requests})"
        f" | {verdict.max_error_rate:.2%} |",
        f"| P50 / P99 | {verdict.p50_ms:.0f} / {verdict.p99_ms:.0f} ms | |",
        f"| throughput | {verdict.rps:.1f} req/s | |",
        "",
        f"Report: `{report_dir / 'report.html'}`",
    ]
    lines += [f"- {b}" for b in verdict.breaches]
    return "\n".join(lines) + "\n"
