"""The deploy workflow's build, split so that model code never runs where a credential is (issue 20 item 4):
`ci build --no-store` (no credentials) hands over a file, `ci record` (credentials, no model code) checks it and
writes it to the shared store, and the deploy job ships exactly that archive."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelctl import procs
from modelctl.delivery import ci, release
from modelctl.main import main
from modelctl.model import MODEL_CODE_OWNER, stop_leftovers
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL
from tests.delivery.test_retrain import ci_environment

pytestmark = pytest.mark.slow


def handed_over(delivery: Repo, gated: tuple[str, str], dist: Path) -> dict[str, object]:
    """What `ci build --no-store` writes, from the session's gated bento (its export and its two records)."""
    _, bento = gated
    local = State.of(delivery)
    path, digest = release.export(delivery.model(MODEL), bento, dist / f"{MODEL}.bento")
    document = {
        "model": MODEL,
        "bento": bento,
        "sha256": digest,
        "gate": local.gate_result(bento),
        "fuzz": local.fuzz_result(bento),
    }
    ci.handoff_path(dist, MODEL).write_text(json.dumps(document))
    return document


def test_build_without_the_store_refuses_a_shared_one(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from tests.s3_stand_in import use_s3

    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    with pytest.raises(release.ModelctlError, match="must not reach the shared store"):
        ci.build_handoff(delivery.model(MODEL), tmp_path / "dist")


def test_the_split_build_records_and_the_deploy_ships_that_archive(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from tests.s3_stand_in import use_s3

    dist = tmp_path / "dist"
    # The step without credentials: no MODELCTL_STORE, a runner-local state folder.
    monkeypatch.delenv("MODELCTL_STORE", raising=False)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "build-runner"))
    ci_environment(monkeypatch)
    line = ci.build_handoff(Repo(delivery.root).model(MODEL), dist)
    handoff = json.loads(ci.handoff_path(dist, MODEL).read_text())
    assert handoff["bento"] in line and handoff["gate"]["passed"] is True and handoff["fuzz"]["passed"] is True

    # The step with the store's credentials: checks and records, without the model's environment.
    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    assert main(["ci", "record", "--models", MODEL, "--from", str(dist)]) == 0
    shared = State.of(delivery)
    assert shared.gate_result(handoff["bento"]) == handoff["gate"]
    assert shared.store.read_json(ci.run_key(MODEL))[0]["sha256"] == handoff["sha256"]

    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "deploy-runner"))
    deployed = ci.deploy_file(Repo(delivery.root).model(MODEL), "staging", dist)
    try:
        live = State.of(delivery).ledger.live(MODEL, "staging")
        assert live is not None and (live.bento, live.sha256) == (handoff["bento"], handoff["sha256"]), deployed
    finally:
        release.undeploy(Repo(delivery.root), MODEL, "staging")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("archive", "sha256"),
        ("gate", "no passing gate record"),
        ("fuzz", "no passing fuzz record"),
        ("model", "naming model"),
        ("digest", "is not 64 lowercase hex digits"),
        ("missing", "does not exist"),
        ("slow", "the recorded load test fails"),
        ("limits", "limits are not"),
        ("no cases", "shows no cases"),
        ("other bento", "is not one of"),
        ("recorded before", "already has a different gate record"),
    ],
)
def test_record_refuses_a_hand_off_it_cannot_vouch_for(
    delivery: Repo,
    gated: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_endpoint: str,
    tamper: str,
    message: str,
) -> None:
    from tests.s3_stand_in import use_s3

    dist = tmp_path / "dist"
    document = handed_over(delivery, gated, dist)
    if tamper == "archive":
        with (dist / f"{MODEL}.bento").open("ab") as archive_file:
            archive_file.write(b"\0")
    elif tamper in ("gate", "fuzz"):
        document[tamper] = {**document[tamper], "passed": False}  # type: ignore[dict-item]
    elif tamper == "model":
        document["model"] = "other_model"
    elif tamper == "digest":
        document["sha256"] = "../../etc/passwd"
    elif tamper == "slow":
        document["gate"] = {**document["gate"], "p90_ms": 10.0**9}  # type: ignore[dict-item]
    elif tamper == "limits":
        document["gate"] = {**document["gate"], "max_p90_ms": 10.0**9}  # type: ignore[dict-item]
    elif tamper == "no cases":
        document["fuzz"] = {**document["fuzz"], "cases": 0}  # type: ignore[dict-item]
    elif tamper == "other bento":
        document["gate"] = {**document["gate"], "bento": f"{MODEL}:other"}  # type: ignore[dict-item]
    if tamper == "missing":
        shutil.rmtree(dist)
    else:
        ci.handoff_path(dist, MODEL).write_text(json.dumps(document))
    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "record-runner"))
    if tamper == "recorded before":  # another run's record of this bento stays what it was
        State.of(delivery).put_gate_result(str(document["bento"]), {**document["gate"], "rps": 1.0})  # type: ignore[dict-item]
    with pytest.raises(release.ModelctlError, match=message):
        ci.record_handoff(Repo(delivery.root).model(MODEL), dist)
    assert main(["ci", "record", "--models", MODEL, "--from", str(dist)]) == 1, "the shard runner fails too"
    shared = State.of(delivery)
    assert shared.store.read_json(ci.run_key(MODEL)) is None, "nothing recorded for this run"


def test_what_model_code_leaves_running_is_stopped_before_anything_is_handed_on(delivery: Repo) -> None:
    """A process that a model's code starts in a session of its own outlives that code; it carries the marker
    `Model.run` gave it, so `stop_leftovers` (called before the export and the hand-off) finds and stops it."""
    daemon = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
    daemon += "start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)"
    delivery.model(MODEL).run(["-c", daemon], what="a model's code that leaves a daemon")
    try:
        assert procs.owned_by(MODEL_CODE_OWNER), "the daemon outlived the code that started it"
        assert stop_leftovers() >= 1
        assert not procs.owned_by(MODEL_CODE_OWNER)
    finally:
        procs.stop_tree([], owner=MODEL_CODE_OWNER, timeout=5)
