"""`modelctl fuzz MODEL`: schemathesis and hostile requests against the served bento; no 5xx allowed."""

from __future__ import annotations

import argparse
import json

from modelctl import bentos
from modelctl.commands.loadtest import report_dir
from modelctl.console import err, out
from modelctl.errors import ModelctlError
from modelctl.fuzz import FuzzResult, fuzz
from modelctl.notify import append_step_summary
from modelctl.repo import Repo, find_repo

DEFAULT_EXAMPLES = 60  # about a minute for the example model on 2 cores, server included


class FuzzFailedError(ModelctlError):
    exit_code = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "fuzz",
        help="fuzz a served model (schemathesis + hostile requests): no 5xx, documented errors only",
        description="Exit 0 pass, 3 failures found, 1 error.",
    )
    parser.add_argument("model")
    parser.add_argument("--url", help="fuzz this running server instead of starting the built bento")
    parser.add_argument("--bento", help="bento tag to start (default: the newest built)")
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, help="examples per operation and mode")
    parser.set_defaults(run=lambda a: fuzz_command(find_repo(), a.model, a.url, a.bento, a.examples))


def markdown(model: str, result: FuzzResult) -> str:
    status = "PASS" if result.passed else "FAIL"
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(result.by_status.items()))
    lines = [
        f"### Fuzz {status}: `{model}`",
        "",
        f"- cases sent: {result.cases} ({statuses})",
        f"- 5xx responses: {result.server_errors}",
        f"- failures: {len(result.failures)}",
        f"- server memory: {result.rss_before_mb:.0f} -> {result.rss_after_mb:.0f} MB",
        f"- ready afterwards: {'yes' if result.ready_after else 'NO'}",
    ]
    if result.failures:
        first = result.failures[0]
        lines += ["", f"First failure ({first.case}): {first.problem}", "", "```bash", first.curl, "```"]
    return "\n".join(lines) + "\n"


def run_fuzz(
    repo: Repo, model: str, url: str | None = None, bento: str | None = None, examples: int = DEFAULT_EXAMPLES
) -> tuple[FuzzResult, str]:
    repo.resolve([model])
    config = repo.config(model)
    sample = json.loads((repo.model_dir(model) / config.loadtest.payload).read_text())
    reports = report_dir(repo, model)
    running = bentos.start_or_use(repo, model, url, bento, reports / "server.log")
    pids: list[int] = []
    if running is not None:
        url, pids = running.url, [running.pid, *running.workers]
    assert url is not None
    err.print(f"fuzzing {url}: hostile cases + {examples} schemathesis examples per operation and mode", markup=False)
    try:
        result = fuzz(url, sample, config.serving.max_request_bytes, config.serving.max_rows, examples, pids)
    finally:
        if running is not None:
            running.stop()
    text = markdown(model, result)
    (reports / "fuzz.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    (reports / "fuzz.md").write_text(text)
    return result, text


def fuzz_command(repo: Repo, model: str, url: str | None, bento: str | None, examples: int) -> int:
    result, text = run_fuzz(repo, model, url, bento, examples)
    out.print(text, markup=False)
    append_step_summary(text)
    if not result.passed:
        raise FuzzFailedError("fuzzing found problems: " + "; ".join(result.problems()))
    return 0
