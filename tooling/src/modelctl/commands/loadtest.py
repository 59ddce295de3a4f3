"""`modelctl loadtest MODEL`: Locust against a freshly started bento (or --url), gated on P90 and error rate."""

from __future__ import annotations

import argparse

from modelctl.cliargs import SECONDS
from modelctl.console import out
from modelctl.delivery import gate
from modelctl.delivery.candidate import check_url, resolve_bento, started
from modelctl.delivery.reports import new_report_dir
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test a model and gate on its P90 and error rate",
        description="Exit 0 pass, 3 gate breached, 1 error. Reports go to reports/<model>/<timestamp>/.",
    )
    parser.add_argument("model")
    parser.add_argument("--url", help="test this running server instead of starting the built bento")
    parser.add_argument("--bento", help="bento tag to start (default: the newest built)")
    parser.add_argument("--duration", type=SECONDS, help="override loadtest.duration_s (1..3600)")
    parser.set_defaults(run=lambda a: loadtest(find_repo(), a.model, a.url, a.bento, a.duration))


def loadtest(repo: Repo, name: str, url: str | None, bento: str | None, duration: int | None = None) -> int:
    model = repo.model(name)
    if url is not None:
        check_url(url)
        result = gate.load_test(model, url, new_report_dir(model), url, duration)
    else:
        chosen = resolve_bento(model, bento)
        reports = new_report_dir(model)
        with started(model, chosen, reports / "server.log") as candidate:
            result = gate.load_test(model, candidate.url, reports, chosen, duration, server_pid=candidate.running.pid)
        if result.verdict.passed:
            gate.save_pass(model, chosen, result)
    summary = (result.report_dir / "summary.md").read_text(encoding="utf-8")
    out.print(summary, markup=False)
    append_step_summary(summary)
    if not result.verdict.passed:
        raise gate.GateBreachedError(
            "gate breached: " + "; ".join(result.verdict.breaches) + f" (reports: {result.report_dir})"
        )
    return 0
