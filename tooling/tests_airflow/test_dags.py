"""The Airflow DAG factory (run by `tox -e airflow`, which installs Airflow 3.3 and sets AIRFLOW_HOME).

Never starts `airflow standalone`: DagBag parsing needs no database; dag.test() runs one DAG run in this
process against a migrated SQLite database in the tox env's temp folder. The state store is moto's S3 server on
127.0.0.1 (the DAG dispatches deploy.yml, which can only pull the winner from a shared store); GitHub and Slack are
HTTP stand-ins on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.s3_stand_in import moto_server, use_s3
from tests.stand_ins import http_stand_in

from modelctl import archive
from modelctl.ledger import Record
from modelctl.main import build_parser
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import copy_monorepo, git

DAGS = Path(__file__).resolve().parents[1] / "airflow" / "dags"
MODEL = "iris_classifier"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """A monorepo copy with a second scheduled model and one without a schedule."""
    root = copy_monorepo(tmp_path_factory.mktemp("airflow") / "repo")
    for name, schedule in (("fraud_scorer", "15 */6 * * *"), ("unscheduled", None), ("churn_scorer", "0 4 * * *")):
        shutil.copytree(root / "models" / MODEL, root / "models" / name)
        path = root / "models" / name / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["name"], config["retrain"]["schedule"] = name, schedule
        if name == "churn_scorer":  # an entity model's DAG loads the feature store first (issue 21)
            config["input"] = "entity"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "more models")
    saved = {k: os.environ.get(k) for k in ("MODELCTL_ROOT", "MODELCTL_STATE_DIR")}
    os.environ["MODELCTL_ROOT"], os.environ["MODELCTL_STATE_DIR"] = str(root), str(root / ".state")
    try:
        yield Repo(root)
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def dagbag() -> object:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dagbag_imports_one_dag_per_scheduled_model(repo: Repo) -> None:
    bag = dagbag()
    assert bag.import_errors == {}
    assert set(bag.dags) == {"retrain_iris_classifier", "retrain_fraud_scorer", "retrain_churn_scorer"}
    for dag_id, dag in bag.dags.items():
        schedule = repo.config(dag_id.removeprefix("retrain_")).retrain.schedule
        assert dag.timetable.expression == schedule
        order = [t.task_id for t in dag.topological_sort()]
        if dag_id == "retrain_churn_scorer":
            assert order[:5] == ["monitor", "features", "extract", "train", "evaluate"]
            assert dag.task_dict["features"].upstream_task_ids == {"monitor"}
            assert dag.task_dict["extract"].upstream_task_ids == {"features"}
            continue
        assert order[:4] == ["monitor", "extract", "train", "evaluate"]
        assert set(dag.task_dict) == {
            "monitor",
            "extract",
            "train",
            "evaluate",
            "decide",
            "deploy_trigger",
            "skip",
            "notify",
            "cleanup",
        }


@pytest.fixture(scope="module")
def airflow_db(repo: Repo) -> None:
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="module")
def shared_store(repo: Repo) -> Iterator[str]:
    """A bucket on moto's S3 server as the state store (MODELCTL_STORE) for this module's DAG runs."""
    with moto_server() as endpoint, pytest.MonkeyPatch.context() as patch:
        url = use_s3(patch, endpoint)
        patch.setenv("MODELCTL_STORE", url)
        yield url


@contextmanager
def stand_ins() -> Iterator[tuple[Any, Any]]:
    with http_stand_in([204]) as github, http_stand_in([]) as slack:
        values = {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_REPOSITORY": "acme/models",
            "GITHUB_REF_NAME": "main",
            "GITHUB_API_URL": github.url,
            "SLACK_WEBHOOK_URL": slack.url,
        }
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield github, slack
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def run_dag(model: str, conf: dict[str, Any] | None = None) -> dict[str, str]:
    dag = dagbag().dags[f"retrain_{model}"]
    run = dag.test(run_conf=conf) if conf is not None else dag.test()
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


FirstRun = tuple[dict[str, str], Any, Any, dict[str, Any]]


@pytest.fixture(scope="module")
def first_run(repo: Repo, airflow_db: None, shared_store: str) -> FirstRun:
    """One DAG run with the default params and no champion: the candidate wins. (task states, GitHub and Slack
    stand-ins, the run's retrain log record)"""
    with stand_ins() as (github, slack):
        states = run_dag(MODEL)
    return states, github, slack, State.of(repo).retrain_log.records(MODEL)[-1]


def test_a_better_candidate_triggers_the_deploy(repo: Repo, first_run: FirstRun) -> None:
    states, github, slack, _ = first_run
    assert states["deploy_trigger"] == "success" and states["skip"] == "skipped" and states["notify"] == "success"
    (request,) = github.requests
    assert request.path == "/repos/acme/models/actions/workflows/deploy.yml/dispatches"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.body["inputs"]["models"] == MODEL and request.body["inputs"]["candidate"].startswith(MODEL)
    assert "promoted" in slack.requests[-1].body["text"]
    assert states["cleanup"] == "success"
    assert not list((State.of(repo).root / "retrain-runs" / MODEL).glob("*")), "the training data is removed"


def test_the_dispatch_ships_the_stored_bento_of_the_candidate_it_evaluated(
    repo: Repo, first_run: FirstRun, tmp_path: Path
) -> None:
    """As `modelctl retrain` in CI: the winner's bento is in the shared store and deploy.yml gets exactly it, so the
    deploy gates and ships what was evaluated instead of building again."""
    _, github, _, record = first_run
    (request,) = github.requests
    state = State.of(repo)
    assert record["decision"] == "promoted: deploy.yml dispatched"
    assert request.body["inputs"] == {"models": MODEL, "candidate": record["candidate"], "bento": record["bento"]}
    stored = state.store.stat_file(State.artifact_key("bento", record["bento"]))
    assert stored is not None and stored.sha256 == record["bento_sha256"], "the bento is in the shared store"
    path = tmp_path / "winner.bento"
    state.get_artifact("bento", record["bento"], path, sha256=record["bento_sha256"])
    info = archive.inspect(path, MODEL, record["bento_sha256"])
    assert (info.tag, info.model_tag) == (record["bento"], record["candidate"]), "the bento holds the evaluated model"


def test_without_conf_the_champion_is_the_one_in_the_clis_default_environment(first_run: FirstRun) -> None:
    cli_default = build_parser().parse_args(["retrain", MODEL]).env
    assert cli_default == "staging"
    assert first_run[3]["env"] == cli_default
    assert dagbag().dags[f"retrain_{MODEL}"].params["env"] == cli_default


def test_a_candidate_that_is_not_better_is_skipped(repo: Repo, shared_store: str, first_run: FirstRun) -> None:
    champion = first_run[3]["candidate"]
    State.of(repo).ledger.append(
        Record(
            model=MODEL, env="production", target="local", outcome="deployed", bento=f"{MODEL}:x", model_tag=champion
        )
    )
    with stand_ins() as (github, slack):
        states = run_dag(MODEL, {"env": "production"})  # same data and code: the candidate ties the champion
    assert states["skip"] == "success" and states["deploy_trigger"] == "skipped" and states["notify"] == "success"
    assert github.requests == []
    text = slack.requests[-1].body["text"]
    assert "kept champion" in text and "candidate accuracy" in text and "champion accuracy" in text
    assert states["cleanup"] == "success"
    record = State.of(repo).retrain_log.records(MODEL)[-1]
    assert (record["env"], record["champion"], record["decision"]) == ("production", champion, "kept champion")


def test_without_a_shared_store_the_run_fails_before_training_and_says_why(
    repo: Repo, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELCTL_STORE", raising=False)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(repo.root / ".state-local"))
    with stand_ins() as (github, slack):
        states = run_dag(MODEL)
    assert states["extract"] == "failed" and states["train"] == "upstream_failed"
    assert states["cleanup"] == "success" and github.requests == []
    assert "retrain iris_classifier failed at setup" in slack.requests[-1].body["text"]
    record = State.of(repo).retrain_log.records(MODEL)[-1]
    assert record["failed_step"] == "setup" and "needs a shared state store" in record["reason"]


def test_with_retrain_on_drift_a_model_without_drift_is_not_retrained(
    repo: Repo, airflow_db: None, shared_store: str
) -> None:
    """The monitor task runs first (issue 22); with monitor.retrain_on_drift only drift or a breach retrains, and a
    run with no traffic says so without alerting."""
    path = repo.root / "models" / "fraud_scorer" / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["monitor"] = {"retrain_on_drift": True}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        with stand_ins() as (github, slack):
            states = run_dag("fraud_scorer")
    finally:
        path.write_text(original)
    assert states["monitor"] == "success"
    assert states["extract"] == "skipped" and states["notify"] == "skipped" and states["cleanup"] == "skipped"
    assert github.requests == [] and slack.requests == []
    [key] = State.of(repo).store.list("monitor/fraud_scorer/staging/")
    assert '"verdict": "no traffic"' in State.of(repo).store.read(key).data.decode()
