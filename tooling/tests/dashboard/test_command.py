"""`modelctl dashboard -o DIR` on a monorepo baked from the template, with its state store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelctl.ledger import Record
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL, Cli, bake_example


def test_the_example_live_in_staging_and_a_model_never_deployed(cli: Cli, monorepo: Path) -> None:
    bake_example(monorepo / "models", model_name="Fraud Scorer", framework="xgboost")
    state = State.of(Repo(monorepo))
    bento = f"{MODEL}:first"
    state.put_gate_result(bento, {"bento": bento, "passed": True, "p90_ms": 87.0, "error_rate": 0.0, "rps": 151.3})
    # A record from before the ledger carried the gate's numbers: the site reads them from the gate result.
    state.ledger.append(Record(model=MODEL, env="staging", target="local", outcome="deployed", bento=bento))

    result = cli("dashboard", "-o", "site").assert_success()
    assert re.search(
        r"dashboard: 2 models, 4 pages, 2 charts, 0 reports copied, 1 need attention; [0-9.]+s -> ", result.out
    )
    overview = (monorepo / "site" / "index.html").read_text(encoding="utf-8")
    row = re.search(rf'<tr data-attention="0" data-model="{MODEL}">(.*?)</tr>', overview, re.S)
    assert row is not None
    text = " ".join(re.sub(r"<[^>]+>", " ", row.group(1)).split())
    assert f"v1 {bento}" in text and "P90 87 ms · errors 0.00% · 151.3 req/s" in text
    never = re.search(r'<tr data-attention="1" data-model="fraud_scorer">(.*?)</tr>', overview, re.S)
    assert never is not None and "never deployed" in never.group(1)
    assert (monorepo / "site" / "models" / "fraud_scorer.html").is_file()
    assert "warning" not in result.err


def test_a_store_without_any_deployment_record_is_named(
    cli: Cli, monorepo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    state = State.of(Repo(monorepo))
    state.ledger.append(Record(model=MODEL, env="staging", target="local", outcome="deployed", bento=f"{MODEL}:a"))
    monkeypatch.setenv("MODELCTL_STORE", str(tmp_path / "typo"))  # not where the deploys were recorded
    result = cli("dashboard", "-o", "site").assert_success()
    assert f"warning: the state store {tmp_path / 'typo'}" in result.err
    assert "holds no deployment record of any model" in result.err and "check MODELCTL_STORE" in result.err


def test_a_folder_with_other_files_is_refused(cli: Cli, monorepo: Path) -> None:
    (monorepo / "docs").mkdir()
    (monorepo / "docs" / "index.md").write_text("mine")
    result = cli("dashboard", "-o", "docs")
    assert result.code == 2
    assert result.err.strip().endswith(
        "docs is not empty and holds no earlier site (.modelctl-dashboard is missing): use an empty folder"
    )
    assert "\n" not in result.err.strip()


def test_output_is_required(cli: Cli) -> None:
    result = cli("dashboard")
    assert result.code == 2 and "-o/--output" in result.err


def test_a_rebuild_leaves_nothing_but_the_site_and_follows_no_symlink(cli: Cli, monorepo: Path, tmp_path: Path) -> None:
    """A file added to a built site's folder would be published with it: a rebuild removes it; a symlink there is
    removed, and what it pointed at is left alone (the review of issue 23)."""
    assert cli("dashboard", "-o", "site", "--no-health").code == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the site's")
    (monorepo / "site" / "login.html").write_text("<script>steal()</script>")
    (monorepo / "site" / "linked").symlink_to(outside)
    assert cli("dashboard", "-o", "site", "--no-health").code == 0
    assert not (monorepo / "site" / "login.html").exists() and not (monorepo / "site" / "linked").exists()
    assert (outside / "keep.txt").read_text() == "not the site's"
    assert (monorepo / "site" / "index.html").is_file()


def test_an_output_below_a_file_is_one_line(cli: Cli, monorepo: Path) -> None:
    (monorepo / "notes.txt").write_text("a file, not a folder")
    result = cli("dashboard", "-o", "notes.txt/site", "--no-health")
    assert result.code == 2 and "notes.txt/site" in result.err and "Traceback" not in result.err, result.err
