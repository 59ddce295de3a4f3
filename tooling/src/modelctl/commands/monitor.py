"""`modelctl monitor MODEL --env ENV [--since TIME|DURATION] [--labels FILE] [--alert]`: drift and quality of a
live model from its prediction log.

Exit 0: no drift; 3: drift or a quality breach (like a gate breach); 1: error; 2: usage, or too few logged rows
(says how many it has and needs; with --alert, the scheduled run, too few rows exits 0 without alerting).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import err, out
from modelctl.errors import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, ModelctlError, UsageError
from modelctl.redact import redact
from modelctl.repo import Repo, find_repo
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="data drift, prediction drift and quality of a live model from its prediction log",
        description="Exit 0: no drift; 3: drift or a quality breach; 1: error; 2: usage or too few logged rows.",
    )
    parser.add_argument("model", nargs="?")
    parser.add_argument(
        "--all",
        action="store_true",
        dest="every",
        help="every model (the scheduled run): exit 1 if any failed, else 3 if any drifted",
    )
    parser.add_argument("--env", required=True, choices=("dev", *ENVIRONMENTS))
    parser.add_argument(
        "--since", metavar="TIME|DURATION", help="window start: 24h, 7d, or an ISO time (default: monitor.window)"
    )
    parser.add_argument(
        "--labels", type=Path, metavar="FILE", help="ground truth (CSV or Parquet with a 'label' column)"
    )
    parser.add_argument(
        "--alert",
        action="store_true",
        help="the scheduled run: on drift or a breach notify (Slack) and retrain when monitor.retrain_on_drift; "
        "too few rows exits 0",
    )
    parser.set_defaults(run=lambda a: dispatch(find_repo(), a))


def dispatch(repo: Repo, args: argparse.Namespace) -> int:
    if bool(args.model) == args.every:
        raise UsageError("name one MODEL, or --all")
    since = args.since or None  # a workflow passes an empty input as ""
    if not args.every:
        return monitor(repo, args.model, args.env, since, args.labels, args.alert)
    if args.labels is not None:
        raise UsageError("--labels is one model's ground truth: not with --all")
    codes: dict[str, int] = {}
    for name in repo.model_names():
        try:
            codes[name] = monitor(repo, name, args.env, since, None, args.alert)
        except Exception as exc:  # noqa: BLE001 - one model's failure never stops the others'
            message = str(exc) if isinstance(exc, ModelctlError) else f"{type(exc).__name__}: {exc}"
            err.print(f"{name}: error: {redact(message)}", markup=False)
            codes[name] = EXIT_ERROR
    drifted = sorted(n for n, c in codes.items() if c == EXIT_REFUSED)
    # Too few logged rows (exit 2 for one model): not judged, which is no failure of the run.
    quiet = sorted(n for n, c in codes.items() if c == EXIT_USAGE)
    failed = sorted(n for n, c in codes.items() if c not in (EXIT_OK, EXIT_REFUSED, EXIT_USAGE))
    out.print(
        f"monitored {len(codes)} model(s) in {args.env}: {len(drifted)} drifted or breached"
        + (f" ({', '.join(drifted)})" if drifted else "")
        + f", {len(quiet)} not judged (too few rows), {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else ""),
        markup=False,
    )
    return EXIT_ERROR if failed else EXIT_REFUSED if drifted else EXIT_OK


def monitor(repo: Repo, name: str, env: str, since: str | None, labels: Path | None, alert: bool = False) -> int:
    from modelctl.monitor import loop, report
    from modelctl.monitor.run import monitor as run_monitor

    model = repo.model(name)
    if alert:
        acted = loop.scheduled(model, env, since, labels)
        outcome = acted.outcome
    else:
        outcome = run_monitor(model, env, since, labels)
    result = outcome.result
    if not result.enough:
        err.print(f"{result.verdict}: {result.rows_line()}; nothing judged", markup=False)
        # the scheduled run: too little traffic is no failure and no alert (issue 22, item 5)
        return EXIT_OK if alert else result.exit_code
    out.print(report.table(result))
    out.print(outcome.markdown.split("\n\n| column")[0], markup=False)
    return result.exit_code
