from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkit import FRAMEWORKS, TASKS, load_config
from tests.conftest import Cli, git

EVIL = "{{ 7*191 }} and {{ cycler.__init__.__globals__.os.getcwd() }}"


@pytest.fixture(autouse=True)
def _cookiecutter_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """cookiecutter writes a replay file to ~ and reads ~/.cookiecutterrc: never the machine's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COOKIECUTTER_CONFIG", raising=False)


def test_creates_a_valid_model(cli: Cli, monorepo: Path) -> None:
    result = cli("new", "Churn Predictor", "--framework", "xgboost", "--owner", "growth", "--no-input")
    result.assert_success()
    folder = monorepo / "models/churn_predictor"
    config = load_config(folder / "config.yaml", check_folder_name=True)
    assert (config.framework, config.owner, config.task) == ("xgboost", "growth", "classification")
    assert (folder / "notebooks/churn_predictor.ipynb").is_file()
    cli("validate", "churn_predictor").assert_success()
    assert "churn_predictor" in cli("list").out
    # its environment's whole dependency set, locked with hashes (uv resolves against the package index)
    assert (
        "churn_predictor/requirements.lock: " in result.out
        and "xgboost==3.2.0 \\" in (folder / "requirements.lock").read_text()
    )
    cli("lock", "churn_predictor", "--check").assert_success()


def test_answers_are_taken_literally(cli: Cli, monorepo: Path) -> None:
    """The command of issue 15.4: it wrote `description: "1337 and /path/of/the/repo"`."""
    cli("new", "Evil Model", "--description", EVIL, "--no-input", "--no-lock").assert_success()
    folder = monorepo / "models/evil_model"
    assert load_config(folder / "config.yaml", check_folder_name=True).description == EVIL
    notebook = json.loads((folder / "notebooks/evil_model.ipynb").read_text(encoding="utf-8"))
    assert f"{EVIL}\n" in notebook["cells"][0]["source"]


def test_quotes_in_the_name_keep_the_notebook_valid(cli: Cli, monorepo: Path) -> None:
    cli("new", 'Say "hi" \\ to 😀', "--slug", "quoted", "--owner", 'o"k', "--no-input", "--no-lock").assert_success()
    notebook = json.loads((monorepo / "models/quoted/notebooks/quoted.ipynb").read_text(encoding="utf-8"))
    assert notebook["cells"][0]["source"][0] == '# Say "hi" \\ to 😀: exploration\n'
    assert load_config(monorepo / "models/quoted/config.yaml").owner == 'o"k'


def test_records_answers_and_template_version(cli: Cli, monorepo: Path) -> None:
    cli(
        "new", "Fraud Scorer", "--framework", "lightgbm", "--task", "regression", "--no-input", "--no-lock"
    ).assert_success()
    record = json.loads((monorepo / "models/fraud_scorer/.template.json").read_text(encoding="utf-8"))
    assert record == {
        "template": "cookiecutter-model",
        "template_tree": git(monorepo, "rev-parse", "HEAD:cookiecutter-model").strip(),
        "template_commit": git(monorepo, "rev-parse", "HEAD").strip(),
        "answers": {
            "model_name": "Fraud Scorer",
            "model_slug": "fraud_scorer",
            "description": "Fraud Scorer: what it predicts, from which data (one line)",
            "owner": "data-science",
            "framework": "lightgbm",
            "task": "regression",
            "input": "tabular",
        },
    }
    assert load_config(monorepo / "models/fraud_scorer/config.yaml").retrain.metric == "rmse"


def test_a_new_model_gets_ports_no_other_model_uses(cli: Cli, monorepo: Path) -> None:
    for name in ("One", "Two"):
        cli("new", name, "--no-input", "--no-lock").assert_success()
    ports = [load_config(monorepo / f"models/{m}/config.yaml").serving.ports for m in ("iris_classifier", "one", "two")]
    every = [p for block in ports for p in (block.dev, block.staging, block.production)]
    assert len(set(every)) == 9


def test_explicit_slug(cli: Cli, monorepo: Path) -> None:
    cli("new", "Fraud Detector v2", "--slug", "fraud_v2", "--no-input", "--no-lock").assert_success()
    assert (monorepo / "models/fraud_v2/service.py").is_file()


def test_choices_are_the_schemas(cli: Cli) -> None:
    usage = cli("new", "--help").out
    assert f"{{{','.join(FRAMEWORKS)}}}" in usage and f"{{{','.join(TASKS)}}}" in usage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9 Lives"], "must match [a-z][a-z0-9_]*"),
        (["Modèle"], "(derived from model_name 'Modèle': choose a model_slug, `modelctl new --slug`)"),
        (["X", "--slug", "Bad-Slug"], "must match [a-z][a-z0-9_]*"),
        (["X", "--slug", "fraud\n"], "model_slug 'fraud\\n' must match"),
        (["X", "--slug", "a/b"], "model_slug 'a/b' must match"),
        (["X", "--slug", ""], "model_slug '' must match"),
        (["X", "--slug", "a" * 41], "the limit is 40"),
        (["X", "--slug", "class"], "is a Python keyword"),
        (["X", "--slug", "true"], "its service class would be"),
        (["X", "--slug", "json"], "standard-library module name"),
        (["X", "--slug", "bentoml"], "is reserved"),
        (["X", "--description", "two\nlines"], "description must be one line"),
        (["X", "--owner", " "], "owner must not be empty"),
        (["Iris Classifier"], "already exists"),
    ],
)
def test_refused_answers_exit_2_and_create_nothing(cli: Cli, monorepo: Path, args: list[str], message: str) -> None:
    before = sorted(p.name for p in (monorepo / "models").iterdir())
    result = cli("new", *args, "--no-input", "--no-lock")
    assert result.code == 2
    assert message in result.err
    assert sorted(p.name for p in (monorepo / "models").iterdir()) == before
