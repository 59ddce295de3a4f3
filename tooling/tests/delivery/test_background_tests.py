"""The pipeline's background tests: finished when the gate needs them, stopped at once when the run ends otherwise."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import pytest

from modelctl import cmd, procs
from modelctl.delivery import pipeline
from modelctl.delivery.promote import PrerequisiteFailedError
from modelctl.delivery.stages import StageLog

SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]


def _fake_tests(argv: list[str], fail: bool = False) -> Any:
    def run(model: object, on_start: Any = None) -> str:
        cmd.run(argv, what="the tests", on_start=on_start)
        if fail:
            raise cmd.CommandError("the tests", argv, 1, "1 failed")
        return "3 passed"

    return run


def _status(log: StageLog) -> tuple[str, str]:
    stage = next(s for s in log.stages if s.name == "test")
    return stage.status, stage.detail


def test_finish_records_what_the_tests_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "run_tests", _fake_tests([sys.executable, "-c", "pass"]))
    log = StageLog("t", ["test", "load-test gate"])
    tests = pipeline._BackgroundTests(None, log)  # type: ignore[arg-type]  # noqa: SLF001
    tests.finish()
    assert _status(log) == ("ok", "3 passed")


def test_failed_tests_stop_the_run_before_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "run_tests", _fake_tests([sys.executable, "-c", "pass"], fail=True))
    log = StageLog("t", ["test", "load-test gate"])
    tests = pipeline._BackgroundTests(None, log)  # type: ignore[arg-type]  # noqa: SLF001
    with pytest.raises(PrerequisiteFailedError):
        tests.finish()
    assert _status(log)[0] == "FAILED" and log.stages[1].status == "not run"
    tests.stop()  # already recorded: nothing changes
    assert _status(log)[0] == "FAILED"


def test_sigterm_while_waiting_stops_the_tests_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "run_tests", _fake_tests(SLEEP))
    log = StageLog("t", ["test"])
    with procs.supervised():
        tests = pipeline._BackgroundTests(None, log)  # type: ignore[arg-type]  # noqa: SLF001
        deadline = time.monotonic() + 30
        while tests._pid is None and time.monotonic() < deadline:  # noqa: SLF001
            time.sleep(0.05)
        pid = tests._pid  # noqa: SLF001
        assert pid is not None and procs.alive(pid)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(procs.Interrupted):
            tests.finish()  # waiting for the gate: interrupted (Python 3.11 would now think a join()ed thread ended)
        started = time.monotonic()
        tests.stop()
    assert time.monotonic() - started < 20, "not the 300 s the tests would take"
    assert not procs.alive(pid)
    assert _status(log) == ("stopped", "stopped: the run ended before they finished")
