"""The whole road for one model: validate -> test (beside train -> build -> fuzz) -> gate -> deploy.

The model's tests run in the background while the model is trained, built, started once as the candidate
and fuzzed (independent checks; nothing is released unless all pass). promote.py then waits for the tests
before the load-test gate, so the gate measures the candidate on a machine where nothing else of ours runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelctl.delivery import build as building
from modelctl.delivery import promote as promoting
from modelctl.delivery import train as training
from modelctl.delivery.stages import StageLog
from modelctl.delivery.testing import run_tests
from modelctl.errors import ModelctlError
from modelctl.model import Model
from modelctl.notify import Message, notify


class StageFailedError(ModelctlError):
    def __init__(self, stage: str, cause: ModelctlError, run: PipelineRun) -> None:
        super().__init__(f"stage {stage!r} failed: {cause}")
        self.exit_code = cause.exit_code
        self.cause, self.run = cause, run


@dataclass
class PipelineRun:
    model: str
    env: str
    log: StageLog
    wall_seconds: float = 0.0
    live_after: float = 0.0  # seconds from the start until the new version was live (the watch runs after)
    promotion: promoting.Promotion | None = None
    trained: training.Trained | None = None
    promoting: bool = False  # promote was called: it sends the run's one notification, failure or not


def pipeline(model: Model, env: str = "staging", skip_tests: bool = False, approved: bool = False) -> PipelineRun:
    log = StageLog(
        f"pipeline {model.name} -> {env}",
        ["validate", "environment", "test", "train", "build", "fuzz", "load-test gate", f"deploy {env}", "watch"],
    )
    run = PipelineRun(model.name, env, log)
    started = time.monotonic()
    try:
        _run(model, env, skip_tests, approved, run)
    except ModelctlError as exc:
        run.wall_seconds = time.monotonic() - started
        failed = log.failed
        if not run.promoting:  # promote notifies for itself; earlier failures are announced here
            _announce_failure(model, run, exc)
        raise StageFailedError(failed.name if failed else "pipeline", exc, run) from exc
    run.wall_seconds = time.monotonic() - started
    if run.promotion is not None:
        run.live_after = run.wall_seconds - _after_live(run)
    return run


def _after_live(run: PipelineRun) -> float:
    watch = next((s for s in run.log.stages if s.name == "watch"), None)
    return watch.seconds if watch is not None else 0.0


def _run(model: Model, env: str, skip_tests: bool, approved: bool, run: PipelineRun) -> None:
    log = run.log
    with log.stage("validate") as stage:
        stage.detail = f"config ok ({model.config.framework}, {model.config.task})"
    with log.stage("environment") as stage:
        stage.detail = str(model.python().parent.parent.name)
    tests = _Background(run_tests, model) if not skip_tests else None
    try:
        with log.stage("train") as stage:
            trained = run.trained = training.train(model)
            stage.detail = f"{trained.model_tag} " + " ".join(f"{k}={v}" for k, v in trained.metrics.items())
        with log.stage("build") as stage:
            built = building.build(model)
            stage.detail = built.bento
    except BaseException:
        if tests is not None:
            _finish_tests(tests, log, quiet=True)
        raise
    if tests is None:
        log.record("test", 0.0, "skipped", status="skipped")
    run.promoting = True
    try:
        run.promotion = promoting.promote(
            model,
            built.bento,
            env,
            approved=approved,
            stages=log,
            title=f"pipeline {model.name} -> {env}",
            before_gate=(lambda: _finish_tests(tests, log)) if tests is not None else None,
        )
    finally:
        if tests is not None:  # promote failed before it waited for them: they still finish and are shown
            _finish_tests(tests, log, quiet=True)


def _finish_tests(tests: _Background, log: StageLog, quiet: bool = False) -> None:
    """Wait for the model's tests and record the stage once; raise when they failed (unless ``quiet``: another
    failure is already on its way)."""
    tests.join()
    if tests.recorded:
        return
    tests.recorded = True
    if tests.error is None:
        log.record("test", tests.seconds, tests.value or "")
        return
    log.record("test", tests.seconds, str(tests.error).splitlines()[0], status="FAILED")
    for stage in log.stages:
        if stage.status == "pending":
            stage.status = "not run"
    if not quiet:
        raise promoting.PrerequisiteFailedError(tests.error)


class _Background:
    """Run ``fn(model)`` in a thread (it waits on a subprocess, so the GIL is free); keep its result or error."""

    def __init__(self, fn: Callable[[Model], str], model: Model) -> None:
        self.value: str | None = None
        self.error: ModelctlError | None = None
        self.seconds = 0.0
        self.recorded = False
        self._thread = threading.Thread(target=self._run, args=(fn, model), daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self, fn: Callable[[Model], str], model: Model) -> None:
        try:
            self.value = fn(model)
        except ModelctlError as exc:
            self.error = exc
        finally:
            self.seconds = time.monotonic() - self._started

    def join(self) -> None:
        self._thread.join()


def _announce_failure(model: Model, run: PipelineRun, exc: ModelctlError) -> None:
    failed = run.log.failed
    notify(
        Message(
            title=f"pipeline {model.name} failed ({run.env})",
            model=model.name,
            env=run.env,
            verdict="failed",
            facts={
                "stages": " -> ".join(f"{s.name}:{s.status}" for s in run.log.stages),
                "failed at": f"{failed.name}: {failed.detail}" if failed else str(exc).splitlines()[0],
            },
            channel=model.config.notify.slack_channel,
        ),
        extra_markdown=run.log.markdown(),
    )
