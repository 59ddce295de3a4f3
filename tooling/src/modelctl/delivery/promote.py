"""Promote: one started candidate goes through fuzzing, then the load-test gate, then the deploy.

Fuzzing comes first: it is a correctness check that needs no quiet machine, so it can run while the
caller's own checks (the pipeline's model tests) still run; the load test then measures a server that has
already answered hostile input, on a machine with nothing else of ours running.

The one place that decides whether a candidate may go live, and that sends the one notification of the
run (pipeline, retrain and `modelctl promote` all come through here). A candidate that fails any check
is recorded in the ledger as a failed attempt and never changes what is live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelctl import bentos, procs
from modelctl.delivery import candidate as candidates
from modelctl.delivery import fuzzing, gate, release
from modelctl.delivery.reports import new_report_dir
from modelctl.delivery.stages import StageLog
from modelctl.errors import ModelctlError
from modelctl.ledger import Record
from modelctl.model import Model
from modelctl.notify import Message, notify
from modelctl.redact import redact
from modelctl.state import State
from modelctl.targets import local


@dataclass
class Promotion:
    model: str
    env: str
    bento: str
    report_dir: Path | None = None
    gate: gate.GateResult | None = None
    fuzzed: fuzzing.Fuzzed | None = None
    record: Record | None = None
    facts: dict[str, str] = field(default_factory=dict)
    live_seconds: float = 0.0  # from the start of the deploy until the new version was live (before the watch)

    @property
    def deployed(self) -> bool:
        return self.record is not None and self.record.outcome in ("deployed", "rolled_back", "rendered")


class PrerequisiteFailedError(ModelctlError):
    """A check the caller ran beside fuzzing (the pipeline's model tests) failed: the candidate was never judged,
    so nothing is recorded as an attempt."""

    def __init__(self, cause: ModelctlError) -> None:
        super().__init__(str(cause))
        self.exit_code = cause.exit_code
        self.cause = cause


def promote(
    model: Model,
    bento: str,
    env: str,
    *,
    approved: bool,
    stages: StageLog | None = None,
    examples: int = fuzzing.DEFAULT_EXAMPLES,
    target: str | None = None,
    title: str | None = None,
    facts: dict[str, str] | None = None,
    before_gate: Callable[[], None] | None = None,
    on_failure: Callable[[], None] | None = None,
) -> Promotion:
    """Fuzz, gate and deploy ``bento``; notify once; raise on any failure (nothing live changes).

    ``before_gate`` is called after fuzzing and before the load test: the pipeline waits there for the model's
    tests (raising `PrerequisiteFailedError` when they failed), so the load test runs on a quiet machine.
    ``on_failure`` is called before a failure is announced (the pipeline settles its tests there, so the one
    notification carries the final stage table).
    """
    log = stages or StageLog(f"promote {model.name} -> {env}", ["fuzz", "load-test gate", f"deploy {env}", "watch"])
    release.check_environment(model, env, approved)
    release.choose_target(model, target)
    result = Promotion(model.name, env, bento, facts=dict(facts or {}))
    try:
        _promote(model, bento, env, approved, log, examples, target, result, before_gate)
    except ModelctlError as exc:
        if on_failure is not None:
            on_failure()
        announce(model, result, log, title, failure=exc)
        raise
    announce(model, result, log, title)
    return result


@dataclass
class Verified:
    """A candidate that passed the load-test gate and fuzzing, and where its reports are."""

    bento: str
    report_dir: Path
    gate: gate.GateResult
    fuzzed: fuzzing.Fuzzed
    running: bentos.Running | None = None  # the server itself, when it was kept to become the live deployment


def verify(
    model: Model,
    bento: str,
    log: StageLog,
    examples: int = fuzzing.DEFAULT_EXAMPLES,
    result: Promotion | None = None,
    live_env: str | None = None,
    before_gate: Callable[[], None] | None = None,
) -> Verified:
    """Start ``bento`` once; fuzz it, then load-test it. The one place a candidate passes or is refused; each pass
    is recorded for ``bento`` (a deploy needs both).

    With ``live_env`` the candidate runs on that environment's local port and, when it passes, is kept running
    for the deploy to take over (nothing is live there yet, so nothing is at risk).
    """
    reports = new_report_dir(model)
    if result is not None:
        result.report_dir = reports
    with candidates.started(model, bento, reports / "server.log", live_env=live_env) as candidate:
        with log.stage("fuzz") as stage:
            fuzzed = fuzzing.fuzz_served(
                model, candidate.url, reports, candidate.pids, examples, server_log=reports / "server.log"
            )
            if result is not None:
                result.fuzzed = fuzzed
            stage.detail = fuzzed.one_line()
            if not fuzzed.passed:
                raise fuzzing.FuzzFailedError("; ".join(fuzzed.result.problems()) + f" ({stage.detail})")
        fuzzing.save_pass(model, bento, fuzzed)
        if before_gate is not None:
            before_gate()
        with log.stage("load-test gate") as stage:
            tested = gate.load_test(model, candidate.url, reports, bento, server_pid=candidate.running.pid)
            if result is not None:
                result.gate = tested
            stage.detail = gate.one_line(tested.verdict)
            if not tested.verdict.passed:
                raise gate.GateBreachedError("; ".join(tested.verdict.breaches) + f" ({stage.detail})")
        gate.save_pass(model, bento, tested)
        running = candidate.hand_over() if live_env else None
    return Verified(bento, reports, tested, fuzzed, running)


def first_local_deploy(model: Model, env: str, target: str | None) -> bool:
    """Nothing is live in ``env`` on the local target and its port is free: the candidate can run there."""
    if release.choose_target(model, target) != "local":
        return False
    if State.of(model.repo).ledger.live(model.name, env) is not None or local.read_live(model.repo, model.name, env):
        return False
    return not procs.port_in_use(model.port(env))


def _promote(
    model: Model,
    bento: str,
    env: str,
    approved: bool,
    log: StageLog,
    examples: int,
    target: str | None,
    result: Promotion,
    before_gate: Callable[[], None] | None = None,
) -> None:
    live_env = env if first_local_deploy(model, env, target) else None
    try:
        verified = verify(model, bento, log, examples, result, live_env=live_env, before_gate=before_gate)
    except PrerequisiteFailedError:
        raise
    except ModelctlError as exc:  # refused by a gate, or could not even start: a failed attempt, nothing changes
        refused = release.new_record(model, env, release.choose_target(model, target), bento, "failed")
        refused.reason = redact(str(exc).splitlines()[0])
        State.of(model.repo).ledger.append(refused)
        result.record = refused
        raise
    deploy_stage, started, seen = f"deploy {env}", time.monotonic(), release.Observer()
    try:
        record = release.deploy(
            model, env, bento, target=target, approved=approved, adopt=verified.running, observer=seen
        )
    except release.WatchBreachedError as exc:
        live = seen.live_at or time.monotonic()
        log.record(deploy_stage, live - started, "went live, then breached the watch")
        log.record("watch", time.monotonic() - live, str(exc).splitlines()[0], status="FAILED")
        result.record = exc.record
        raise
    except release.DeployFailedError as exc:
        log.record(deploy_stage, time.monotonic() - started, str(exc).splitlines()[0], status="FAILED")
        log.record("watch", 0.0, "", status="not run")
        result.record = exc.record
        raise
    result.record = record
    live = seen.live_at or time.monotonic()
    result.live_seconds = live - started
    log.record(deploy_stage, live - started, f"v{record.version} {record.url or '(rendered)'}")
    log.record("watch", time.monotonic() - live, seen.watch_summary)


def announce(
    model: Model, result: Promotion, log: StageLog, title: str | None, failure: BaseException | None = None
) -> None:
    """The one notification of a promotion: verdict, gate and fuzz numbers, the stage table."""
    verdict = "failed" if failure else "deployed"
    facts = {"bento": result.bento, **result.facts, "stages": " -> ".join(f"{s.name}:{s.status}" for s in log.stages)}
    if result.gate is not None:
        v = result.gate.verdict
        facts["P90"] = f"{v.p90_ms:.0f} ms (limit {v.max_p90_ms:.0f})"
        facts["error rate"] = f"{v.error_rate:.2%} (limit {v.max_error_rate:.2%})"
    if result.fuzzed is not None:
        facts["fuzz"] = result.fuzzed.one_line()
    if result.record is not None and result.record.url:
        facts["url"] = result.record.url
    if failure is not None:
        failed = log.failed
        facts["failed at"] = f"{failed.name}: {failed.detail}" if failed else str(failure).splitlines()[0]
    version = f"v{result.record.version}" if result.record is not None and result.record.version else None
    notify(
        Message(
            title=title or f"{model.name} {verdict} ({result.env})",
            model=model.name,
            env=result.env,
            version=version,
            verdict=verdict,
            facts=facts,
            channel=model.config.notify.slack_channel,
        ),
        extra_markdown=log.markdown(),
    )
