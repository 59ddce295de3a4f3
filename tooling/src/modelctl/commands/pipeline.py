"""`modelctl pipeline MODEL`: validate -> test (beside train -> build -> fuzz) -> load-test gate -> deploy."""

from __future__ import annotations

import argparse
import json
import sys

from modelctl.console import out
from modelctl.delivery.pipeline import StageFailedError
from modelctl.delivery.pipeline import pipeline as run_pipeline
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="validate, test, train, build, fuzz, load-test gate, deploy and notify one model"
    )
    parser.add_argument("model")
    parser.add_argument("--env", default="staging", choices=ENVIRONMENTS)
    parser.add_argument("--skip-tests", action="store_true", help="skip the model's own test suite")
    parser.add_argument("--yes", action="store_true", help="confirm a production deploy")
    parser.set_defaults(run=lambda a: pipeline(find_repo(), a.model, a.env, a.skip_tests, a.yes))


def pipeline(repo: Repo, name: str, env: str, skip_tests: bool, yes: bool) -> int:
    model = repo.model(name)
    try:
        run = run_pipeline(model, env, skip_tests, yes)
    except StageFailedError as exc:
        out.print(exc.run.log.table())
        raise
    out.print(run.log.table())
    out.print(
        f"live after {run.live_after:.1f}s; wall clock {run.wall_seconds:.1f}s with the watch (the tests ran beside "
        "training, building and fuzzing)",
        markup=False,
    )
    promotion = run.promotion
    assert promotion is not None and promotion.record is not None and promotion.gate is not None
    url = promotion.record.url
    if url and url.startswith("http"):
        sample = model.folder / model.config.loadtest.payload
        out.print(f"\nlive: {url}  ({name} v{promotion.record.version} in {env})", markup=False)
        out.print(f"try:  curl -s -X POST {url}/predict -H 'content-type: application/json' -d @{sample}", markup=False)
    verdict = promotion.gate.verdict
    out.print(
        f"gate: P90 {verdict.p90_ms:.0f} ms (limit {verdict.max_p90_ms:.0f}), error rate "
        f"{verdict.error_rate:.2%} (limit {verdict.max_error_rate:.2%}), {verdict.rps:.0f} req/s",
        markup=False,
    )
    out.print(f"report: {promotion.report_dir}/report.html", markup=False)
    out.print(f"stop:  modelctl undeploy {name} --env {env}", markup=False)
    print(json.dumps({"url": url, "version": promotion.record.version}), file=sys.stderr)
    return 0
