"""The load-test gate: Locust against a served model, its aggregated stats judged against
`loadtest.max_p90_ms` and `loadtest.max_error_rate`. The one place a load test passes or fails."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from modelctl import cmd, procs
from modelctl.console import err
from modelctl.delivery.train import store_env
from modelctl.envs import runtime_script
from modelctl.errors import GateRefusedError, ModelctlError
from modelctl.model import Model
from modelkit import ModelConfig

LOCUST_GRACE_S = 120  # on top of the test's duration: start-up, spawning, stop timeout


class GateBreachedError(GateRefusedError):
    pass


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


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    report_dir: Path
    label: str  # the bento or URL that was tested
    summary: dict[str, Any]


def locust_argv(model: Model, url: str, reports: Path, seconds: int) -> list[str]:
    settings = model.config.loadtest
    return [
        "-m",
        "locust",
        "-f",
        f"locustfile.py,{runtime_script('locust_summary.py')}",
        "--host",
        url,
        "--headless",
        "-u",
        str(settings.users),
        "-r",
        str(settings.spawn_rate),
        "-t",
        f"{seconds}s",
        "--csv",
        str(reports / "locust"),
        "--html",
        str(reports / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "5",
    ]


def load_test(
    model: Model,
    url: str,
    reports: Path,
    label: str,
    duration: int | None = None,
    server_pid: int | None = None,
) -> GateResult:
    """Locust against ``url`` with the config's users, spawn rate and duration; the verdict and the reports.

    ``server_pid``: the server under test, when this process started it (a server that dies fails the gate).
    """
    settings = model.config.loadtest
    seconds = duration or settings.duration_s
    err.print(f"locust: {settings.users} users, spawn {settings.spawn_rate}/s, {seconds}s against {url}", markup=False)
    started = time.monotonic()
    stats = reports / "locust_summary.json"
    try:
        result = model.run(
            locust_argv(model, url, reports, seconds),
            what=f"locust against {url}",
            env={**store_env(model), "MODELCTL_LOCUST_SUMMARY": str(stats)},
            timeout=seconds + LOCUST_GRACE_S,
            check=False,
        )
    except cmd.CommandError as exc:
        raise ModelctlError(f"{exc}; reports: {reports}") from exc
    (reports / "locust.log").write_text(result.output + "\n", encoding="utf-8")
    if not stats.exists():
        raise ModelctlError(
            f"locust wrote no stats (exit {result.returncode}):\n{procs.log_tail(reports / 'locust.log')}"
        )
    verdict = evaluate(read_summary(stats), model.config)
    if server_pid is not None and not procs.alive(server_pid):
        verdict = replace(verdict, passed=False, breaches=["the server died during the load test", *verdict.breaches])
    summary = {
        "model": model.name,
        "bento": label,
        "url": url,
        "duration_s": round(time.monotonic() - started, 1),
        "users": settings.users,
        **verdict.as_dict(),
        "report_dir": str(reports),
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (reports / "summary.md").write_text(markdown(model.name, label, verdict, reports), encoding="utf-8")
    return GateResult(verdict, reports, label, summary)


def one_line(verdict: Verdict) -> str:
    return (
        f"P90 {verdict.p90_ms:.0f}/{verdict.max_p90_ms:.0f} ms, errors {verdict.error_rate:.2%}"
        f"/{verdict.max_error_rate:.2%}, {verdict.rps:.0f} req/s"
    )


def save_pass(model: Model, bento: str, result: GateResult) -> None:
    """Remember that ``bento`` passed the gate, in the state store (deploy and export refuse bentos without)."""
    from modelctl.state import State

    State.of(model.repo).put_gate_result(bento, result.summary)


def passed_summary(model: Model, bento: str) -> dict[str, Any] | None:
    """The load-test summary ``bento`` passed with, or None when it never passed."""
    from modelctl.state import State

    return State.of(model.repo).gate_result(bento)
