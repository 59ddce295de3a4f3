from __future__ import annotations

from pathlib import Path

import pytest

from modelkit import load_config
from tests.conftest import Cli


def test_creates_a_valid_model(cli: Cli, monorepo: Path) -> None:
    result = cli("new", "Churn Predictor", "--framework", "xgboost", "--owner", "growth", "--no-input")
    result.assert_success()
    folder = monorepo / "models/churn_predictor"
    config = load_config(folder / "config.yaml", check_folder_name=True)
    assert (config.framework, config.owner) == ("xgboost", "growth")
    assert (folder / "notebooks/churn_predictor.ipynb").is_file()
    cli("validate", "churn_predictor").assert_success()
    assert "churn_predictor" in cli("list").out


def test_explicit_slug(cli: Cli, monorepo: Path) -> None:
    cli("new", "Fraud Detector v2", "--slug", "fraud_v2", "--no-input").assert_success()
    assert (monorepo / "models/fraud_v2/service.py").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9 Lives"], "must match [a-z][a-z0-9_]*"),
        (["X", "--slug", "Bad-Slug"], "must match [a-z][a-z0-9_]*"),
        (["X", "--slug", "a" * 41], "the limit is 40"),
        (["X", "--slug", "class"], "is a Python keyword"),
        (["X", "--slug", "json"], "standard-library module name"),
        (["X", "--slug", "bentoml"], "is reserved"),
        (["Iris Classifier"], "already exists"),
    ],
)
def test_refused_answers_exit_2_and_create_nothing(cli: Cli, monorepo: Path, args: list[str], message: str) -> None:
    before = sorted(p.name for p in (monorepo / "models").iterdir())
    result = cli("new", *args, "--no-input")
    assert result.code == 2
    assert message in result.err
    assert sorted(p.name for p in (monorepo / "models").iterdir()) == before
