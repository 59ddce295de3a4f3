from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from modelkit.training import git_commit, load_sql

FEATURES = ("a", "b")


def database(tmp_path: Path, rows: list[tuple[object, ...]], columns: str = "a REAL, b REAL, target REAL") -> str:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE training ({columns})"))
        for row in rows:
            placeholders = ", ".join("?" * len(row))
            connection.exec_driver_sql(f"INSERT INTO training VALUES ({placeholders})", row)
    engine.dispose()
    return url


@pytest.fixture
def query(tmp_path: Path) -> Path:
    path = tmp_path / "training.sql"
    path.write_text("SELECT * FROM training")
    return path


def test_regression_targets_are_floats(tmp_path: Path, query: Path) -> None:
    url = database(tmp_path, [(1.0, 2.0, 10.5), (3.0, 4.0, -2.25)])
    features, target = load_sql(url, query, FEATURES)
    assert features.dtype == np.float64 and features.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert target.dtype == np.float64 and target.tolist() == [10.5, -2.25]


def test_classification_targets_are_class_ids(tmp_path: Path, query: Path) -> None:
    url = database(tmp_path, [(1.0, 2.0, 0), (3.0, 4.0, 2)], "a REAL, b REAL, target INTEGER")
    _, target = load_sql(url, query, FEATURES, n_classes=3)
    assert target.dtype == np.int64 and target.tolist() == [0, 2]


@pytest.mark.parametrize(
    ("rows", "columns", "n_classes", "message"),
    [
        ([], "a REAL, b REAL, target REAL", None, "returned no rows"),
        ([(1.0, 0)], "a REAL, target REAL", None, "must return columns"),
        ([(1.0, None, 0)], "a REAL, b REAL, target REAL", None, "NaN, infinite or NULL feature"),
        ([(1.0, "x", 0)], "a REAL, b TEXT, target REAL", None, "not a number"),
        ([(1.0, 2.0, None)], "a REAL, b REAL, target REAL", None, "NULL target"),
        ([(1.0, 2.0, 3)], "a REAL, b REAL, target INTEGER", 3, "outside the class ids 0..2"),
        ([(1.0, 2.0, 0.5)], "a REAL, b REAL, target REAL", 3, "outside the class ids"),
    ],
)
def test_problems_are_named(
    tmp_path: Path, query: Path, rows: list[tuple[object, ...]], columns: str, n_classes: int | None, message: str
) -> None:
    url = database(tmp_path, rows, columns)
    with pytest.raises(ValueError, match=message) as raised:
        load_sql(url, query, FEATURES, n_classes=n_classes)
    assert "training.sql" in str(raised.value)


def test_git_commit_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert git_commit() == "abc123"


def test_git_commit_of_a_checkout_and_outside_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    outside = tmp_path / "outside"
    outside.mkdir()
    assert git_commit(outside) == "unknown"
    repo = tmp_path / "repo"
    repo.mkdir()
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", *identity, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    assert git_commit(repo) == head.stdout.strip() and len(head.stdout.strip()) == 12
