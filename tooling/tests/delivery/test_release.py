"""Release: deploy, status, rollback, undeploy, export and import of gate-passed bentos (real servers)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelctl import platformenv, procs
from modelctl.delivery import build, promote, release, train
from modelctl.delivery.stages import StageLog
from modelctl.errors import UsageError
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.targets import kubernetes, local
from tests.conftest import MODEL
from tests.delivery.helpers import appended, config_changed, predict, served_model

pytestmark = pytest.mark.slow


def status_of(repo: Repo, env: str) -> dict[str, object]:
    return next(r for r in release.status_rows(repo, [MODEL]) if r["env"] == env)


def test_deploy_status_rollback_undeploy(delivery: Repo, gated: tuple[str, str]) -> None:
    model = delivery.model(MODEL)
    ledger = State.of(delivery).ledger
    first = release.deploy(model, "staging", gated[1])
    try:
        assert first.outcome == "deployed" and first.url and first.metrics["accuracy"] > 0.85
        assert first.loadtest["p90_ms"] > 0, "the gate's numbers are in the ledger"
        assert (status_of(delivery, "staging")["health"], status_of(delivery, "staging")["version"]) == (
            "up",
            first.version,
        )
        assert served_model(first.url) == gated[0]

        second_tag = train.train(model).model_tag
        second_bento = build.build(model).bento
        promote.verify(model, second_bento, StageLog("second", []), examples=5)
        second = release.deploy(model, "staging", second_bento)
        assert second.version == first.version + 1 and second.url == first.url
        assert served_model(first.url) == second_tag != gated[0]

        assert main(["rollback", MODEL, "--env", "staging"]) == 0
        live = ledger.live(MODEL, "staging")
        assert live is not None and (live.outcome, live.version, live.bento) == ("rolled_back", first.version, gated[1])
        assert served_model(first.url) == gated[0], "a rollback restores the model, not only the code"
        assert main(["rollback", MODEL, "--env", "staging", "--to", str(second.version)]) == 0
        assert served_model(first.url) == second_tag
    finally:
        assert main(["undeploy", MODEL, "--env", "staging"]) == 0
    assert status_of(delivery, "staging")["health"] == "not deployed"
    assert not procs.healthy(first.url)


def test_a_deploy_needs_fuzzing_and_the_gate_recorded_for_that_bento(monorepo: Path) -> None:
    model = Repo(monorepo).model(MODEL)
    state, bento = State.of(model.repo), f"{MODEL}:v1"
    fuzz, loadtest = f"`modelctl fuzz {MODEL} --bento {bento}`", f"`modelctl loadtest {MODEL} --bento {bento}`"
    assert release.unverified(model, bento) == (
        f"{bento} has passed neither fuzzing nor the load-test gate; run {fuzz}, then {loadtest}"
    )
    state.put_gate_result(bento, {"bento": bento, "passed": True, "locust_user": "platform"})
    assert release.unverified(model, bento) == f"{bento} has not passed fuzzing; run {fuzz}"
    state.put_fuzz_result(bento, {"bento": bento, "passed": True})
    assert release.unverified(model, bento) is None
    state.put_fuzz_result(f"{MODEL}:v2", {"bento": f"{MODEL}:v2", "passed": True})
    assert release.unverified(model, f"{MODEL}:v2") == (
        f"{MODEL}:v2 has not passed the load-test gate; run `modelctl loadtest {MODEL} --bento {MODEL}:v2`"
    ), "each bento has its own records"


def test_a_bento_that_was_only_load_tested_deploys_once_fuzzed(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = delivery.model(MODEL)
    bento = build.build(model).bento
    fuzz = f"`modelctl fuzz {MODEL} --bento {bento}`"
    assert main(["loadtest", MODEL, "--bento", bento]) == 0
    said = capsys.readouterr().err
    deploy = ["deploy", MODEL, "--env", "staging", "--bento", bento]
    assert main(deploy) == 1
    assert f"{bento} has not passed fuzzing; run {fuzz} (or --force)" in capsys.readouterr().err
    assert f"a deploy also needs: {bento} has not passed fuzzing; run {fuzz}" in said, "loadtest said so"
    assert main(["export", MODEL, "--bento", bento, "--out", str(tmp_path / "model.bento")]) == 1
    assert f"{bento} has not passed fuzzing; run {fuzz}" in capsys.readouterr().err
    assert all(r.bento != bento for r in State.of(delivery).ledger.records(MODEL)), "a refusal deploys nothing"

    assert main(["fuzz", MODEL, "--bento", bento, "--examples", "5"]) == 0
    try:
        assert main(deploy) == 0
        live = State.of(delivery).ledger.live(MODEL, "staging")
        assert live is not None and live.bento == bento and live.loadtest["p90_ms"] > 0
    finally:
        assert main(["undeploy", MODEL, "--env", "staging"]) == 0


def test_production_needs_approval(delivery: Repo, gated: tuple[str, str]) -> None:
    with pytest.raises(UsageError, match="production requires approval: pass --yes"):
        release.deploy(delivery.model(MODEL), "production", gated[1])
    assert main(["deploy", MODEL, "--env", "production", "--bento", gated[1]]) == 2


def test_a_killed_live_service_is_reported_down_and_a_redeploy_restores_it(
    delivery: Repo, gated: tuple[str, str]
) -> None:
    model = delivery.model(MODEL)
    release.deploy(model, "staging", gated[1])
    try:
        live = local.read_live(delivery, MODEL, "staging")
        assert live is not None and live.workers, "the worker pids are recorded"
        os.kill(live.pid, signal.SIGKILL)  # a crash of the server process: its workers are orphaned
        while procs.alive(live.pid):
            pass
        assert status_of(delivery, "staging")["health"] == "down"
        record = release.deploy(model, "staging", gated[1])
        assert record.url is not None
        predict(record.url, delivery)
        assert status_of(delivery, "staging")["health"] == "up"
    finally:
        release.undeploy(delivery, MODEL, "staging")


def test_a_second_deploy_waits_then_fails_clearly(
    delivery: Repo, gated: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCTL_DEPLOY_LOCK_WAIT", "1")
    ledger = State.of(delivery).ledger
    records_before = len(ledger.records(MODEL))
    with local.deploy_lock(delivery, MODEL, "staging"):
        with pytest.raises(local.DeployError, match="another deploy of iris_classifier to staging is still running"):
            release.deploy(delivery.model(MODEL), "staging", gated[1])
    assert len(ledger.records(MODEL)) == records_before


def test_an_exported_bento_is_deployed_only_with_the_digest_handed_over(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = tmp_path / "dist" / "model.bento"
    capsys.readouterr()
    assert main(["export", MODEL, "--bento", gated[1], "--out", str(artifact)]) == 0
    digest = capsys.readouterr().out.split("sha256=")[1].split()[0]
    deploy = ["deploy", MODEL, "--env", "production", "--yes", "--bento-file", str(artifact)]
    assert main(deploy) == 2, "a file without a digest handed over is refused"
    assert "--bento-file needs --sha256" in capsys.readouterr().err
    assert main([*deploy, "--sha256", "0" * 64]) == 1
    assert "sha256" in capsys.readouterr().err
    assert main([*deploy, "--sha256", digest]) == 0
    try:
        record = State.of(delivery).ledger.live(MODEL, "production")
        assert record is not None and record.sha256 == digest and record.bento == gated[1]
        assert record.url is not None
        predict(record.url, delivery)
    finally:
        assert main(["undeploy", MODEL, "--env", "production"]) == 0


def test_the_kubernetes_target_renders_valid_manifests(delivery: Repo, gated: tuple[str, str]) -> None:
    import kubernetes_validate

    ledger = State.of(delivery).ledger
    live_before = ledger.live(MODEL, "staging")
    with config_changed(
        delivery, deploy__targets=["local", "kubernetes"], deploy__kubernetes={"image_repository": "ghcr.io/acme"}
    ) as repo:
        record = release.deploy(repo.model(MODEL), "staging", gated[1], target="kubernetes")
    assert record.outcome == "rendered" and record.url is None
    manifests = list(
        yaml.safe_load_all((State.of(delivery).deploy_dir(MODEL, "staging") / "kubernetes.yaml").read_text())
    )
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    assert ledger.live(MODEL, "staging") == live_before, "rendering does not change what is live"


def test_containerize_without_docker_fails_clearly(delivery: Repo, gated: tuple[str, str]) -> None:
    state = State.of(delivery)
    with pytest.raises(kubernetes.KubernetesError, match="needs a running Docker daemon"):
        kubernetes.containerize(
            platformenv.python(state.root), gated[1], "ghcr.io/acme/x:1", platformenv.environment(state.bentoml_home)
        )


def test_an_older_bento_never_replaces_a_newer_live_one_unless_rolled_back(
    delivery: Repo, gated: tuple[str, str]
) -> None:
    from modelctl.delivery.release import DeployFailedError
    from tests.conftest import git

    model = delivery.model(MODEL)
    git(delivery.root, "commit", "-q", "--allow-empty", "-m", "a newer commit")
    newer = build.build(model).bento
    promote.verify(model, newer, StageLog("newer", []), examples=5)
    release.deploy(model, "staging", newer)
    try:
        with pytest.raises(DeployFailedError, match="older than .* refusing to go back in time"):
            release.deploy(model, "staging", gated[1])  # a re-run of an old workflow, say
        live = State.of(delivery).ledger.live(MODEL, "staging")
        assert live is not None and live.bento == newer
        assert State.of(delivery).ledger.records(MODEL)[-1].outcome == "failed"
        back = release.deploy(model, "staging", gated[1], outcome="rolled_back", approved=True, force=True)
        assert back.outcome == "rolled_back", "going back on purpose is a rollback"
    finally:
        release.undeploy(delivery, MODEL, "staging")


@contextmanager
def traffic(url: str, sample: dict[str, Any]) -> Iterator[None]:
    """Requests to ``url`` from a background thread for the block (what users would send during a watch)."""
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.is_set():
                try:
                    client.post(f"{url}/predict", json=sample)
                except httpx.HTTPError:
                    time.sleep(0.05)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


# A version that answers well at first (it passes the deploy's own checks) and fails 4 s after its first call.
DEGRADE = """
import time as _time

_first_call = []
_healthy_predict = predict


def predict(model, rows):
    _first_call.append(_time.monotonic())
    if _time.monotonic() - _first_call[0] > 4:
        raise RuntimeError("degraded")
    return _healthy_predict(model, rows)
"""


def test_the_watch_rolls_back_a_version_that_degrades_and_keeps_a_healthy_one(
    delivery: Repo, gated: tuple[str, str]
) -> None:
    from modelctl.delivery.release import WatchBreachedError

    ledger = State.of(delivery).ledger
    with config_changed(delivery, deploy__watch={"duration_s": 20, "interval_s": 1, "min_requests": 10}) as repo:
        model = repo.model(MODEL)
        good = release.deploy(model, "staging", gated[1], watch=False)
        try:
            assert good.url is not None
            with appended(model.folder / "model_io.py", DEGRADE):
                degrading = build.build(model).bento
            with traffic(good.url, model.sample()), pytest.raises(WatchBreachedError, match="rolled back to v"):
                release.deploy(model, "staging", degrading, force=True)
            live = ledger.live(MODEL, "staging")
            assert live is not None and (live.bento, live.outcome) == (gated[1], "rolled_back")
            failed = ledger.records(MODEL)[-1]
            assert failed.outcome == "failed" and failed.bento == degrading and "watch:" in (failed.reason or "")
            predict(good.url, delivery)

            with traffic(good.url, model.sample()):
                kept = release.deploy(model, "staging", gated[1])
            assert kept.outcome == "deployed" and ledger.live(MODEL, "staging") == kept, "a healthy version stays"
        finally:
            release.undeploy(delivery, MODEL, "staging")


def test_a_deploy_that_lost_its_lease_neither_rolls_back_nor_writes_the_ledger(
    monorepo: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #20, item 9: the lease of a deploy still watching its version expired and a second deploy took it;
    the first one's rollback must not overwrite the second's deploy."""
    import json
    import socket

    from modelctl import lease
    from modelctl.ledger import Record
    from tests.s3_stand_in import use_s3

    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    repo = Repo(monorepo)
    state = State.of(repo)
    with socket.socket() as sock:  # a port that was free a moment ago: the watch cannot observe the new version
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = Record(model=MODEL, env="staging", target="local", outcome="deployed", bento=f"{MODEL}:good", version=1)
    new = Record(
        model=MODEL,
        env="staging",
        target="local",
        outcome="deployed",
        bento=f"{MODEL}:new",
        url=f"http://127.0.0.1:{port}",
    )
    second = {"holder": "github run 2 (0123abcd)", "what": "a deploy", "expires_at": time.time() + 600}
    with release.locked(repo, MODEL, "staging") as held:
        assert held is not None, "a shared store: the deploy holds a lease in it"
        state.store.write(f"locks/{MODEL}/staging.json", json.dumps(second).encode())  # the second deploy took it
        with pytest.raises(
            lease.LeaseLostError,
            match=rf"^a deploy of {MODEL} to staging lost its lease to github run 2 \(0123abcd\) \(s3://.*\): "
            f"stopped before rolling back {MODEL}:new, nothing written$",
        ):
            release._watch_or_roll_back(repo.model(MODEL), "staging", new, before, held)
    assert state.ledger.records(MODEL) == [], "nothing written"
    assert local.read_live(repo, MODEL, "staging") is None, "nothing rolled back"
    blob = state.store.read(f"locks/{MODEL}/staging.json")
    assert blob is not None and json.loads(blob.data) == second, "the second deploy's lease is left alone"
