"""`modelctl retrain MODEL [--dry-run]` and `modelctl retrain --due`: champion/challenger retraining.

extract (train.load_data) -> train a candidate -> evaluate candidate and champion on the same fresh
holdout -> promote only if better (locally: build, fuzz, load-test gate, deploy; in CI: dispatch
deploy.yml) -> notify. A failing step leaves the live model in place and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelctl.cliargs import int_in
from modelctl.console import err, out
from modelctl.delivery.retrain import RetrainError, check_usage, data_url_variable, retrain
from modelctl.delivery.retrain_ci import retrain_offline
from modelctl.errors import ModelctlError, UsageError
from modelctl.github import write_outputs
from modelctl.redact import redact
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
    parser.add_argument(
        "--model",
        dest="model_option",
        metavar="MODEL",
        help="the model, as an option value (workflows pass inputs here)",
    )
    parser.add_argument("--dry-run", action="store_true", help="extract, train and evaluate; print the decision")
    parser.add_argument(
        "--env",
        default="staging",
        choices=ENVIRONMENTS,
        help="where the champion is live and where a better candidate goes locally",
    )
    parser.add_argument("--due", action="store_true", help="retrain every model whose retrain.schedule is due")
    parser.add_argument("--at", help="ISO time to evaluate schedules at (default: now, UTC)")
    parser.add_argument(
        "--window", type=int_in(1, 10_080, "a number of minutes"), default=90, help="minutes a schedule counts as due"
    )
    parser.add_argument(
        "--require-data",
        action="store_true",
        help="fail when the model's <SLUG>_DATA_URL is unset instead of using the packaged data (always on in CI)",
    )
    parser.add_argument(
        "--data-url-from",
        metavar="VARIABLE",
        help="read the data URL from this environment variable (a workflow's per-model secret) as <SLUG>_DATA_URL",
    )
    parser.add_argument(
        "--plan", action="store_true", help="only list what would be retrained (the due models, or the named one)"
    )
    parser.add_argument("--format", choices=("lines", "github"), default="lines", help="--plan output format")
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="CI without credentials: the champion from --champion-from, the outcome handed over in --out for "
        "`modelctl ci record-retrain` (which stores, dispatches, logs and notifies)",
    )
    parser.add_argument("--champion-from", type=Path, help="with --no-store: the folder `modelctl ci champion` filled")
    parser.add_argument("--out", type=Path, help="with --no-store: the folder for the hand-off (and a winner)")
    parser.set_defaults(run=lambda a: retrain_command(find_repo(), Options.from_args(a)))


@dataclass(frozen=True)
class Options:
    model: str | None
    dry_run: bool = False
    env: str = "staging"
    due: bool = False
    at: str | None = None
    window: int = 90
    require_data: bool | None = None
    data_url_from: str | None = None
    plan: bool = False
    fmt: str = "lines"
    no_store: bool = False
    champion_from: Path | None = None
    out_dir: Path | None = None

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> Options:
        if a.model and a.model_option:
            raise UsageError("name the model once: MODEL or --model MODEL")
        return cls(
            model=(a.model or a.model_option or None),
            dry_run=a.dry_run,
            env=a.env,
            due=a.due,
            at=a.at,
            window=a.window,
            require_data=True if a.require_data else None,
            data_url_from=a.data_url_from,
            plan=a.plan,
            fmt=a.format,
            no_store=a.no_store,
            champion_from=a.champion_from,
            out_dir=a.out,
        )


def due_models(repo: Repo, at: datetime, window: timedelta) -> list[str]:
    return [
        model.name
        for model in repo.models()
        if (schedule := model.config.retrain.schedule) and is_due(schedule, at, window)
    ]


def _moment(at: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(f"--at {at!r} is not an ISO time (e.g. 2026-11-30T03:05:00+00:00)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan(repo: Repo, options: Options) -> int:
    """What a retrain workflow run would retrain: the named model, or every model that is due (GitHub matrix)."""
    names = (
        repo.resolve([options.model])
        if options.model
        else due_models(repo, _moment(options.at), timedelta(minutes=options.window))
    )
    limit = repo.settings.max_jobs
    if len(names) > limit:
        raise UsageError(
            f"{len(names)} models are due at once, more than [tool.modelctl] max_jobs ({limit}): "
            "spread their retrain.schedule over more hours"
        )
    if options.fmt == "github":
        # An empty matrix is never expanded: the retrain job runs only when count is not 0.
        write_outputs({"matrix": json.dumps({"model": names}), "count": str(len(names))})
    for name in names:
        out.print(name, markup=False)
    return 0


def retrain_command(repo: Repo, options: Options) -> int:
    if options.plan:
        return plan(repo, options)
    check_usage(options.model, options.due)
    if options.data_url_from is not None:
        value = os.environ.get(options.data_url_from)
        if value and options.model:
            os.environ[data_url_variable(repo.model(options.model))] = value
    if options.no_store or options.champion_from or options.out_dir:
        return _without_store(repo, options)
    if options.model is not None:
        record = retrain(repo.model(options.model), options.env, options.dry_run, options.require_data)
        out.print(f"{options.model}: {record['decision']} ({record['reason']})", markup=False)
        return 0
    moment = _moment(options.at)
    names = due_models(repo, moment, timedelta(minutes=options.window))
    out.print(f"due at {moment.isoformat()}: {', '.join(names) or 'none'}", markup=False)
    failures = []
    for due_name in names:
        try:
            record = retrain(repo.model(due_name), options.env, options.dry_run, options.require_data)
            out.print(f"{due_name}: {record['decision']}", markup=False)
        except ModelctlError as exc:
            err.print(redact(str(exc)), markup=False)  # main() masks the one error it prints; this is another
            failures.append(due_name)
    if failures:
        raise RetrainError(f"retraining failed for {', '.join(failures)}")
    return 0


def _without_store(repo: Repo, options: Options) -> int:
    if not (options.no_store and options.champion_from and options.out_dir and options.model):
        raise UsageError("--no-store, --champion-from and --out go together, with one MODEL")
    if options.dry_run:
        raise UsageError("--no-store hands a decision over: it has no --dry-run")
    record = retrain_offline(repo.model(options.model), options.env, options.champion_from, options.out_dir)
    out.print(f"{options.model}: {record['decision']} ({record.get('reason', '')}); handed over in {options.out_dir}")
    return 0
