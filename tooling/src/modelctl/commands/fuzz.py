"""`modelctl fuzz MODEL`: schemathesis and hostile requests against the served bento; no 5xx allowed."""

from __future__ import annotations

import argparse

from modelctl.cliargs import int_in
from modelctl.console import err, out
from modelctl.delivery import release
from modelctl.delivery.candidate import check_url, resolve_bento, started
from modelctl.delivery.fuzzing import DEFAULT_EXAMPLES, FuzzFailedError, fuzz_served, save_pass
from modelctl.delivery.reports import new_report_dir
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fuzz",
        help="fuzz a served model (schemathesis + hostile requests): no 5xx, documented errors only",
        description="Exit 0 pass, 3 failures found, 1 error. Reports go to reports/<model>/<timestamp>/. A pass of "
        "a bento is recorded (deploy also needs the load-test gate).",
    )
    parser.add_argument("model")
    parser.add_argument("--url", help="fuzz this running server instead of starting the built bento")
    parser.add_argument("--bento", help="bento tag to start (default: the newest built)")
    parser.add_argument(
        "--examples", type=int_in(1, 10_000), default=DEFAULT_EXAMPLES, help="examples per operation and mode"
    )
    parser.set_defaults(run=lambda a: fuzz(find_repo(), a.model, a.url, a.bento, a.examples))


def fuzz(repo: Repo, name: str, url: str | None, bento: str | None, examples: int) -> int:
    model = repo.model(name)
    if url is not None:
        check_url(url, "/docs.json")
        fuzzed = fuzz_served(model, url, new_report_dir(model), [], examples)
    else:
        chosen = resolve_bento(model, bento)
        reports = new_report_dir(model)
        with started(model, chosen, reports / "server.log") as candidate:
            fuzzed = fuzz_served(model, candidate.url, reports, candidate.pids, examples, reports / "server.log")
        if fuzzed.passed:
            save_pass(model, chosen, fuzzed)
            missing = release.unverified(model, chosen)
            if missing is not None:
                err.print(f"recorded the fuzz pass; a deploy also needs: {missing}", markup=False)
    out.print(fuzzed.markdown, markup=False)
    append_step_summary(fuzzed.markdown)
    if not fuzzed.passed:
        raise FuzzFailedError("fuzzing found problems: " + "; ".join(fuzzed.result.problems()))
    return 0
