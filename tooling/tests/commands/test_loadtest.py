"""`modelctl loadtest` and `modelctl fuzz` from the command line (real bentos on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from modelctl import bentos, procs
from modelctl.delivery import build, gate
from modelctl.delivery.reports import new_report_dir
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
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


# A listener that Locust runs after the platform's (listeners run in reverse order of registration) and that
# rewrites the summary the verdict is read from: 5000 requests, no failure, P90 1 ms (issue #20, item 3).
FORGE = """
import json as _json
import os as _os

from locust import events as _events


@_events.quitting.add_listener
def _forge(environment, **_kwargs):
    forged = {"requests": 5000, "failures": 0, "rps": 500.0, "p50_ms": 1, "p90_ms": 1, "p99_ms": 1}
    with open(_os.environ["MODELCTL_LOCUST_SUMMARY"], "w") as handle:
        _json.dump(forged, handle)
"""


def test_a_locustfile_that_forges_the_summary_cannot_pass_the_gate(
    delivery: Repo, gated: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = State.of(delivery).gate_result(gated[1])
    locustfile = delivery.model_dir(MODEL) / "locustfile.py"
    # 2 ms: below any real P90 of a served model on this machine, above the forged 1 ms.
    with appended(locustfile, FORGE), config_changed(delivery, loadtest__max_p90_ms=2):
        before = reports_of(delivery)
        assert main(["loadtest", MODEL, "--bento", gated[1]]) == 3
        assert "gate breached: P90 latency" in capsys.readouterr().err
        (report,) = reports_of(delivery) - before
        measured = json.loads((report / "summary.json").read_text())
        assert measured["locust_user"] == "platform" and measured["p90_ms"] > 2 and measured["requests"] != 5000

        # The model's own locustfile still runs when asked for: its listener does forge that run's numbers (so the
        # gate above was really attacked), and an exploratory run never records a pass.
        assert main(["loadtest", MODEL, "--bento", gated[1], "--locustfile"]) == 0
        captured = capsys.readouterr()
        assert "### Exploratory load test PASS" in captured.out and "| P90 latency | 1 ms | 2 ms |" in captured.out
        assert "(models/iris_classifier/locustfile.py)" in captured.err
    assert State.of(delivery).gate_result(gated[1]) == recorded, "nothing was recorded for the bento"


# A package of the model's can ship a .pth file: Python runs it at every start-up of the model's interpreter, `-I`
# or not. This one rewrites any JSON summary Locust's summary plugin writes (the reviewer's attack on issue 20).
PTH_FORGE = (
    "import json; json.dump = (lambda dump: lambda obj, fp, *a, **k: dump({'requests': 5000, 'failures': 0, "
    "'rps': 500.0, 'p50_ms': 1, 'p90_ms': 1, 'p99_ms': 1} if __import__('os').environ.get('MODELCTL_LOCUST_SUMMARY') "
    "else obj, fp, *a, **k))(json.dump)\n"
)


def test_a_package_of_the_model_cannot_forge_the_gate(
    delivery: Repo, gated: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate's Locust runs in the platform's own environment: the model's site-packages never start there."""
    model = delivery.model(MODEL)
    site = model.run(["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], what="site").stdout.strip()
    pth = Path(site) / "zz_forge_gate.pth"
    pth.write_text(PTH_FORGE)
    try:
        forged = model.run(
            ["-I", "-c", "import json, io; b = io.StringIO(); json.dump({}, b); print(b.getvalue())"],
            what="the .pth is live in the model's interpreter",
            env={"MODELCTL_LOCUST_SUMMARY": "x"},
        ).stdout
        assert '"requests": 5000' in forged, "the attack works where the model's interpreter runs"
        with config_changed(delivery, loadtest__max_p90_ms=2):
            assert main(["loadtest", MODEL, "--bento", gated[1]]) == 3
        assert "gate breached: P90 latency" in capsys.readouterr().err
    finally:
        pth.unlink()


def test_a_locustfile_outside_the_model_folder_is_refused_before_anything_starts(
    delivery: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    before = reports_of(delivery)
    assert main(["loadtest", MODEL, "--locustfile", "../../pyproject.toml"]) == 2
    assert "is not a file in the model folder: --locustfile takes one" in capsys.readouterr().err
    assert reports_of(delivery) == before


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
