"""The local target: process identities in live.json, damaged records, ports held by other deployments.

Fast tests use stand-in servers (tests.test_procs) recorded as a deployment would record them; the slow
ones deploy the example model's real bento. `example` (shared with tests/commands/test_serve.py) trains
and builds the example once per session.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelctl import bentos, procs
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.targets import local
from tests.conftest import copy_monorepo
from tests.test_procs import gone, stand_in_cmd, until

MODEL = "iris_classifier"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A repository root for records only (the stand-ins need no model); state in <root>/.modelctl."""
    monkeypatch.delenv("MODELCTL_STATE_DIR", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    return Repo(root)


Deployment = Callable[..., local.Live]


@pytest.fixture
def stand_in_deployment(repo: Repo) -> Iterator[Deployment]:
    """Start a stand-in server as `local.deploy` would (detached, the deployment's marker) and record it."""
    started: list[local.Live] = []

    def run(model: str = MODEL, env: str = "staging", port: int | None = None, record: bool = True) -> local.Live:
        port = port or procs.free_port()
        bento = f"{model}:standin"
        log = State.of(repo).deploy_dir(model, env) / "server.log"
        server = procs.start(
            stand_in_cmd(port, bento), repo.root, log, owner=local.deployment_owner(repo, model, env), detached=True
        )
        until(lambda: procs.port_in_use(port) and any("stand-in-worker" in w.cmdline for w in _workers(server)), "it")
        live = local.Live(bento, port, str(log), 0.0, server.identity, server.record_workers())
        started.append(live)
        if record:
            local.write_live(repo, model, env, live)
        return live

    yield run
    for live in started:
        procs.stop_tree(live.identities, timeout=5)


def _workers(server: procs.Server) -> list[procs.Identity]:
    return [i for i in map(procs.Identity.of, procs.descendants(server.pid)) if i is not None]


@pytest.fixture
def unrelated(tmp_path: Path) -> Iterator[procs.Identity]:
    """A live process modelctl has nothing to do with (stopped after the test)."""
    server = procs.start(["sleep", "600"], tmp_path, None, detached=True)
    yield server.identity
    procs.stop_tree([server.identity], timeout=5)


# --- the record ------------------------------------------------------------------------------------------------


def test_every_write_keeps_the_previous_record(repo: Repo, unrelated: procs.Identity) -> None:
    first = local.Live("m:1", 3100, "a.log", 1.0, unrelated)
    second = local.Live("m:2", 3100, "b.log", 2.0, unrelated, [unrelated])
    local.write_live(repo, MODEL, "staging", first)
    local.write_live(repo, MODEL, "staging", second)
    path = local.live_file(repo, MODEL, "staging")
    assert local.read_live(repo, MODEL, "staging") == second
    assert local.Live.from_json(json.loads(Path(f"{path}.prev").read_text())) == first
    local.write_live(repo, MODEL, "staging", None)
    assert not path.exists() and local.Live.from_json(json.loads(Path(f"{path}.prev").read_text())) == second


# --- pid reuse (issue 15.6) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["identity record", "pid-only record"])
def test_undeploy_never_signals_a_process_whose_identity_does_not_match(
    repo: Repo, unrelated: procs.Identity, legacy: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose pids now belong to an unrelated process (after a crash or a reboot)."""
    path = local.live_file(repo, MODEL, "staging")
    path.parent.mkdir(parents=True)
    port = procs.free_port()
    bentoml = ("python", "-m", "bentoml", "serve", f"{MODEL}:old", "--port", str(port))
    record: dict[str, Any] = {"bento": f"{MODEL}:old", "port": port, "log": "x.log", "started_at": 1.0}
    if legacy:
        record |= {"pid": unrelated.pid, "workers": [unrelated.pid]}
    else:
        forged = procs.Identity(unrelated.pid, unrelated.create_time - 86400, bentoml)
        record |= {"server": forged.to_json(), "workers": [forged.to_json()]}
    path.write_text(json.dumps(record))

    record = local.read_live(repo, MODEL, "staging")
    assert record is not None and not record.running()
    local.undeploy(repo, MODEL, "staging")
    assert unrelated.matches(), "the unrelated process is alive"
    assert f"pid {unrelated.pid} is no longer the process modelctl started" in capsys.readouterr().err
    assert not path.exists()


# --- damaged records (issue 15.8) ---------------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "not JSON": lambda p: p.write_text('{"bento": "iris_classifier:x", "port": 31'),
    "JSON list": lambda p: p.write_text("[1, 2, 3]"),
    "wrong field types": lambda p: _edit(p, lambda d: {**d, "port": "3100"}),
    "missing field": lambda p: _edit(p, lambda d: {k: v for k, v in d.items() if k != "server"}),
    "null field": lambda p: _edit(p, lambda d: {**d, "bento": None}),
    "bad identity": lambda p: _edit(p, lambda d: {**d, "server": {"pid": -1}}),
    "bad UTF-8": lambda p: p.write_bytes(b'{"bento": "iris_\xff\xfe"}'),
    "empty": lambda p: p.write_bytes(b""),
    "deeply nested": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
}


@pytest.mark.parametrize("corrupt", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_a_damaged_record_is_one_line_naming_the_file_and_undeploy_still_stops_the_server(
    repo: Repo, stand_in_deployment: Deployment, corrupt: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    live = stand_in_deployment()
    path = local.live_file(repo, MODEL, "staging")
    local.write_live(repo, MODEL, "staging", live)  # a second write: live.json.prev holds a good record
    corrupt(path)
    damaged = path.read_bytes()

    with pytest.raises(local.LiveRecordError) as info:
        local.read_live(repo, MODEL, "staging")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert f"run `modelctl undeploy {MODEL} --env staging`" in message
    with pytest.raises(local.LiveRecordError):  # a deploy touches nothing
        local.deploy(repo, MODEL, "staging", f"{MODEL}:new", live.port, {})
    assert all(i.matches() for i in live.identities)

    stopped = local.undeploy(repo, MODEL, "staging")
    assert stopped is not None and (stopped.bento, stopped.port) == (live.bento, live.port), "found by its marker"
    assert gone(live.identities) and not procs.port_in_use(live.port)
    assert f"{path} is damaged" in capsys.readouterr().err
    assert not path.exists() and Path(f"{path}.damaged").read_bytes() == damaged, "the damaged record is kept"
    assert local.read_live(repo, MODEL, "staging") is None


def test_undeploy_stops_a_server_whose_record_is_missing(repo: Repo, stand_in_deployment: Deployment) -> None:
    live = stand_in_deployment(record=False)
    assert local.read_live(repo, MODEL, "staging") is None
    stopped = local.undeploy(repo, MODEL, "staging")
    assert stopped is not None and stopped.bento == live.bento
    assert gone(live.identities) and not procs.port_in_use(live.port)


def test_undeploy_stops_a_deployment_recorded_before_identities_were(
    repo: Repo, stand_in_deployment: Deployment
) -> None:
    live = stand_in_deployment(record=False)
    path = local.live_file(repo, MODEL, "staging")
    legacy = {"bento": live.bento, "port": live.port, "pid": live.pid, "log": live.log, "started_at": 1.0}
    path.write_text(json.dumps({**legacy, "workers": [w.pid for w in live.workers]}))
    record = local.read_live(repo, MODEL, "staging")
    assert record is not None and record.server == live.server, "adopted: its command line names bento and port"
    local.undeploy(repo, MODEL, "staging")
    assert gone(live.identities)


@pytest.mark.slow
def test_a_deploy_stops_what_a_lost_record_left_on_its_port(
    repo: Repo, stand_in_deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """live.json is gone but its server still holds the port: ours by its marker, so it is stopped, not named."""
    left = stand_in_deployment(record=False)
    with pytest.raises(local.DeployError, match="switch to iris_classifier:new failed"):  # no model env here
        local.deploy(repo, MODEL, "staging", f"{MODEL}:new", left.port, {})
    assert gone(left.identities) and not procs.port_in_use(left.port)
    assert "stopped 2 process(es) an earlier deployment to staging left running" in capsys.readouterr().err


def test_undeploy_with_nothing_deployed(repo: Repo) -> None:
    assert local.undeploy(repo, MODEL, "staging") is None


# --- ports held by someone else (issue 10) --------------------------------------------------------------------------


@pytest.mark.parametrize("other_record", ["intact", "damaged"])
def test_a_port_held_by_another_models_deployment_names_it(
    repo: Repo, stand_in_deployment: Deployment, other_record: str
) -> None:
    other = stand_in_deployment(model="fraud_scorer", env="staging")
    if other_record == "damaged":
        local.live_file(repo, "fraud_scorer", "staging").write_text("{")
    with pytest.raises(local.DeployError) as info:
        local.deploy(repo, MODEL, "production", f"{MODEL}:new", other.port, {})
    message = str(info.value)
    assert f"port {other.port} (production) is held by fraud_scorer's staging deployment" in message
    assert "free it with `modelctl undeploy fraud_scorer --env staging`" in message
    assert f"or change serving.ports.production in models/{MODEL}/config.yaml" in message
    assert "\n" not in message
    assert all(i.matches() for i in other.identities), "nothing was touched"
    assert local.read_live(repo, MODEL, "production") is None


def test_a_port_held_by_a_process_modelctl_did_not_start_says_so(repo: Repo) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(local.DeployError) as info:
            local.deploy(repo, MODEL, "staging", f"{MODEL}:new", port, {})
    message = str(info.value)
    assert f"port {port} (staging) is in use by a process modelctl did not start (pid {os.getpid()}:" in message
    assert f"stop it or change serving.ports.staging in models/{MODEL}/config.yaml" in message


def test_a_port_held_by_another_modelctl_commands_server_says_so(repo: Repo, tmp_path: Path) -> None:
    port = procs.free_port()
    server = procs.start(stand_in_cmd(port), tmp_path, tmp_path / "s.log", detached=True)
    try:
        until(lambda: procs.port_in_use(port), "the stand-in")
        message = local.port_held_message(repo, MODEL, "staging", port)
        assert f"port {port} (staging) is held by a server another modelctl command started (pid" in message
    finally:
        server.stop(timeout=5)


# --- the real example model -------------------------------------------------------------------------------------

_EXAMPLE: dict[str, Any] = {}


def prepare_example(factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Once per session: a monorepo copy with the example model's env, trained, and built twice."""
    if not _EXAMPLE:
        root = copy_monorepo(factory.mktemp("local-runtime") / "repo")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("MODELCTL_ROOT", str(root))
            patch.delenv("MODELCTL_STATE_DIR", raising=False)
            patch.delenv("BENTOML_HOME", raising=False)
            patch.chdir(root)
            repo = Repo(root)
            assert main(["train", MODEL]) == 0
            built = []
            for _ in range(2):
                assert main(["build", MODEL]) == 0
                built.append(bentos.latest_bento(repo, MODEL))
            assert None not in built and len(set(built)) == 2
            _EXAMPLE.update(root=root, bentoml_home=State.of(repo).bentoml_home, bentos=built)
    return _EXAMPLE


@pytest.fixture(scope="session")
def example_session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return prepare_example(tmp_path_factory)


@pytest.fixture
def example(example_session: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    return use_example(example_session, tmp_path, monkeypatch)


def use_example(example_session: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The prepared example with this test's own state directory (its deployments) and fresh free ports."""
    root: Path = example_session["root"]
    monkeypatch.setenv("MODELCTL_ROOT", str(root))
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BENTOML_HOME", str(example_session["bentoml_home"]))
    monkeypatch.chdir(root)
    config_path = root / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    ports = sorted({procs.free_port() for _ in range(6)})[:3]
    config["serving"]["ports"] = dict(zip(("dev", "staging", "production"), ports, strict=True))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    repo = Repo(root)
    sample = json.loads((repo.model_dir(MODEL) / "sample_request.json").read_text())
    return {**example_session, "repo": repo, "ports": config["serving"]["ports"], "sample": sample}


@pytest.fixture
def deployed(example: dict[str, Any]) -> Iterator[Callable[..., local.Live]]:
    """Deploy the example's newest bento locally; whatever a test deployed is stopped afterwards."""
    repo: Repo = example["repo"]
    seen: list[tuple[str, list[procs.Identity]]] = []

    def run(env: str = "staging", port: int | None = None) -> local.Live:
        live = local.deploy(repo, MODEL, env, example["bentos"][-1], port or example["ports"][env], example["sample"])
        seen.append((env, live.identities))
        return live

    yield run
    for env, identities in seen:
        procs.stop_tree(identities, owner=local.deployment_owner(repo, MODEL, env), timeout=10)


def predicts(url: str, sample: dict[str, Any]) -> bool:
    return httpx.post(f"{url}/predict", json=sample, timeout=30).status_code == 200


@pytest.mark.slow
def test_a_deployment_records_its_processes_and_undeploy_stops_them(
    example: dict[str, Any], deployed: Callable[..., local.Live]
) -> None:
    repo: Repo = example["repo"]
    live = deployed()
    assert live.workers, "the worker is recorded"
    assert all(i.matches() for i in live.identities)
    owner = local.deployment_owner(repo, MODEL, "staging")
    assert {procs.owner_of(i.pid) for i in live.identities} == {owner}, "the server and its workers carry the marker"
    assert local.read_live(repo, MODEL, "staging") == live
    assert predicts(live.url, example["sample"])
    assert local.undeploy(repo, MODEL, "staging") == live
    until(lambda: gone(live.identities) and not procs.port_in_use(live.port), "the deployment to stop")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["not JSON", "missing file"])
def test_a_real_deployment_with_a_damaged_record_is_still_undeployed(
    example: dict[str, Any], deployed: Callable[..., local.Live], damage: str
) -> None:
    repo: Repo = example["repo"]
    live = deployed()
    os.kill(live.pid, signal.SIGKILL)  # and the server crashed: only its worker holds the port
    until(lambda: not live.server.matches(), "the server to die")
    path = local.live_file(repo, MODEL, "staging")
    if damage == "missing file":
        path.unlink()
    else:
        path.write_text("{not json")
    local.undeploy(repo, MODEL, "staging")
    until(lambda: gone(live.identities) and not procs.port_in_use(live.port), "the deployment to stop")


@pytest.mark.slow
def test_a_port_held_by_another_real_deployment_names_it(
    example: dict[str, Any], deployed: Callable[..., local.Live]
) -> None:
    repo: Repo = example["repo"]
    staging = deployed("staging")
    with pytest.raises(local.DeployError) as info:
        deployed("production", port=staging.port)
    assert str(info.value).startswith(
        f"port {staging.port} (production) is held by {MODEL}'s staging deployment ({staging.bento}); "
        f"free it with `modelctl undeploy {MODEL} --env staging`"
    )
    assert predicts(staging.url, example["sample"]), "staging still serves"
    local.undeploy(repo, MODEL, "staging")
    until(lambda: gone(staging.identities), "staging to stop")


@pytest.mark.slow
def test_redeploy_replaces_the_live_server_and_its_workers(
    example: dict[str, Any], deployed: Callable[..., local.Live]
) -> None:
    repo: Repo = example["repo"]
    first = deployed()
    second = deployed()
    assert gone(first.identities) and all(i.matches() for i in second.identities)
    assert local.read_live(repo, MODEL, "staging") == second
    previous = local.Live.from_json(json.loads(Path(f"{local.live_file(repo, MODEL, 'staging')}.prev").read_text()))
    assert previous == first
    local.undeploy(repo, MODEL, "staging")
    until(lambda: gone(second.identities), "the deployment to stop")
