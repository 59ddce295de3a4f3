"""`modelctl retrain MODEL [--dry-run]` and `modelctl retrain --due`: champion/challenger retraining.

extract (train.load_data) -> train a candidate -> evaluate candidate and champion on the same fresh
holdout -> promote only if better (locally: build, load-test gate, fuzz, deploy; in CI: dispatch
deploy.yml) -> notify. A failing step leaves the live model in place and exits non-zero.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from modelctl.console import err, out
from modelctl.delivery.retrain import RetrainError, check_usage, retrain
from modelctl.errors import ModelctlError, UsageError
from modelctl.repo import Repo, find_repo
from modelctl.schedules import is_due
from modelkit import ENVIRONMENTS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "retrain",
        help="retrain a model; promote the candidate only if it beats the live champion",
        description="Exit 0 when done (promoted or kept), 1 when a step failed (the live model is untouched).",
    )
    parser.add_argument("model", nargs="?")
    parser.add_argument("--dry-run", action="store_true", help="extract, train and evaluate; print the decision")
    parser.add_argument(
        "--env",
        default="staging",
        choices=ENVIRONMENTS,
        help="where the champion is live and where a better candidate goes locally",
    )
    parser.add_argument("--due", action="store_true", help="retrain every model whose retrain.schedule is due")
    parser.add_argument("--at", help="ISO time to evaluate schedules at (default: now, UTC)")
    parser.add_argument("--window", type=int, default=90, help="minutes a schedule counts as due (default 90)")
    parser.add_argument(
        "--require-data",
        action="store_true",
        help="fail when the model's <SLUG>_DATA_URL is unset instead of using the packaged data (always on in CI)",
    )
    parser.set_defaults(
        run=lambda a: retrain_command(
            find_repo(), a.model, a.dry_run, a.env, a.due, a.at, a.window, True if a.require_data else None
        )
    )


def due_models(repo: Repo, at: datetime, window: timedelta) -> list[str]:
    return [
        model.name
        for model in repo.models()
        if (schedule := model.config.retrain.schedule) and is_due(schedule, at, window)
    ]


def retrain_command(
    repo: Repo,
    name: str | None,
    dry_run: bool,
    env: str,
    due: bool,
    at: str | None,
    window: int,
    require_data: bool | None = None,
) -> int:
    check_usage(name, due)
    if name is not None:
        record = retrain(repo.model(name), env, dry_run, require_data)
        out.print(f"{name}: {record['decision']} ({record['reason']})", markup=False)
        return 0
    try:
        moment = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(f"--at {at!r} is not an ISO time (e.g. 2026-11-30T03:05:00+00:00)") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    names = due_models(repo, moment, timedelta(minutes=window))
    out.print(f"due at {moment.isoformat()}: {', '.join(names) or 'none'}", markup=False)
    failures = []
    for due_name in names:
        try:
            record = retrain(repo.model(due_name), env, dry_run, require_data)
            out.print(f"{due_name}: {record['decision']}", markup=False)
        except ModelctlError as exc:
            err.print(str(exc), markup=False)
            failures.append(due_name)
    if failures:
        raise RetrainError(f"retraining failed for {', '.join(failures)}")
    return 0
