"""Read the repository and the state store into the dashboard's data (``modelctl.dashboard.model``).

Every source is read tolerantly: a config, ledger, retrain log or monitoring record that cannot be read becomes
one line in that model's ``problems`` (the file and what is wrong), and the rest of the site is still built.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import ValidationError

from modelctl import procs
from modelctl.dashboard import drift
from modelctl.dashboard.model import (
    INPUT_DEFAULT,
    DriftCheck,
    EnvState,
    Gate,
    Identity,
    ModelView,
    Release,
    Report,
    RetrainRun,
    Site,
)
from modelctl.errors import ModelctlError
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.statestore import LocalStore, StoreError, check_name
from modelctl.targets import local
from modelkit import ENVIRONMENTS, ConfigError, ModelConfig, load_config


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def input_kind(value: object) -> str:
    """The ``input`` of a config (a newer template may add it: a kind name, or an object with ``kind``)."""
    if isinstance(value, str) and value:
        return value
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) and kind else INPUT_DEFAULT


def identity(path: Path, name: str) -> tuple[Identity, str | None]:
    """The model described by its ``config.yaml`` at ``path``; with a broken config, what could still be read and
    the first problem (file and line)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        raw = _raw(path)
        if all(p.path == "input" or p.path.startswith("input.") for p in exc.problems):
            # Only the `input` a newer template writes is unknown to this schema: the rest is still a valid config.
            lenient = _without_input(raw)
            if lenient is not None:
                return _identity(name, lenient, raw.get("input")), None
        problem = str(exc.problems[0]) + (f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else "")
        return _raw_identity(raw, name), problem
    return _identity(name, config, getattr(config, "input", None)), None


def _identity(name: str, config: ModelConfig, given_input: object) -> Identity:
    return Identity(
        name=name,
        description=config.description,
        owner=config.owner,
        framework=config.framework,
        task=config.task,
        input_kind=input_kind(given_input),
        retrain_metric=config.retrain.metric,
        max_p90_ms=config.loadtest.max_p90_ms,
        max_error_rate=config.loadtest.max_error_rate,
    )


def _raw(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _without_input(raw: dict[str, Any]) -> ModelConfig | None:
    try:
        return ModelConfig.model_validate({k: v for k, v in raw.items() if k != "input"})
    except ValidationError:
        return None


def _raw_identity(raw: dict[str, Any], name: str) -> Identity:
    if not raw:
        return Identity(name=name)
    return Identity(
        name=name,
        description=_text(raw.get("description")),
        owner=_text(raw.get("owner")),
        framework=_text(raw.get("framework")),
        task=_text(raw.get("task")),
        input_kind=input_kind(raw.get("input")),
    )


def _gate(numbers: object) -> Gate | None:
    if not isinstance(numbers, dict) or not numbers:
        return None
    p90, error_rate, rps = (
        _number(numbers.get("p90_ms")),
        _number(numbers.get("error_rate")),
        _number(numbers.get("rps")),
    )
    return None if p90 is None and error_rate is None and rps is None else Gate(p90, error_rate, rps)


def report(repo: Repo, model: str, report_dir: object) -> Report | None:
    """The load-test report a ledger record names (``.../reports/<model>/<run>``, a path on the runner that ran the
    gate), found in this repository's ``reports/<model>/<run>/`` (CI downloads the build jobs' reports there).
    Only the name of the run is taken from the record, and only a file inside ``reports/`` is copied into the
    site: a path in the store must never publish another file of the machine."""
    if not isinstance(report_dir, str) or not report_dir:
        return None
    folder = PurePath(report_dir)
    run = folder.name
    if folder.parent.name != model or not RUN_NAME.fullmatch(run):
        return Report(run or report_dir, None)
    reports = repo.root / "reports"
    source = reports / model / run / "report.html"
    try:
        inside = source.is_file() and source.resolve().is_relative_to(reports.resolve())
    except OSError:
        inside = False
    return Report(run, f"reports/{model}/{run}/report.html", source) if inside else Report(run, None)


def release(repo: Repo, item: dict[str, Any], number: int) -> Release:
    """One validated ledger record (as ``Ledger.numbered`` gives it) as the dashboard shows it."""
    loadtest = item.get("loadtest") or {}
    return Release(
        env=item["env"],
        number=number,
        outcome=item["outcome"],
        bento=item.get("bento"),
        target=item["target"],
        at=item.get("at", ""),
        by=item.get("triggered_by", ""),
        url=item.get("url"),
        reason=item.get("reason"),
        git_commit=item.get("git_commit"),
        gate=_gate(loadtest),
        report=report(repo, item["model"], loadtest.get("report_dir")) if "report_dir" in loadtest else None,
    )


def retrain_run(run: dict[str, Any], default_metric: str) -> RetrainRun:
    metric = _text(run.get("metric")) or default_metric

    def score(field: str) -> float | None:
        scores = run.get(field)
        return _number(scores.get(metric)) if isinstance(scores, dict) else None

    return RetrainRun(
        at=_text(run.get("at")),
        decision=_text(run.get("decision")) or "unknown",
        metric=metric,
        challenger=score("candidate_metrics"),
        champion=score("champion_metrics"),
        reason=_text(run.get("reason")),
        env=_text(run.get("env")),
    )


def health(repo: Repo, model: str, live: Release | None) -> str:
    """``up``/``down`` for a deployment on this machine's local target; otherwise why it was not checked."""
    if live is None:
        return "not deployed"
    if live.target != "local":
        return "not checked (remote target)"
    try:
        running = local.read_live(repo, model, live.env)
    except local.LiveRecordError as exc:
        return f"unknown ({exc.why})"
    if running is None:
        return "not checked (not on this machine)"
    return "up" if running.running() and procs.healthy(running.url, timeout=1.0) else "down"


class Collector:
    """Reads one model at a time from ``repo`` and ``state``; the drift records of every model are listed once."""

    def __init__(self, repo: Repo, state: State, check_health: bool = True) -> None:
        self.repo, self.state, self.check_health = repo, state, check_health
        self.drift_keys = drift.keys_by_model(state.store)

    def model(self, name: str, in_repo: bool) -> ModelView:
        view = ModelView(Identity(name=name, in_repo=False))
        if in_repo:
            found, problem = identity(self.repo.model_dir(name) / "config.yaml", name)
            view.identity = found
            if problem:
                view.problems.append(problem)
        try:
            check_name(name, "model name")
        except StoreError as exc:  # a folder name the store cannot hold: no records can exist for it
            view.problems.append(f"{self.repo.model_dir(name)}: {exc}")
            view.envs = [EnvState(env, None, None, "not deployed", None, None) for env in ENVIRONMENTS]
            view.ledger_read = False
            return view
        self._ledger(view)
        self._retrains(view)
        checks, problems = drift.read(self.state.store, self.drift_keys.get(name, {}))
        view.drift, view.problems = checks, [*view.problems, *problems]
        view.envs = [self._env(view, env) for env in ENVIRONMENTS]
        return view

    def _ledger(self, view: ModelView) -> None:
        try:
            records = self.state.ledger.numbered(view.name)
        except StoreError as exc:
            view.problems.append(str(exc).splitlines()[0])
            view.ledger_read = False
            return
        releases = [release(self.repo, item, number) for item, number in records]
        # Records from before the ledger carried the gate's numbers: the gate result kept for the bento has them.
        stored: dict[str, Gate | None] = {}
        for index, item in enumerate(releases):
            if item.gate is None and item.bento and item.outcome in ("deployed", "rolled_back"):
                if item.bento not in stored:
                    stored[item.bento] = self._stored_gate(view, item.bento)
                releases[index] = replace(item, gate=stored[item.bento])
        view.releases = releases

    def _retrains(self, view: ModelView) -> None:
        try:
            runs = self.state.retrain_log.records(view.name)
        except StoreError as exc:
            view.problems.append(str(exc).splitlines()[0])
            return
        view.retrains = [retrain_run(run, view.identity.retrain_metric) for run in runs]

    def _env(self, view: ModelView, env: str) -> EnvState:
        here = [r for r in view.releases if r.env == env]
        live = None
        for item in reversed(here):
            if item.outcome in ("deployed", "rolled_back", "undeployed"):
                live = None if item.outcome == "undeployed" else item
                break
        checks: list[DriftCheck] = [c for c in view.drift if c.env == env]
        return EnvState(
            env=env,
            live=live,
            last=here[-1] if here else None,
            health=health(self.repo, view.name, live) if self.check_health else "not checked",
            gate=live.gate if live is not None else None,
            drift=checks[-1] if checks else None,
        )

    def _stored_gate(self, view: ModelView, bento: str) -> Gate | None:
        """The numbers of the gate result kept for ``bento`` in the store, if any."""
        try:
            summary = self.state.gate_result(bento)
        except ModelctlError as exc:
            view.problems.append(str(exc).splitlines()[0])
            return None
        return _gate(summary) if summary else None


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,100}")
#: Models read at once from an object store: each read waits on the network (about 20-50 ms a request), so 1,000
#: models one after another would take most of a minute. A local folder is read in one thread (no waiting to hide).
OBJECT_STORE_READERS = 16


def collect(repo: Repo, state: State, check_health: bool = True) -> Site:
    """Every model in ``models/`` (deployed or not) and every model only the ledger still knows."""
    collector = Collector(repo, state, check_health)
    in_repo = repo.model_names()
    known = set(in_repo)
    wanted = [(name, True) for name in in_repo]
    wanted += [(name, False) for name in state.ledger.models() if name not in known]
    if isinstance(state.store, LocalStore):
        models = [collector.model(name, here) for name, here in wanted]
    else:
        with ThreadPoolExecutor(OBJECT_STORE_READERS, thread_name_prefix="dashboard-read") as pool:
            models = list(pool.map(lambda wanted: collector.model(*wanted), wanted))
    return Site(
        models=models,
        environments=tuple(ENVIRONMENTS),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
