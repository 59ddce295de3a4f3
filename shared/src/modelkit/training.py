"""Helpers every model's ``train.py`` uses: training data from SQL, and the commit a model was trained at."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def load_sql(
    url: str,
    query: Path,
    features: Sequence[str],
    *,
    target: str = "target",
    n_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features, target) from the rows of ``query`` run at the SQLAlchemy ``url``.

    The query returns a column per name in ``features`` and a ``target`` column: class ids
    ``0..n_classes-1`` when ``n_classes`` is given (int64), numbers otherwise (float64).
    Raises ValueError naming the query and the problem.
    """
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(query.read_text(encoding="utf-8"))).mappings().all()
    finally:
        engine.dispose()
    if not rows:
        raise ValueError(f"{query.name} returned no rows")
    expected = [*features, target]
    missing = [column for column in expected if column not in rows[0]]
    if missing:
        raise ValueError(f"{query.name} must return columns {expected}; missing {missing}")
    try:
        matrix = np.array([[row[f] for f in features] for row in rows], dtype=np.float64)
        values = np.array([row[target] for row in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{query.name} returned a value that is not a number: {exc}") from None
    if not np.isfinite(matrix).all():
        raise ValueError(f"{query.name} returned NaN, infinite or NULL feature values")
    if not np.isfinite(values).all():
        raise ValueError(f"{query.name} returned NaN, infinite or NULL {target} values")
    if n_classes is None:
        return matrix, values
    if not (np.equal(np.mod(values, 1), 0).all() and ((values >= 0) & (values < n_classes)).all()):
        raise ValueError(f"{query.name} returned {target} values outside the class ids 0..{n_classes - 1}")
    return matrix, values.astype(np.int64)


def git_commit(cwd: Path | None = None) -> str:
    """The commit being trained (``GIT_COMMIT`` wins, for builds outside a checkout), else ``unknown``."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True, cwd=cwd
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()
