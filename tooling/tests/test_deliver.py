"""Train, build, load-test gate, deploy, status, rollback, undeploy: real bentos served on 127.0.0.1.

One model environment and one state folder for the whole module (creating them costs ~20 s);
tests run in file order and each leaves the deployments as it documents.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelctl import procs
from modelctl.commands.build import BuildError, run_build
from modelctl.commands.deploy import run_deploy, status_rows
from modelctl.commands.loadtest import run_loadtest
from modelctl.commands.pipeline import StageFailedError, run_pipeline
from modelctl.commands.train import run_training
from modelctl.errors import ModelctlError, UsageError
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.targets import kubernetes, local
from tests.conftest import copy_monorepo, git

pytestmark = pytest.mark.slow
MODEL = "iris_classifier"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    root = copy_monorepo(tmp_path_factory.mktemp("deliver") / "repo")
    config_path = root / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["loadtest"].update(users=8, spawn_rate=8, duration_s=6)
    ports = sorted({procs.free_port() for _ in range(6)})[:3]
    config["serving"]["ports"] = dict(zip(("dev", "staging", "production"), ports, strict=True))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(root, "commit", "-qam", "fast load test, free ports")
    saved = {k: os.environ.get(k) for k in ("MODELCTL_STATE_DIR", "BENTOML_HOME", "MODELCTL_ROOT", "SLACK_WEBHOOK_URL")}
    os.environ["MODELCTL_STATE_DIR"] = str(root / ".state")
    os.environ["MODELCTL_ROOT"] = str(root)
    for key in ("BENTOML_HOME", "SLACK_WEBHOOK_URL"):
        os.environ.pop(key, None)
    repo = Repo(root)
    try:
        yield repo
    finally:
        for model_env in (root / ".state" / "deploy" / MODEL).glob("*"):
            local.undeploy(repo, MODEL, model_env.name)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _in_repo(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI calls (`main([...])`) find the temp repo, never the checkout running the tests."""
    monkeypatch.setenv("MODELCTL_ROOT", str(repo.root))
    monkeypatch.chdir(repo.root)


def predict(url: str, repo: Repo) -> list[dict[str, Any]]:
    sample = json.loads((repo.model_dir(MODEL) / "sample_request.json").read_text())
    response = httpx.post(f"{url}/predict", json=sample, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def served_model(url: str) -> str:
    return httpx.post(f"{url}/metadata", json={}, timeout=10).json()["model"]


@contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    original = path.read_text()
    assert old in original
    path.write_text(original.replace(old, new))
    try:
        yield
    finally:
        path.write_text(original)


@contextmanager
def config_changed(repo: Repo, **changes: Any) -> Iterator[None]:
    """Temporarily set ``section__key=value`` in the model's config.yaml."""
    path = repo.model_dir(MODEL) / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        config.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def trained_built_gated(repo: Repo) -> tuple[str, str]:
    model_tag = run_training(repo, MODEL).model_tag
    bento = run_build(repo, MODEL).bento
    result = run_loadtest(repo, MODEL, bento=bento)
    assert result.verdict.passed, result.verdict.breaches
    return model_tag, bento


@pytest.fixture(scope="module")
def gated(repo: Repo) -> tuple[str, str]:
    """A trained, built, gate-passed (model tag, bento) for tests that only need one."""
    return trained_built_gated(repo)


def test_build_before_training_says_to_train(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BuildError, match=f"no trained model '{MODEL}'.*run `modelctl train {MODEL}` first"):
        run_build(repo, MODEL)
    assert main(["build", MODEL]) == 1


def test_train_build_and_gate(repo: Repo) -> None:
    trained = run_training(repo, MODEL)
    assert trained.model_tag.startswith(f"{MODEL}:") and trained.metrics["accuracy"] > 0.85
    built = run_build(repo, MODEL)
    assert built.model_tag == trained.model_tag
    info = yaml.safe_load(
        (State.of(repo).bentoml_home / "bentos" / MODEL / built.bento.split(":")[1] / "bento.yaml").read_text()
    )
    assert info["labels"]["git_commit"] == git(repo.root, "rev-parse", "--short=12", "HEAD").strip()
    assert not (repo.model_dir(MODEL) / "modelctl-build").exists(), "build leftovers are removed"

    result = run_loadtest(repo, MODEL, bento=built.bento)
    # How many requests fit in 6 s depends on the machine's load; a pass needs at least one.
    assert result.verdict.passed and result.verdict.requests > 0
    files = {p.name for p in result.report_dir.iterdir()}
    assert {
        "report.html",
        "locust_stats.csv",
        "locust_summary.json",
        "summary.json",
        "summary.md",
        "server.log",
    } <= files
    summary = json.loads((result.report_dir / "summary.json").read_text())
    assert summary["passed"] and summary["bento"] == built.bento
    assert State.of(repo).gate_file(built.bento).exists()


def test_gate_breach_exits_3_naming_the_limit(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    with config_changed(repo, loadtest__max_p90_ms=0.001):
        code = main(["loadtest", MODEL])
    assert code == 3
    assert "gate breached: P90 latency" in capsys.readouterr().err and "loadtest.max_p90_ms 0 ms" not in ""


def test_fuzzing_finds_no_5xx_and_the_server_stays_ready(repo: Repo, gated: tuple[str, str]) -> None:
    from modelctl.commands.fuzz import run_fuzz

    result, text = run_fuzz(repo, MODEL, bento=gated[1], examples=25)
    assert result.passed, result.problems()
    assert result.cases > 80 and result.server_errors == 0 and result.ready_after
    assert result.rss_before_mb > 50, "the server's memory is measured"
    assert {"400", "413", "415"} <= set(result.by_status)
    assert "### Fuzz PASS" in text


def test_load_test_against_a_server_that_dies_fails_clearly(repo: Repo, gated: tuple[str, str]) -> None:
    import threading
    import time

    from modelctl import bentos

    running = bentos.start(repo, MODEL, gated[1], procs.free_port(), repo.root / "dying.log")
    killer = threading.Timer(2.0, running.stop)
    killer.start()
    started = time.monotonic()
    try:
        result = run_loadtest(repo, MODEL, url=running.url, duration=6)
    finally:
        killer.cancel()
        running.stop()
    assert time.monotonic() - started < 60, "no hang"
    assert not result.verdict.passed
    assert any("error rate" in b for b in result.verdict.breaches), result.verdict.breaches


def test_server_that_never_starts_is_exit_1_with_its_log(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loadtest", MODEL, "--bento", f"{MODEL}:doesnotexist"]) == 1
    assert "exited before it became ready; last lines of" in capsys.readouterr().err


def test_deploy_status_rollback_undeploy(repo: Repo) -> None:
    state = State.of(repo)
    first_bento = run_build(repo, MODEL).bento
    assert run_loadtest(repo, MODEL, bento=first_bento).verdict.passed
    first = run_deploy(repo, MODEL, "staging", bento=first_bento)
    assert first.outcome == "deployed" and first.version == 1 and first.url
    assert [p["label"] for p in predict(first.url, repo)] == ["setosa", "virginica"]
    assert first.loadtest["p90_ms"] > 0 and first.metrics["accuracy"] > 0.85
    row = next(r for r in status_rows(repo, [MODEL]) if r["env"] == "staging")
    assert (row["health"], row["version"], row["url"]) == ("up", 1, first.url)
    v1_model = served_model(first.url)

    second_model, second_bento = trained_built_gated(repo)
    second = run_deploy(repo, MODEL, "staging", bento=second_bento)
    assert second.version == 2 and second.url == first.url
    assert served_model(second.url) == second_model != v1_model

    assert main(["rollback", MODEL, "--env", "staging"]) == 0
    live = state.ledger.live(MODEL, "staging")
    assert (live.outcome, live.version, live.bento) == ("rolled_back", 1, first_bento)
    assert served_model(first.url) == v1_model, "rollback restores the model, not only the code"

    assert main(["rollback", MODEL, "--env", "staging", "--to", "2"]) == 0
    assert served_model(first.url) == second_model


def test_production_needs_yes(repo: Repo) -> None:
    with pytest.raises(UsageError, match="production requires approval: pass --yes"):
        run_deploy(repo, MODEL, "production")


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("        freeze_gc()\n", "        raise RuntimeError('broken model')\n", "crashes on start"),
        (
            "        probabilities = model_io.predict_proba(self.model, rows)\n",
            "        raise ValueError('bug')\n",
            "answers 500",
        ),
    ],
)
def test_failing_candidate_never_replaces_live(repo: Repo, old: str, new: str, why: str) -> None:
    ledger = State.of(repo).ledger
    before = ledger.live(MODEL, "staging")
    with edited(repo.model_dir(MODEL) / "service.py", old, new):
        broken = run_build(repo, MODEL).bento
    with pytest.raises(ModelctlError):
        run_deploy(repo, MODEL, "staging", bento=broken, force=True)
    assert ledger.records(MODEL)[-1].outcome == "failed" and ledger.records(MODEL)[-1].bento == broken
    assert ledger.live(MODEL, "staging").bento == before.bento, why
    predict(before.url, repo)  # still answering


def test_killed_live_service_is_reported_down_and_redeploy_restores_it(repo: Repo) -> None:
    live = local.read_live(repo, MODEL, "staging")
    assert live.workers, "the worker pids are recorded"
    os.kill(live.pid, signal.SIGKILL)  # a crash of the server process: its workers are orphaned
    while procs.alive(live.pid):
        pass
    row = next(r for r in status_rows(repo, [MODEL]) if r["env"] == "staging")
    assert row["health"] == "down"
    record = run_deploy(repo, MODEL, "staging", bento=live.bento)
    predict(record.url, repo)
    assert next(r for r in status_rows(repo, [MODEL]) if r["env"] == "staging")["health"] == "up"


def test_a_second_deploy_waits_then_fails_clearly(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCTL_DEPLOY_LOCK_WAIT", "1")
    records_before = len(State.of(repo).ledger.records(MODEL))
    live = State.of(repo).ledger.live(MODEL, "staging")
    with local.deploy_lock(repo, MODEL, "staging"):
        with pytest.raises(local.DeployError, match="another deploy of iris_classifier to staging is still running"):
            run_deploy(repo, MODEL, "staging", bento=live.bento)
    assert len(State.of(repo).ledger.records(MODEL)) == records_before


def test_gate_breach_in_the_pipeline_keeps_live(repo: Repo) -> None:
    before = State.of(repo).ledger.live(MODEL, "staging")
    with config_changed(repo, loadtest__max_p90_ms=0.001):
        with pytest.raises(StageFailedError, match="stage 'load-test gate' failed") as info:
            run_pipeline(repo, MODEL, skip_tests=True)
    assert info.value.exit_code == 3
    assert State.of(repo).ledger.live(MODEL, "staging").bento == before.bento
    predict(before.url, repo)


def test_exported_bento_is_checked_before_deploy(repo: Repo, tmp_path: Path) -> None:
    live = State.of(repo).ledger.live(MODEL, "staging")
    artifact = tmp_path / "dist" / "model.bento"
    assert main(["export", MODEL, "--bento", live.bento, "--out", str(artifact)]) == 0
    checksum = Path(f"{artifact}.sha256")
    good = checksum.read_text()
    checksum.write_text("0" * 64 + "  model.bento\n")
    with pytest.raises(ModelctlError, match="not the tested file"):
        run_deploy(repo, MODEL, "production", bento_file=artifact, yes=True)
    checksum.write_text(good)
    record = run_deploy(repo, MODEL, "production", bento_file=artifact, yes=True)
    assert record.sha256 == good.split()[0] and record.bento == live.bento
    predict(record.url, repo)
    assert main(["undeploy", MODEL, "--env", "production"]) == 0
    assert not procs.healthy(record.url)


def test_kubernetes_target_renders_valid_manifests(repo: Repo, gated: tuple[str, str]) -> None:
    import kubernetes_validate

    with config_changed(
        repo, deploy__targets=["local", "kubernetes"], deploy__kubernetes={"image_repository": "ghcr.io/acme"}
    ):
        live_before = State.of(repo).ledger.live(MODEL, "staging")
        record = run_deploy(repo, MODEL, "staging", target="kubernetes", bento=gated[1])
    assert record.outcome == "rendered" and record.url is None
    manifests = list(yaml.safe_load_all((State.of(repo).deploy_dir(MODEL, "staging") / "kubernetes.yaml").read_text()))
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)
    assert State.of(repo).ledger.live(MODEL, "staging") == live_before, "rendering does not change what is live"


def test_containerize_without_docker_fails_clearly(repo: Repo, gated: tuple[str, str]) -> None:
    from modelctl.envs import model_python

    with pytest.raises(kubernetes.KubernetesError, match="needs a running Docker daemon"):
        kubernetes.containerize(model_python(repo, MODEL), gated[1], "ghcr.io/acme/x:1", State.of(repo).env())


# --- retraining: champion/challenger ------------------------------------------------------------------------

DATA_ENV = "IRIS_CLASSIFIER_DATA_URL"


def packaged_rows(repo: Repo) -> list[list[float]]:
    """The model's packaged training rows (features + target), read in the model's own environment."""
    import subprocess

    from modelctl.envs import model_python

    script = (
        "import json, train; d = train.load_data(); "
        "print(json.dumps([[*map(float, x), int(y)] for x, y in zip(d.features, d.target)]))"
    )
    env = {k: v for k, v in os.environ.items() if k != DATA_ENV}
    result = subprocess.run(
        [str(model_python(repo, MODEL)), "-c", script],
        cwd=repo.model_dir(MODEL),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def make_db(repo: Repo, path: Path, shuffled: bool) -> str:
    """A SQLite copy of the model's data (labels shuffled: a poor model) in the table the template queries."""
    import random
    import sqlite3

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


def test_retrain_promotes_a_better_candidate(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelctl.commands.retrain import run_retrain
    from tests.stand_ins import http_stand_in

    monkeypatch.setenv(DATA_ENV, make_db(repo, tmp_path / "noisy.db", shuffled=True))
    champion_tag, champion_bento = trained_built_gated(repo)
    champion = run_deploy(repo, MODEL, "production", bento=champion_bento, yes=True)
    assert served_model(champion.url) == champion_tag

    monkeypatch.setenv(DATA_ENV, make_db(repo, tmp_path / "clean.db", shuffled=False))
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        record = run_retrain(repo, MODEL, env="production")
    assert record["decision"].startswith("promoted"), record
    assert record["candidate_metrics"]["accuracy"] > record["champion_metrics"]["accuracy"] + 0.3
    live = State.of(repo).ledger.live(MODEL, "production")
    assert live.model_tag == record["candidate"] != champion_tag
    assert served_model(live.url) == record["candidate"], "the new version is live"
    texts = [r.body["text"] for r in slack.requests]
    assert any("candidate accuracy" in t and "champion accuracy" in t and "promoted" in t for t in texts)
    assert State.of(repo).retrain_log.records(MODEL)[-1]["decision"] == record["decision"]


def test_retrain_keeps_a_champion_that_is_not_beaten(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelctl.commands.retrain import run_retrain
    from tests.stand_ins import http_stand_in

    monkeypatch.setenv(DATA_ENV, make_db(repo, tmp_path / "clean.db", shuffled=False))
    before = State.of(repo).ledger.live(MODEL, "production")
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        record = run_retrain(repo, MODEL, env="production")
    assert record["decision"] == "kept champion" and "not better" in record["reason"]
    assert State.of(repo).ledger.live(MODEL, "production") == before
    assert "kept champion" in slack.requests[-1].body["text"]


def test_retrain_failure_alerts_and_keeps_live(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.stand_ins import http_stand_in

    monkeypatch.setenv(DATA_ENV, f"sqlite:///{tmp_path / 'empty.db'}")  # no table: the extract step fails
    before = State.of(repo).ledger.live(MODEL, "production")
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["retrain", MODEL, "--env", "production"]) == 1
    assert "failed at extract" in capsys.readouterr().err
    assert "retrain iris_classifier failed at extract" in slack.requests[-1].body["text"]
    assert State.of(repo).ledger.live(MODEL, "production") == before
    assert State.of(repo).retrain_log.records(MODEL)[-1]["failed_step"] == "extract"


def test_retrain_in_ci_dispatches_the_deploy_workflow(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelctl.commands.retrain import run_retrain
    from tests.stand_ins import http_stand_in

    monkeypatch.setenv(DATA_ENV, make_db(repo, tmp_path / "clean.db", shuffled=False))
    before = State.of(repo).ledger.live(MODEL, "production")
    for key, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_REF_NAME": "main",
    }.items():
        monkeypatch.setenv(key, value)
    with config_changed(repo, retrain__min_improvement=0.0), http_stand_in([204]) as github:
        monkeypatch.setenv("GITHUB_API_URL", github.url)
        record = run_retrain(repo, MODEL, env="production")
    assert record["decision"] == "promoted: deploy.yml dispatched"
    request = github.requests[0]
    assert (request.method, request.path) == ("POST", "/repos/acme/models/actions/workflows/deploy.yml/dispatches")
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.body == {"ref": "main", "inputs": {"models": MODEL, "candidate": record["candidate"]}}
    assert State.of(repo).ledger.live(MODEL, "production") == before, "CI promotes through deploy.yml only"
