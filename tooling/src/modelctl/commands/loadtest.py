"""`modelctl loadtest MODEL`: Locust against a freshly started bento (or --url), gated on P90 and error rate."""

from __future__ import annotations

import argparse

from modelctl.cliargs import SECONDS
from modelctl.console import err, out
from modelctl.delivery import gate, release
from modelctl.delivery.candidate import check_url, resolve_bento, started
from modelctl.delivery.reports import new_report_dir
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test a model and gate on its P90 and error rate",
        description="Exit 0 pass, 3 gate breached, 1 error. Reports go to reports/<model>/<timestamp>/. The gate's "
        "own Locust user sends the model's payload; a pass of a bento is recorded (deploy also needs fuzzing).",
    )
    parser.add_argument("model")
    parser.add_argument("--url", help="test this running server instead of starting the built bento")
    parser.add_argument("--bento", help="bento tag to start (default: the newest built)")
    parser.add_argument("--duration", type=SECONDS, help="override loadtest.duration_s (1..3600)")
    parser.add_argument(
        "--locustfile",
        nargs="?",
        const="locustfile.py",
        metavar="FILE",
        help="exploratory: run the model's own Locust file (default locustfile.py) instead of the gate's user; "
        "its numbers are shown, never recorded as a gate pass",
    )
    parser.set_defaults(run=lambda a: loadtest(find_repo(), a.model, a.url, a.bento, a.duration, a.locustfile))


def loadtest(
    repo: Repo,
    name: str,
    url: str | None,
    bento: str | None,
    duration: int | None = None,
    locustfile: str | None = None,
) -> int:
    model = repo.model(name)
    if locustfile is not None:
        gate.model_locustfile(model, locustfile)  # refused before a server is started
    if url is not None:
        check_url(url)
        result = gate.load_test(model, url, new_report_dir(model), url, duration, locustfile=locustfile)
    else:
        chosen = resolve_bento(model, bento)
        reports = new_report_dir(model)
        with started(model, chosen, reports / "server.log") as candidate:
            pid = candidate.running.pid
            result = gate.load_test(model, candidate.url, reports, chosen, duration, pid, locustfile=locustfile)
        if result.verdict.passed and result.locustfile is None:
            gate.save_pass(model, chosen, result)
            missing = release.unverified(model, chosen)
            if missing is not None:
                err.print(f"recorded the load-test pass; a deploy also needs: {missing}", markup=False)
    summary = (result.report_dir / "summary.md").read_text(encoding="utf-8")
    out.print(summary, markup=False)
    append_step_summary(summary)
    kind = "gate" if result.locustfile is None else f"exploratory load test ({result.locustfile}, not recorded)"
    if not result.verdict.passed:
        raise gate.GateBreachedError(
            f"{kind} breached: " + "; ".join(result.verdict.breaches) + f" (reports: {result.report_dir})"
        )
    return 0
