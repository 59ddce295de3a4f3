"""`modelctl ci plan` and the shard runners' argument handling."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli, bake_example, git


def test_plan_names_the_jobs_shards_and_reasons(cli: Cli, monorepo: Path) -> None:
    base = git(monorepo, "rev-parse", "HEAD").strip()
    path = monorepo / "models/iris_classifier/train.py"
    path.write_text(path.read_text() + "\n")
    git(monorepo, "commit", "-qam", "change the example")
    rows = json.loads(cli("ci", "plan", "--base", base, "--json").assert_success().out)
    model_jobs = [r for r in rows if r["job"] == "model"]
    assert model_jobs == [
        {
            "workflow": "ci.yml",
            "job": "model",
            "shard": "iris_classifier",
            "models": "iris_classifier",
            "command": "modelctl ci check --models iris_classifier",
            "why": "1 file changed under models/iris_classifier/ (train.py)",
        }
    ]
    assert {r["job"] for r in rows} >= {"lint", "changes", "model", "build", "staging", "production"}
    table = cli("ci", "plan", "--base", base).assert_success().out
    assert "1 model(s) in 1 job(s)" in table and "iris_classifier" in table


def test_plan_groups_models_into_shards_above_max_jobs(cli: Cli, monorepo: Path) -> None:
    base = git(monorepo, "rev-parse", "HEAD").strip()
    for name in ("Alpha Model", "Beta Model", "Gamma Model"):
        bake_example(monorepo / "models", model_name=name)
    pyproject = monorepo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "max_jobs = 2\n")  # [tool.modelctl] is the last table
    git(monorepo, "add", "-A")
    git(monorepo, "commit", "-qm", "three models, two jobs")
    rows = json.loads(cli("ci", "plan", "--base", base, "--json").assert_success().out)
    shards = {r["shard"]: r["models"] for r in rows if r["job"] == "model"}
    assert shards == {
        "shard-1-of-2": "alpha_model,beta_model",
        "shard-2-of-2": "gamma_model,iris_classifier",
    }, "pyproject.toml is repo-wide: every model is selected, in two shards"


def test_shard_runners_refuse_an_empty_or_unknown_list(cli: Cli) -> None:
    result = cli("ci", "check", "--models=")
    assert result.code == 2 and "--models names no model" in result.err
    result = cli("ci", "undeploy", "--env", "qa", "--models", "iris_classifier")
    assert result.code == 2 and "expected environments from staging, production" in result.err
    result = cli("ci", "build", "--models", "iris_classifier,ghost")
    assert result.code == 2 and "unknown model 'ghost'" in result.err


def test_undeploy_refuses_a_name_that_is_neither_a_model_nor_in_the_ledger(
    cli: Cli, monorepo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "escape"
    for name in ("nosuch", "../../../" + str(outside).lstrip("/"), "iris_clasifier"):
        result = cli("undeploy", name, "--env", "staging")
        assert result.code == 2 and "unknown model" in result.err, result.err
        result = cli("ci", "undeploy", "--env", "staging", "--models", name)
        assert result.code != 0
    assert not outside.exists() and not (monorepo / ".modelctl" / "deploy" / "nosuch").exists()
    assert cli("undeploy", "iris_classifier", "--env", "staging").code == 0, "a known model with nothing live is fine"
