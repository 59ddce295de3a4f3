"""The whole road for one model: validate -> test (beside train -> build -> fuzz) -> gate -> deploy.

The model's tests run in the background while the model is trained, built, started once as the candidate
and fuzzed (independent checks; nothing is released unless all pass). promote.py then waits for the tests
before the load-test gate, so the gate measures the candidate on a machine where nothing else of ours runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from modelctl import procs
from modelctl.delivery import build as building
from modelctl.delivery import promote as promoting
from modelctl.delivery import release
from modelctl.delivery import train as training
from modelctl.delivery.stages import Stage, StageLog
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
        failed = _blamed(log, exc)
        if not run.promoting:  # promote notifies for itself; earlier failures are announced here
            _announce_failure(model, run, failed, exc)
        raise StageFailedError(failed.name if failed else "pipeline", exc, run) from exc
    run.wall_seconds = time.monotonic() - started
    if run.promotion is not None:
        run.live_after = run.wall_seconds - _after_live(run)
    return run


def _blamed(log: StageLog, exc: ModelctlError) -> Stage | None:
    """The stage whose failure ended the run: the tests when they are what raised, else the first other failed
    stage (tests that failed beside a fuzz or gate failure are in the table, but did not end the run)."""
    failed = [s for s in log.stages if s.status == "FAILED"]
    if isinstance(exc, promoting.PrerequisiteFailedError):
        return next((s for s in failed if s.name == "test"), None)
    return next((s for s in failed if s.name != "test"), failed[0] if failed else None)


def _after_live(run: PipelineRun) -> float:
    watch = next((s for s in run.log.stages if s.name == "watch"), None)
    return watch.seconds if watch is not None else 0.0


def _run(model: Model, env: str, skip_tests: bool, approved: bool, run: PipelineRun) -> None:
    log = run.log
    with log.stage("validate") as stage:
        # What would refuse the deploy is checked before anything is trained.
        release.check_environment(model, env, approved)
        target = release.choose_target(model, None)
        stage.detail = f"config ok ({model.config.framework}, {model.config.task}; {target} target)"
    with log.stage("environment") as stage:
        stage.detail = str(model.python().parent.parent.name)
    if model.config.input == "entity":
        # What the candidate reads by id: the online store loaded before it trains and serves (as CI's jobs do).
        with log.stage("features") as stage:
            from modelctl.features import materialize
            from modelctl.state import State

            views = materialize(model.repo.root, State.of(model.repo).root, say=lambda _line: None)
            stage.detail = f"{len(views)} feature view(s) materialized into the online store"
    tests = _BackgroundTests(model, log) if not skip_tests else None
    try:
        with log.stage("train") as stage:
            trained = run.trained = training.train(model)
            stage.detail = f"{trained.model_tag} " + " ".join(f"{k}={v}" for k, v in trained.metrics.items())
        with log.stage("build") as stage:
            built = building.build(model)
            stage.detail = built.bento
        if tests is None:
            log.record("test", 0.0, "skipped", status="skipped")
        run.promoting = True
        run.promotion = promoting.promote(
            model,
            built.bento,
            env,
            approved=approved,
            stages=log,
            title=f"pipeline {model.name} -> {env}",
            before_gate=tests.finish if tests is not None else None,
            on_failure=tests.stop if tests is not None else None,
        )
    finally:
        if tests is not None:  # the run ended another way (a failure, Ctrl-C, SIGTERM): no waiting for the tests
            tests.stop()


class _BackgroundTests:
    """The model's tests, run in a thread (it waits on pytest, so the GIL is free) while the pipeline goes on.

    `finish` waits for them and records the stage (raising `PrerequisiteFailedError` when they failed); `stop`
    ends them at once when the run is over for another reason, recording them as stopped unless they had
    already finished.
    """

    def __init__(self, model: Model, log: StageLog) -> None:
        self.log = log
        self.value: str | None = None
        self.error: ModelctlError | None = None
        self.seconds = 0.0
        self._pid: int | None = None
        self._stopping = False
        self._recorded = False
        self._lock = threading.Lock()
        # Not Thread.is_alive()/join(): on Python 3.11 a join interrupted by a signal marks a running thread stopped.
        self._done = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(model,), daemon=True)
        self._thread.start()

    def _run(self, model: Model) -> None:
        try:
            self.value = run_tests(model, on_start=self._on_start)
        except ModelctlError as exc:
            self.error = exc
        finally:
            self.seconds = time.monotonic() - self._started
            self._done.set()

    def _on_start(self, pid: int) -> None:
        with self._lock:
            self._pid = pid
            stopping = self._stopping
        if stopping:
            self._kill()

    def _kill(self) -> None:
        identity = procs.Identity.of(self._pid) if self._pid is not None else None
        if identity is not None:
            procs.stop_tree([identity], timeout=5.0)

    def finish(self) -> None:
        self._done.wait()
        if self._recorded:
            return
        self._recorded = True
        if self.error is None:
            self.log.record("test", self.seconds, self.value or "")
            return
        self.log.record("test", self.seconds, str(self.error).splitlines()[0], status="FAILED")
        for stage in self.log.stages:
            if stage.status == "pending":
                stage.status = "not run"
        raise promoting.PrerequisiteFailedError(self.error)

    def stop(self) -> None:
        if self._recorded:
            return
        with self._lock:
            self._stopping = True
        if not self._done.is_set():
            self._kill()
            self._done.wait(timeout=30)
            self._recorded = True
            self.log.record("test", self.seconds, "stopped: the run ended before they finished", status="stopped")
            return
        try:
            self.finish()  # they had finished: their real result goes in the table
        except promoting.PrerequisiteFailedError:
            pass


def _announce_failure(model: Model, run: PipelineRun, failed: Stage | None, exc: ModelctlError) -> None:
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
