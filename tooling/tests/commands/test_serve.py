"""`modelctl serve`: what it serves, on which port, and that stopping it stops the BentoML server and its workers.

The signal tests run `modelctl serve` as a real process, as a supervisor would, and signal only that process.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelctl import bentos, procs
from modelctl.errors import UsageError
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import Cli
from tests.test_local_target import MODEL, prepare_example, use_example
from tests.test_procs import gone, until

SECRET = "modelctl-holds-this-the-model-must-not"  # pragma: allowlist secret
READY_S = 240.0  # a hang guard for a loaded machine, not a timing assertion


@pytest.fixture(scope="session")
def example_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example model trained and built twice (shared with tests/test_local_target.py)."""
    return prepare_example(tmp_path_factory)


@pytest.fixture
def example(example_session: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return use_example(example_session, tmp_path, monkeypatch)


@dataclass
class Serving:
    process: procs.Server
    port: int
    log: Path
    tree: list[procs.Identity]  # the BentoML server and its workers, once ready

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def modelctl_serve(tmp_path: Path, *args: str, port: int) -> Iterator[Serving]:
    """`modelctl serve ARGS` as its own process, ready; everything it started is stopped afterwards."""
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "modelctl.main", "serve", MODEL, *args]
    serve = procs.start(cmd, Path.cwd(), log, detached=True)
    serving = Serving(serve, port, log, [])
    try:
        until(
            lambda: procs.healthy(f"http://127.0.0.1:{port}", timeout=1) or serve.process.poll() is not None,
            "the server to be ready",
            timeout=READY_S,
        )
        assert serve.process.poll() is None, f"modelctl serve exited early:\n{serving.output}"
        serving.tree = [i for i in map(procs.Identity.of, procs.descendants(serve.pid)) if i is not None]
        yield serving
    finally:
        markers = {procs.owner_of(i.pid) for i in serving.tree} - {None}
        procs.stop_tree([serve.identity, *serving.tree], timeout=10)
        for marker in markers:
            assert marker is not None
            procs.stop_tree([], owner=marker, timeout=10)


def assert_stopped(serving: Serving) -> None:
    until(lambda: gone(serving.tree) and not procs.port_in_use(serving.port), "the server tree to stop", timeout=60)


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_workers(
    example: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = procs.free_port()
    # modelctl holds a credential; the model's server and workers never get it (issue 20 item 4).
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with modelctl_serve(tmp_path, "--port", str(port), port=port) as serving:
        newest = example["bentos"][-1]
        assert f"serving {newest} on http://127.0.0.1:{port}" in serving.output, "the newest bento, on --port"
        assert len(serving.tree) >= 2, "a server and at least one worker"
        for process in serving.tree:
            environ = Path(f"/proc/{process.pid}/environ").read_bytes()
            assert SECRET.encode() not in environ and b"BENTOML_HOME=" in environ, process
        os.kill(serving.process.pid, signal.SIGTERM)
        code = serving.process.process.wait(timeout=120)
        assert code in (130, 128 + signal.SIGTERM), serving.output
        assert_stopped(serving)


@pytest.mark.slow
def test_sigint_to_a_model_folder_server_stops_it(
    example: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No bento built: the model folder is served, on serving.ports.dev. (A model store without bentos.)"""
    store = tmp_path / "bentoml"
    shutil.copytree(Path(example["bentoml_home"]) / "models", store / "models")
    monkeypatch.setenv("BENTOML_HOME", str(store))
    port = example["ports"]["dev"]
    with modelctl_serve(tmp_path, port=port) as serving:
        assert "no bento built; serving the model folder (service:IrisClassifier)" in serving.output
        assert f"serving service:IrisClassifier on http://127.0.0.1:{port}" in serving.output
        os.kill(serving.process.pid, signal.SIGINT)
        assert serving.process.process.wait(timeout=120) == 130
        assert_stopped(serving)


@pytest.mark.slow
def test_sigkill_of_modelctl_still_stops_the_server(example: dict[str, Any], tmp_path: Path) -> None:
    """No handler runs on SIGKILL: the kernel sends the server SIGTERM when its parent dies."""
    port = procs.free_port()
    oldest = example["bentos"][0]
    with modelctl_serve(tmp_path, "--bento", oldest, "--port", str(port), port=port) as serving:
        assert f"serving {oldest} on" in serving.output
        os.kill(serving.process.pid, signal.SIGKILL)
        assert_stopped(serving)


@pytest.mark.slow
def test_a_server_that_exits_by_itself_gives_its_exit_code(
    example: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", MODEL, "--bento", f"{MODEL}:doesnotexist", "--port", str(procs.free_port())])
    assert code != 0
    assert f"serving {MODEL}:doesnotexist on" in capsys.readouterr().err


def test_serve_names_an_unknown_model(cli: Cli) -> None:
    result = cli("serve", "no_such_model")
    assert result.code == 2 and "unknown model 'no_such_model'" in result.err


def test_latest_bento_is_the_newest_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    repo = Repo(tmp_path)
    assert bentos.latest_bento(repo, MODEL) is None
    home = State.of(repo).bentoml_home / "bentos" / MODEL
    for age, version in enumerate(["newest", "middle", "oldest"]):
        (home / version).mkdir(parents=True)
        (home / version / "bento.yaml").write_text("name: x\n")
        os.utime(home / version / "bento.yaml", (1_000_000 - age, 1_000_000 - age))
    (home / "half-written").mkdir()  # no bento.yaml: not a bento
    assert bentos.latest_bento(repo, MODEL) == f"{MODEL}:newest"


def test_folder_target_is_the_bentoml_service_class(monorepo: Path) -> None:
    repo = Repo(monorepo)
    assert bentos.folder_target(repo, MODEL) == "service:IrisClassifier"
    service = repo.model_dir(MODEL) / "service.py"
    service.write_text("import bentoml\n\n\n@bentoml.service(workers=1)\nclass HandWritten:\n    pass\n")
    assert bentos.folder_target(repo, MODEL) == "service:HandWritten", "a hand-written service works too"
    service.write_text("class Helper:\n    pass\n")
    with pytest.raises(UsageError, match="no service in .*service.py"):
        bentos.folder_target(repo, MODEL)
