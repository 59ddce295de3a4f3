"""`modelctl status`: releases numbered per environment (issue 23), with the bento tag beside the number."""

from __future__ import annotations

import json
from pathlib import Path

from modelctl.ledger import Record
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL, Cli


def release(repo: Path, env: str, bento: str) -> None:
    State.of(Repo(repo)).ledger.append(Record(model=MODEL, env=env, target="local", outcome="deployed", bento=bento))


def test_one_bento_is_v1_in_staging_and_in_production(cli: Cli, monorepo: Path) -> None:
    release(monorepo, "staging", f"{MODEL}:first")
    release(monorepo, "production", f"{MODEL}:first")
    release(monorepo, "staging", f"{MODEL}:second")
    rows = json.loads(cli("status", "--json").assert_success().out)
    assert [(r["env"], r["version"], r["bento"]) for r in rows] == [
        ("staging", 2, f"{MODEL}:second"),
        ("production", 1, f"{MODEL}:first"),
    ]
    table = cli("status").assert_success().out
    assert "release" in table
    lines = [line for line in table.splitlines() if MODEL in line]
    assert any("staging" in line and "v2" in line for line in lines), table
    assert any("production" in line and "v1" in line and "v2" not in line for line in lines), table


def test_a_model_never_deployed_has_no_release(cli: Cli) -> None:
    rows = json.loads(cli("status", "--json").assert_success().out)
    assert {(r["env"], r["version"], r["health"]) for r in rows} == {
        ("staging", None, "not deployed"),
        ("production", None, "not deployed"),
    }
