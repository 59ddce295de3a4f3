"""The Airflow DAG factory (run by `tox -e airflow`, which installs Airflow 3.3 and sets AIRFLOW_HOME).

Never starts `airflow standalone`: DagBag parsing needs no database; dag.test() runs one DAG run in this
process against a migrated SQLite database in the tox env's temp folder.
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
from tests.stand_ins import http_stand_in

from modelctl.ledger import Record
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import copy_monorepo, git

DAGS = Path(__file__).resolve().parents[1] / "airflow" / "dags"
MODEL = "iris_classifier"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    """A monorepo copy with a second scheduled model and one without a schedule."""
    root = copy_monorepo(tmp_path_factory.mktemp("airflow") / "repo")
    for name, schedule in (("fraud_scorer", "15 */6 * * *"), ("unscheduled", None)):
        shutil.copytree(root / "models" / MODEL, root / "models" / name)
        path = root / "models" / name / "config.yaml"
        config = yaml.safe_load(path.read_text())
        config["name"], config["retrain"]["schedule"] = name, schedule
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
    assert set(bag.dags) == {"retrain_iris_classifier", "retrain_fraud_scorer"}
    for dag_id, dag in bag.dags.items():
        schedule = repo.config(dag_id.removeprefix("retrain_")).retrain.schedule
        assert dag.timetable.expression == schedule
        assert [t.task_id for t in dag.topological_sort()][:3] == ["extract", "train", "evaluate"]
        assert set(dag.task_dict) == {
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


def run_dag(model: str) -> dict[str, str]:
    dag = dagbag().dags[f"retrain_{model}"]
    run = dag.test(run_conf={"env": "production"})
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.fixture(scope="module")
def first_run(repo: Repo, airflow_db: None) -> tuple[dict[str, str], Any, Any]:
    """One DAG run with no champion in production: the candidate wins."""
    with stand_ins() as (github, slack):
        return run_dag(MODEL), github, slack


def test_a_better_candidate_triggers_the_deploy(repo: Repo, first_run: tuple[dict[str, str], Any, Any]) -> None:
    states, github, slack = first_run
    assert states["deploy_trigger"] == "success" and states["skip"] == "skipped" and states["notify"] == "success"
    (request,) = github.requests
    assert request.path == "/repos/acme/models/actions/workflows/deploy.yml/dispatches"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.body["inputs"]["models"] == MODEL and request.body["inputs"]["candidate"].startswith(MODEL)
    assert "promoted" in slack.requests[-1].body["text"]
    assert states["cleanup"] == "success"
    assert not list((State.of(repo).root / "retrain-runs" / MODEL).glob("*")), "the training data is removed"


def test_a_candidate_that_is_not_better_is_skipped(repo: Repo, first_run: tuple[dict[str, str], Any, Any]) -> None:
    champion = next(r["candidate"] for r in reversed(State.of(repo).retrain_log.records(MODEL)) if r.get("candidate"))
    State.of(repo).ledger.append(
        Record(
            model=MODEL, env="production", target="local", outcome="deployed", bento=f"{MODEL}:x", model_tag=champion
        )
    )
    with stand_ins() as (github, slack):
        states = run_dag(MODEL)  # same data and code: the candidate ties the champion, below min_improvement
    assert states["skip"] == "success" and states["deploy_trigger"] == "skipped" and states["notify"] == "success"
    assert github.requests == []
    text = slack.requests[-1].body["text"]
    assert "kept champion" in text and "candidate accuracy" in text and "champion accuracy" in text
    assert states["cleanup"] == "success"
