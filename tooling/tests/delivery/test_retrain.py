"""Champion/challenger retraining end to end: fresh data from SQL, a candidate, the decision, promotion."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from modelctl.delivery import release, retrain
from modelctl.delivery.train import store_env
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL
from tests.delivery.helpers import appended, served_model
from tests.stand_ins import http_stand_in

pytestmark = pytest.mark.slow
DATA_ENV = "IRIS_CLASSIFIER_DATA_URL"


def packaged_rows(repo: Repo) -> list[list[float]]:
    """The model's packaged training rows (features + target), read in the model's own environment."""
    script = (
        "import json, train; d = train.load_data(); "
        "print(json.dumps([[*map(float, x), int(y)] for x, y in zip(d.features, d.target)]))"
    )
    # An empty data URL: the packaged rows, whatever this test has pointed the model at.
    env = {**store_env(repo.model(MODEL)), DATA_ENV: ""}
    result = repo.model(MODEL).run(["-c", script], what="read rows", env=env)
    return list(json.loads(result.stdout))


def make_db(repo: Repo, path: Path, shuffled: bool) -> str:
    """A SQLite copy of the model's data (labels shuffled: a poor model) in the table the template queries."""
    rows = packaged_rows(repo)
    labels = [int(row[-1]) for row in rows]
    if shuffled:
        random.Random(1).shuffle(labels)
    with sqlite3.connect(path) as connection:
        connection.execute(
            f"CREATE TABLE {MODEL}_training (sepal_length REAL, sepal_width REAL, petal_length REAL, "
            "petal_width REAL, target INTEGER)"
        )
        connection.executemany(
            f"INSERT INTO {MODEL}_training VALUES (?, ?, ?, ?, ?)",
            [(*row[:-1], label) for row, label in zip(rows, labels, strict=True)],
        )
    return f"sqlite:///{path}"


def test_a_better_candidate_is_promoted_and_a_worse_one_is_not(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = delivery.model(MODEL)
    monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "noisy.db", shuffled=True))
    from modelctl.delivery import build, promote, train
    from modelctl.delivery.stages import StageLog

    champion_tag = train.train(model).model_tag
    champion_bento = build.build(model).bento
    promote.verify(model, champion_bento, StageLog("champion", []), examples=5)
    champion = release.deploy(model, "production", champion_bento, approved=True)
    try:
        assert champion.url is not None and served_model(champion.url) == champion_tag
        monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "clean.db", shuffled=False))
        with http_stand_in([]) as slack:
            monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
            record = retrain.retrain(model, "production")
        assert record["decision"].startswith("promoted"), record
        assert record["candidate_metrics"]["accuracy"] > record["champion_metrics"]["accuracy"] + 0.3
        live = State.of(delivery).ledger.live(MODEL, "production")
        assert live is not None and live.model_tag == record["candidate"] != champion_tag
        assert served_model(champion.url) == record["candidate"], "the new version is live"
        assert len(slack.requests) == 1, "one notification for the run"
        text = slack.requests[0].body["text"]
        assert "candidate accuracy" in text and "champion accuracy" in text and "promoted" in text

        before = State.of(delivery).ledger.live(MODEL, "production")
        with http_stand_in([]) as slack:
            monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
            kept = retrain.retrain(model, "production")
        assert kept["decision"] == "kept champion" and "not better" in kept["reason"]
        assert State.of(delivery).ledger.live(MODEL, "production") == before
        assert "kept champion" in slack.requests[-1].body["text"]
        assert State.of(delivery).retrain_log.records(MODEL)[-1]["decision"] == "kept champion"
        assert not list((State.of(delivery).root / "retrain-runs" / MODEL).glob("*")), "no training data left"
    finally:
        release.undeploy(delivery, MODEL, "production")


def test_a_failed_step_alerts_keeps_live_and_never_leaks_the_password(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "hunter2-data-secret"  # pragma: allowlist secret
    url = f"sqlite://reader:{password}@/{tmp_path / 'empty.db'}"  # no table: the extract step fails
    monkeypatch.setenv(DATA_ENV, url)
    before = State.of(delivery).ledger.live(MODEL, "production")
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["retrain", MODEL, "--env", "production"]) == 1
    captured = capsys.readouterr()
    assert "failed at extract" in captured.err
    assert "retrain iris_classifier failed at extract" in slack.requests[-1].body["text"]
    assert State.of(delivery).ledger.live(MODEL, "production") == before
    log = State.of(delivery).retrain_log
    assert log.records(MODEL)[-1]["failed_step"] == "extract"
    everything = captured.out + captured.err + json.dumps([r.body for r in slack.requests])
    stored = State.of(delivery).store.read(log.key(MODEL))
    assert stored is not None
    everything += stored.data.decode()
    assert password not in everything


def test_a_nan_candidate_fails_clearly(delivery: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    model = delivery.model(MODEL)
    nan_evaluate = "def evaluate(model, holdout):\n    return {'accuracy': float('nan')}"
    with appended(model.folder / "train.py", nan_evaluate):
        with pytest.raises(retrain.RetrainError, match="not a finite number"):
            retrain.retrain(model, "staging")
    assert State.of(delivery).retrain_log.records(MODEL)[-1]["failed_step"] == "evaluate"


def test_in_ci_the_data_source_is_required(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    assert main(["retrain", MODEL, "--require-data"]) == 1
    assert "IRIS_CLASSIFIER_DATA_URL is not set" in capsys.readouterr().err


def test_in_ci_a_winner_is_stored_and_the_deploy_that_follows_ships_exactly_it(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """Runner 1 retrains and stores the winner; runner 2 (a fresh state folder, the same bucket) builds from the
    store without training, and deploys the model version that won."""
    from modelctl.delivery import ci
    from tests.s3_stand_in import use_s3

    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner-1"))
    monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "clean.db", shuffled=False))
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": "t0ken-value",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_REF_NAME": "main",
        "GITHUB_RUN_ID": "4242",
    }.items():
        monkeypatch.setenv(key, value)
    with http_stand_in([204]) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        record = retrain.retrain(delivery.model(MODEL), "production")
    assert record["decision"] == "promoted: deploy.yml dispatched", "no champion in this bucket yet"
    request = github.requests[0]
    assert (request.method, request.path) == ("POST", "/repos/acme/models/actions/workflows/deploy.yml/dispatches")
    assert request.headers["Authorization"] == "Bearer t0ken-value"
    assert request.body["inputs"] == {"models": MODEL, "candidate": record["candidate"], "bento": record["bento"]}
    stored = State.of(delivery).store.stat_file(State.artifact_key("bento", record["bento"]))
    assert stored is not None and stored.sha256 == record["bento_sha256"]

    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner-2"))  # the deploy workflow's runner
    repo = Repo(delivery.root)
    line = ci.build_verified(repo.model(MODEL), tmp_path / "dist", stored=record["bento"])
    assert record["bento"] in line
    assert not any(r.get("decision") == "trained" for r in State.of(repo).retrain_log.records(MODEL))
    deployed = ci.deploy_file(repo.model(MODEL), "staging", tmp_path / "dist")
    try:
        live = State.of(repo).ledger.live(MODEL, "staging")
        assert live is not None and live.url is not None and record["bento"] in deployed
        assert served_model(live.url) == record["candidate"], "the deploy serves the model that won"
    finally:
        release.undeploy(repo, MODEL, "staging")


def test_in_ci_without_a_shared_store_retraining_refuses(delivery: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    with pytest.raises(retrain.RetrainError, match="needs a shared state store"):
        retrain.retrain(delivery.model(MODEL), "production")


def ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": "t0ken-value",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_REF_NAME": "main",
        "GITHUB_RUN_ID": "4343",
    }.items():
        monkeypatch.setenv(key, value)


def test_in_ci_on_a_fresh_runner_the_champion_comes_from_the_state_store(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """deploy.yml's runners export, store and deploy the champion to staging; the retrain job then runs on a fresh
    runner (its own state folder, an empty BentoML store) against the same bucket and must evaluate that champion."""
    from modelctl import bentostore
    from modelctl.delivery import ci
    from tests.s3_stand_in import use_s3

    champion, bento = gated
    model = delivery.model(MODEL)
    local = State.of(delivery)  # the session's runner: the gated bento, its gate and fuzz results
    gate, fuzz = local.gate_result(bento), local.fuzz_result(bento)
    assert gate is not None and fuzz is not None
    dist = tmp_path / "dist"
    path, digest = release.export(model, bento, dist / f"{MODEL}.bento")

    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    ci_environment(monkeypatch)
    shared = State.of(delivery)
    # What `ci build` keeps in the store for the deploy job: the verdicts, the archive and this run's digest.
    shared.put_gate_result(bento, gate)
    shared.put_fuzz_result(bento, fuzz)
    shared.put_artifact("bento", bento, path)
    shared.store.write_json(ci.run_key(MODEL), {"model": MODEL, "bento": bento, "sha256": digest})

    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "deploy-runner"))
    deployed = ci.deploy_file(Repo(delivery.root).model(MODEL), "staging", dist)
    try:
        live = State.of(delivery).ledger.live(MODEL, "staging")
        assert live is not None and (live.bento, live.model_tag, live.sha256) == (bento, champion, digest), deployed

        monkeypatch.setenv(DATA_ENV, make_db(delivery, tmp_path / "clean.db", shuffled=False))
        monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "retrain-runner"))
        fresh = Repo(delivery.root)
        assert not (State.of(fresh).bentoml_home / "models").exists(), "a fresh runner has no BentoML store"
        with http_stand_in([204]) as github, http_stand_in([]) as slack:
            monkeypatch.setenv("GITHUB_API_URL", github.url)
            monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
            record = retrain.retrain(fresh.model(MODEL), "staging")
        assert record["decision"] in ("kept champion", retrain.DISPATCHED), record
        assert record["champion"] == champion
        assert (
            set(record["champion_metrics"]) == set(record["candidate_metrics"])
            and "accuracy" in record["champion_metrics"]
        ), "the champion was scored on the fresh holdout"
        assert bentostore.bento_exists(fresh, bento), "the champion's stored bento was imported on this runner"
        assert State.of(fresh).retrain_log.records(MODEL)[-1]["champion_metrics"] == record["champion_metrics"]
    finally:
        monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "deploy-runner"))
        release.undeploy(Repo(delivery.root), MODEL, "staging")


def test_a_champion_whose_archive_is_missing_or_altered_is_a_one_line_error(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """Nothing is imported from the store unless its bytes are the ones stored with their digest."""
    import boto3

    from modelctl.ledger import Record
    from tests.s3_stand_in import use_s3

    champion, bento = gated
    path, digest = release.export(delivery.model(MODEL), bento, tmp_path / f"{MODEL}.bento")
    store_url = use_s3(monkeypatch, s3_endpoint)
    monkeypatch.setenv("MODELCTL_STORE", store_url)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "fresh-runner"))
    state = State.of(delivery)
    state.ledger.append(
        Record(model=MODEL, env="staging", target="local", outcome="deployed", bento=bento, model_tag=champion,
               sha256=digest)
    )  # fmt: skip
    model = Repo(delivery.root).model(MODEL)
    key = State.artifact_key("bento", bento)

    with pytest.raises(retrain.StepError) as missing:
        retrain.champion_in_store(model, "staging")
    message = str(missing.value)
    assert message.startswith("evaluate: the champion") and "\n" not in message
    assert "is missing from the state store" in message and state.store.where(key) in message

    state.put_artifact("bento", bento, path)
    bucket, _, prefix = store_url.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    altered = path.read_bytes() + b"\0"  # the stored digest stays, the bytes change
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=altered, Metadata={"sha256": digest})
    with pytest.raises(retrain.StepError, match=f"sha256 .*not its stored sha256 {digest}") as changed:
        retrain.champion_in_store(model, "staging")
    assert "\n" not in str(changed.value)
    assert not (State.of(delivery).bentoml_home / "bentos" / MODEL).exists(), "nothing was imported"
