"""Retraining in CI, split in three jobs (issue 20 item 4): the champion fetched with credentials, the run without
them (the model's data source only), the outcome checked and recorded with credentials and no model code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelctl.delivery import ci, release, retrain, retrain_ci
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL
from tests.delivery.helpers import config_changed
from tests.delivery.test_retrain import DATA_ENV, ci_environment, make_db
from tests.stand_ins import http_stand_in

pytestmark = pytest.mark.slow


def without_store(monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    """The `retrain` job: no store, no token, no webhook; the model's data URL only."""
    for name in ("MODELCTL_STORE", "GITHUB_TOKEN", "SLACK_WEBHOOK_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(state_dir))


def test_a_winner_without_a_champion_is_stored_and_dispatched(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from tests.s3_stand_in import use_s3

    ci_environment(monkeypatch)
    store = use_s3(monkeypatch, s3_endpoint)
    monkeypatch.setenv("MODELCTL_STORE", store)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "champion-runner"))
    assert main(["ci", "champion", "--models", MODEL, "--env", "production", "--out", str(tmp_path / "champion")]) == 0
    assert json.loads(retrain_ci.champion_path(tmp_path / "champion", MODEL).read_text())["champion"] is None

    credentials = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    without_store(monkeypatch, tmp_path / "retrain-runner")
    monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "clean.db", shuffled=False))
    out = tmp_path / "retrained"
    record = retrain_ci.retrain_offline(Repo(delivery.root).model(MODEL), "production", tmp_path / "champion", out)
    assert record["decision"] == "winner" and (out / f"{MODEL}.bento").is_file()
    assert (out / f"{MODEL}.bentomodel").is_file()

    for key, value in credentials.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MODELCTL_STORE", store)
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken-value")
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "record-runner"))
    with http_stand_in([204]) as github, http_stand_in([]) as slack:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        recorded = retrain_ci.record_retrain(Repo(delivery.root).model(MODEL), "production", out)
    assert recorded["decision"] == retrain.DISPATCHED
    assert github.requests[0].body["inputs"]["bento"] == record["bento"]
    assert slack.requests, "the run is announced"
    shared = State.of(delivery)
    stored = shared.store.stat_file(State.artifact_key("bento", record["bento"]))
    assert stored is not None and stored.sha256 == record["bento_sha256"]
    assert shared.retrain_log.records(MODEL)[-1]["decision"] == retrain.DISPATCHED


def test_a_worse_candidate_keeps_the_champion_fetched_from_the_store(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from tests.s3_stand_in import use_s3

    champion, bento = gated
    local = State.of(delivery)
    gate, fuzz = local.gate_result(bento), local.fuzz_result(bento)
    assert gate is not None and fuzz is not None
    dist = tmp_path / "dist"
    path, digest = release.export(delivery.model(MODEL), bento, dist / f"{MODEL}.bento")
    ci_environment(monkeypatch)
    store = use_s3(monkeypatch, s3_endpoint)
    monkeypatch.setenv("MODELCTL_STORE", store)
    shared = State.of(delivery)
    shared.put_gate_result(bento, gate)
    shared.put_fuzz_result(bento, fuzz)
    shared.put_artifact("bento", bento, path)
    shared.store.write_json(ci.run_key(MODEL), {"model": MODEL, "bento": bento, "sha256": digest})
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "deploy-runner"))
    ci.deploy_file(Repo(delivery.root).model(MODEL), "staging", dist)
    try:
        monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "champion-runner"))
        retrain_ci.fetch_champion(Repo(delivery.root).model(MODEL), "staging", tmp_path / "champion")
        credentials = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

        without_store(monkeypatch, tmp_path / "retrain-runner")
        monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "clean.db", shuffled=False))
        out = tmp_path / "retrained"
        # No candidate can gain a whole 1.0 of accuracy: the champion is kept.
        with config_changed(delivery, retrain__min_improvement=1.0) as repo:
            record = retrain_ci.retrain_offline(repo.model(MODEL), "staging", tmp_path / "champion", out)
        assert record["champion"] == champion and record["decision"] == "kept champion", record
        assert "accuracy" in record["champion_metrics"]
        assert not (out / f"{MODEL}.bento").exists()

        for key, value in credentials.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("MODELCTL_STORE", store)
        monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "record-runner"))
        with http_stand_in([]) as slack:
            monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
            recorded = retrain_ci.record_retrain(Repo(delivery.root).model(MODEL), "staging", out)
        assert recorded["decision"] == "kept champion" and slack.requests
        assert State.of(delivery).retrain_log.records(MODEL)[-1]["champion"] == champion
    finally:
        monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "deploy-runner"))  # where the server was started
        monkeypatch.setenv("MODELCTL_STORE", store)
        release.undeploy(Repo(delivery.root), MODEL, "staging")


@pytest.mark.parametrize("case", ["failed", "missing", "forged winner", "not better", "deep"])
def test_the_record_job_logs_and_alerts_what_it_cannot_ship(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, case: str
) -> None:
    from tests.s3_stand_in import use_s3

    ci_environment(monkeypatch)
    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    out = tmp_path / "retrained"
    out.mkdir()
    handoff = {"model": MODEL, "env": "production", "champion": None}
    if case == "failed":
        reason = "postgresql://u:hunter2@db/x refused"  # pragma: allowlist secret
        handoff |= {"decision": "failed", "failed_step": "extract", "reason": reason}
    elif case == "forged winner":
        (out / f"{MODEL}.bento").write_bytes(b"not an archive")
        (out / f"{MODEL}.bentomodel").write_bytes(b"x")
        handoff |= {
            "decision": "winner",
            "candidate": f"{MODEL}:forged",
            "candidate_metrics": {"accuracy": 1.0},
            "bento": f"{MODEL}:forged",
            "bento_sha256": "0" * 64,
            "model_sha256": "0" * 64,
        }
    elif case == "not better":  # the file says winner; config.yaml's rule, applied again, says no
        handoff |= {
            "decision": "winner",
            "candidate": f"{MODEL}:forged",
            "candidate_metrics": {"accuracy": 0.5},
            "champion": f"{MODEL}:live",
            "champion_metrics": {"accuracy": 0.9},
            "bento": f"{MODEL}:forged",
            "bento_sha256": "0" * 64,
            "model_sha256": "0" * 64,
            "at": "1999-01-01T00:00:00+00:00",  # the log says when, not the file
        }
    if case == "deep":
        retrain_ci.handoff_path(out, MODEL).write_text("[" * 200_000)
    elif case != "missing":
        retrain_ci.handoff_path(out, MODEL).write_text(json.dumps(handoff))
    with http_stand_in([204]) as github, http_stand_in([]) as slack:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        with pytest.raises(retrain.RetrainError, match="the live model is unchanged"):
            retrain_ci.record_retrain(Repo(delivery.root).model(MODEL), "production", out)
    assert not github.requests, "nothing is dispatched"
    assert slack.requests, "the failure is alerted"
    logged = State.of(delivery).retrain_log.records(MODEL)[-1]
    assert logged["decision"] == "failed"
    assert "hunter2" not in json.dumps(logged), "passwords are masked"
    assert logged["at"] != "1999-01-01T00:00:00+00:00"
    if case == "not better":
        assert "by the retrain rule" in logged["reason"], logged
    assert State.of(delivery).store.stat_file(State.artifact_key("bento", f"{MODEL}:forged")) is None


def test_the_run_refuses_a_shared_store(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    from tests.s3_stand_in import use_s3

    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    with pytest.raises(release.ModelctlError, match="must not reach the shared store"):
        retrain_ci.retrain_offline(delivery.model(MODEL), "production", tmp_path / "c", tmp_path / "o")
