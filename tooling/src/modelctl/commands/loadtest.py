"""`modelctl loadtest MODEL`: Locust against a freshly started bento (or --url), gated on P90 and error rate."""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelctl import bentos, procs
from modelctl.console import err, out
from modelctl.envs import model_python, runtime_script
from modelctl.errors import ModelctlError
from modelctl.gate import GateBreachedError, Verdict, evaluate, markdown, read_summary
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo
from modelctl.state import State


@dataclass(frozen=True)
class LoadTestResult:
    verdict: Verdict
    report_dir: Path
    bento: str


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test a model and gate on its P90 and error rate",
        description="Exit 0 pass, 3 gate breached, 1 error. Reports go to reports/<model>/<timestamp>/.",
    )
    parser.add_argument("model")
    parser.add_argument("--url", help="test this running server instead of starting the built bento")
    parser.add_argument("--bento", help="bento tag to start (default: the newest built)")
    parser.add_argument("--duration", type=int, help="override loadtest.duration_s")
    parser.set_defaults(run=lambda a: loadtest(find_repo(), a.model, a.url, a.bento, a.duration))


def report_dir(repo: Repo, model: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = repo.root / "reports" / model / stamp
    path.mkdir(parents=True)
    return path


def run_loadtest(
    repo: Repo, model: str, url: str | None = None, bento: str | None = None, duration: int | None = None
) -> LoadTestResult:
    repo.resolve([model])
    config = repo.config(model)
    settings = config.loadtest
    seconds = duration or settings.duration_s
    python = model_python(repo, model)
    reports = report_dir(repo, model)
    running = bentos.start_or_use(repo, model, url, bento, reports / "server.log")
    if running is not None:
        url, bento = running.url, running.bento
    assert url is not None
    cmd = [
        str(python),
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
    err.print(f"locust: {settings.users} users, spawn {settings.spawn_rate}/s, {seconds}s against {url}", markup=False)
    started = time.monotonic()
    try:
        result = subprocess.run(
            cmd,
            cwd=repo.model_dir(model),
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 120,
            env={**State.of(repo).env(), "MODELCTL_LOCUST_SUMMARY": str(reports / "locust_summary.json")},
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelctlError(f"locust did not finish within {seconds + 120}s; see {reports}") from exc
    finally:
        server_died = running is not None and not procs.alive(running.pid)
        if running is not None:
            running.stop()
    (reports / "locust.log").write_text(result.stdout + result.stderr)
    stats = reports / "locust_summary.json"
    if not stats.exists():
        raise ModelctlError(
            f"locust wrote no stats (exit {result.returncode}):\n{procs.log_tail(reports / 'locust.log')}"
        )
    verdict = evaluate(read_summary(stats), config)
    if server_died:
        verdict.breaches.insert(0, "the server died during the load test")
        verdict = Verdict(**{**verdict.as_dict(), "passed": False})
    label = bento or url
    summary = {
        "model": model,
        "bento": label,
        "url": url,
        "duration_s": round(time.monotonic() - started, 1),
        "users": settings.users,
        **verdict.as_dict(),
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (reports / "summary.md").write_text(markdown(model, label, verdict, reports))
    if verdict.passed and running is not None:
        gate = State.of(repo).gate_file(running.bento)
        gate.parent.mkdir(parents=True, exist_ok=True)
        gate.write_text(json.dumps({**summary, "report_dir": str(reports)}, indent=2) + "\n")
    return LoadTestResult(verdict, reports, label)


def loadtest(repo: Repo, model: str, url: str | None, bento: str | None, duration: int | None = None) -> int:
    result = run_loadtest(repo, model, url, bento, duration)
    verdict = result.verdict
    summary = (result.report_dir / "summary.md").read_text()
    out.print(summary, markup=False)
    append_step_summary(summary)
    if not verdict.passed:
        raise GateBreachedError("gate breached: " + "; ".join(verdict.breaches) + f" (reports: {result.report_dir})")
    return 0
