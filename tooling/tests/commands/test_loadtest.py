"""`modelctl loadtest` and `modelctl fuzz` from the command line (real bentos on 127.0.0.1)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from modelctl import bentos, procs
from modelctl.delivery import build, gate
from modelctl.delivery.reports import new_report_dir
from modelctl.main import main
from modelctl.repo import Repo
from tests.conftest import MODEL
from tests.delivery.helpers import appended, config_changed

pytestmark = pytest.mark.slow


def reports_of(repo: Repo) -> set[Path]:
    folder = repo.root / "reports" / MODEL
    return set(folder.iterdir()) if folder.is_dir() else set()


def test_a_gate_breach_exits_3_naming_the_limit(
    delivery: Repo, gated: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with config_changed(delivery, loadtest__max_p90_ms=0.001):
        assert main(["loadtest", MODEL, "--bento", gated[1]]) == 3
    assert "gate breached: P90 latency" in capsys.readouterr().err


def test_a_server_that_never_starts_is_exit_1_with_its_log(
    delivery: Repo, gated: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    model = delivery.model(MODEL)
    with appended(model.folder / "model_io.py", "def load(stored):\n    raise RuntimeError('broken model')"):
        broken = build.build(model).bento
    assert main(["loadtest", MODEL, "--bento", broken]) == 1
    err = capsys.readouterr().err
    assert "last lines of" in err and "broken model" in err, "the server log names the cause"


def test_a_bento_that_is_not_in_the_store_is_a_usage_error(delivery: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", MODEL, "--bento", f"{MODEL}:doesnotexist"]) == 2
    assert f"bento {MODEL}:doesnotexist is not in the store" in capsys.readouterr().err


def test_without_a_bento_nothing_is_started_and_no_report_folder_is_left(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "empty-state"))
    before = reports_of(delivery)
    for command in ("loadtest", "fuzz"):
        assert main([command, MODEL]) == 2
        assert f"no bento of {MODEL} is built" in capsys.readouterr().err
    assert reports_of(delivery) == before


def test_a_server_that_dies_during_the_load_test_fails_it(delivery: Repo, gated: tuple[str, str]) -> None:
    model = delivery.model(MODEL)
    running = bentos.start(delivery, MODEL, gated[1], procs.free_port(), delivery.root / "dying.log")
    killer = threading.Timer(2.0, running.stop)
    killer.start()
    started = time.monotonic()
    try:
        result = gate.load_test(model, running.url, new_report_dir(model), running.url, duration=5)
    finally:
        killer.cancel()
        running.stop()
    assert time.monotonic() - started < 120, "no hang"
    assert not result.verdict.passed
    assert any("error rate" in b for b in result.verdict.breaches), result.verdict.breaches


def test_fuzz_command_passes_the_example(
    delivery: Repo, gated: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fuzz", MODEL, "--bento", gated[1], "--examples", "5"]) == 0
    assert "### Fuzz PASS" in capsys.readouterr().out
