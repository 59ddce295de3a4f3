"""Helpers every model's ``train.py`` uses: training data from SQL, the commit a model was trained at, and the
reference a new model version keeps of its training data (what ``modelctl monitor`` measures drift against)."""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_ROWS = 5000  # rows of the training data kept as the reference (a uniform sample)

# Rows converted to float64 at a time by the generic (row-at-a-time DB-API) path.
_ROWS_PER_CHUNK = 65_536
# PostgreSQL COPY messages (about a row each) converted at a time: ~8 MB for 20 features.
_COPY_BLOCKS_PER_BATCH = 32_768
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER_BYTES = 19  # signature, int32 flags, int32 length of the header extension
_COPY_TRAILER = b"\xff\xff"  # int16 -1
_FLOAT4_OID = 700


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
    PostgreSQL URLs (``postgresql://``, any ``+driver``) are read with psycopg as one binary COPY
    of exactly those columns cast to float8, converted a block of rows at a time (no Python object
    per value; the query runs as a subquery, so it is one SELECT, a final ``;`` allowed). Other URLs
    run the query as written through SQLAlchemy and their own DB-API driver.
    Raises ValueError naming the query and the problem.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        # SQLAlchemy's message repeats the URL, password included.
        raise ValueError(f"{query.name}: the data URL is not a SQLAlchemy URL (dialect://user@host/database)") from None
    sql = query.read_text(encoding="utf-8")
    columns = [*features, target]
    try:
        if parsed.get_backend_name() == "postgresql":
            matrix, values = _postgresql(parsed, sql, query.name, columns)
        else:
            matrix, values = _dbapi(parsed, sql, query.name, columns)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"{query.name}: no driver for {parsed.drivername}:// URLs in this environment ({exc}); "
            "add it to the model's requirements.txt",
            name=exc.name,
        ) from exc
    if not len(values):
        raise ValueError(f"{query.name} returned no rows")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{query.name} returned NaN, infinite or NULL feature values")
    if not np.isfinite(values).all():
        raise ValueError(f"{query.name} returned NaN, infinite or NULL {target} values")
    if n_classes is None:
        return matrix, values
    if not (np.equal(np.mod(values, 1), 0).all() and ((values >= 0) & (values < n_classes)).all()):
        raise ValueError(f"{query.name} returned {target} values outside the class ids 0..{n_classes - 1}")
    return matrix, values.astype(np.int64)


def _missing(name: str, returned: Iterable[str], columns: Sequence[str]) -> ValueError | None:
    present = set(returned)
    missing = [column for column in columns if column not in present]
    return ValueError(f"{name} must return columns {list(columns)}; missing {missing}") if missing else None


def _dbapi(url: Any, sql: str, name: str, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Any SQLAlchemy dialect: rows from its DB-API cursor, turned into float64 a chunk of rows at a time."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            result = connection.exec_driver_sql(sql)
            if not result.returns_rows:
                raise ValueError(f"{name} returned no rows (it is not a query)")
            problem = _missing(name, result.keys(), columns)
            if problem:
                raise problem
            parts = []
            try:
                for rows in result.columns(*columns).partitions(_ROWS_PER_CHUNK):
                    parts.append(np.array([tuple(row) for row in rows], dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} returned a value that is not a number: {exc}") from None
    finally:
        engine.dispose()
    matrix = np.concatenate(parts) if parts else np.empty((0, len(columns)))
    return np.ascontiguousarray(matrix[:, :-1]), matrix[:, -1].copy()


def _postgresql(url: Any, sql: str, name: str, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """One ``COPY (SELECT column::float8 ...) TO STDOUT (FORMAT BINARY)`` through psycopg.

    The connection is made by SQLAlchemy's psycopg dialect from the URL, so the URL means what it means
    everywhere else (a password may hold ``/``; query options such as ``?sslmode=require`` or
    ``?host=/run/postgresql`` pass through). Each value is a fixed 8-byte big-endian double (NULL is
    turned into NaN by the query), so every row has the same size and a block of rows is one numpy view.
    """
    import psycopg
    from psycopg import sql as pgsql
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    body = pgsql.SQL(_without_terminator(sql))  # the query file is trusted SQL
    engine = create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
    try:
        # Connected through SQLAlchemy (its errors, as for any other URL), then psycopg's own COPY.
        with engine.connect() as pooled:
            connection = pooled.connection.driver_connection
            assert isinstance(connection, psycopg.Connection)
            with connection.cursor() as cursor:
                cursor.execute(pgsql.SQL("SELECT * FROM ({}\n) AS training LIMIT 0").format(body))
                types = {column.name: column.type_code for column in cursor.description or ()}
                problem = _missing(name, types, columns)
                if problem:
                    raise problem
                # real (float4) through its text: 5.1 stays 5.1, as every other driver and the service's JSON
                # read it, not the float32 neighbour 5.099999904632568 that a plain widening gives.
                projection = pgsql.SQL(", ").join(
                    pgsql.SQL("COALESCE({}{}::float8, 'NaN')").format(
                        pgsql.Identifier(column), pgsql.SQL("::text" if types[column] == _FLOAT4_OID else "")
                    )
                    for column in columns
                )
                statement = pgsql.SQL("COPY (SELECT {} FROM ({}\n) AS training) TO STDOUT (FORMAT BINARY)")
                try:
                    with cursor.copy(statement.format(projection, body)) as copy:
                        return _binary_copy(copy, len(columns))
                except (psycopg.DataError, psycopg.errors.CannotCoerce) as exc:
                    # e.g. 'x'::float8 (22P02), a boolean or date column (42846), a numeric beyond float8 (22003)
                    raise ValueError(f"{name} returned a value that is not a number: {exc}") from None
    finally:
        engine.dispose()


def _binary_copy(blocks: Iterable[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    """(all columns but the last, the last) from COPY BINARY data of ``width`` non-NULL float8 columns.

    ``blocks`` are the data as it arrives (PostgreSQL sends a message per row). They are appended to one
    buffer a batch at a time by ``deque(map(...))``, so no Python code runs per row, and each block is let go
    at once (holding psycopg's blocks for a whole batch made the load twice as slow).
    """
    # A row: int16 field count, then per field int32 length (8) and the big-endian double.
    row = np.dtype([("count", ">i2"), ("fields", [("size", ">i4"), ("value", ">f8")], (width,))])
    features: list[np.ndarray] = []
    target: list[np.ndarray] = []

    def convert(data: bytearray, rows: int) -> None:
        records = np.frombuffer(data, dtype=row, count=rows)
        if (records["count"] != width).any() or (records["fields"]["size"] != 8).any():
            raise RuntimeError("PostgreSQL sent COPY rows of an unexpected layout")
        values = records["fields"]["value"]
        features.append(values[:, :-1].astype(np.float64))
        target.append(values[:, -1].astype(np.float64))

    stream = iter(blocks)
    pending = bytearray()
    header = True
    while True:
        size = len(pending)
        deque(map(pending.extend, islice(stream, _COPY_BLOCKS_PER_BATCH)), maxlen=0)
        if len(pending) == size:
            break
        if header:
            if len(pending) < _COPY_HEADER_BYTES:
                continue
            if not pending.startswith(_COPY_SIGNATURE):
                raise RuntimeError("PostgreSQL sent COPY data without the binary signature")
            extension = _COPY_HEADER_BYTES + int.from_bytes(pending[15:_COPY_HEADER_BYTES], "big")
            if len(pending) < extension:
                continue
            del pending[:extension]
            header = False
        rows = len(pending) // row.itemsize
        if rows:
            convert(pending, rows)  # its views of `pending` are gone when it returns: the buffer may shrink
            del pending[: rows * row.itemsize]
    if header or pending != _COPY_TRAILER:
        raise RuntimeError("PostgreSQL ended COPY data early")
    if not features:
        return np.empty((0, width - 1)), np.empty(0)
    return np.concatenate(features), np.concatenate(target)


_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def _without_terminator(sql: str) -> str:
    """``sql`` up to its last token: a final ``;`` and the comments after it cannot stand inside a subquery.

    A small scanner of PostgreSQL's lexical rules: strings ('', E'' with backslashes, ""), dollar quotes
    and comments (``--``, nested ``/* */``) may hold a ``;``; only one outside them ends the statement.
    """
    end = index = 0
    while index < len(sql):
        char = sql[index]
        if sql.startswith("--", index):
            newline = sql.find("\n", index)
            index = len(sql) if newline < 0 else newline
            continue
        if sql.startswith("/*", index):
            depth, index = 1, index + 2
            while depth and index < len(sql):
                if sql.startswith("/*", index):
                    depth, index = depth + 1, index + 2
                elif sql.startswith("*/", index):
                    depth, index = depth - 1, index + 2
                else:
                    index += 1
            continue
        if char.isspace() or char == ";":
            index += 1
            continue
        dollar = _DOLLAR_QUOTE.match(sql, index)
        if char in "'\"":
            index = _after_quote(sql, index)
        elif dollar and not (index and (sql[index - 1].isalnum() or sql[index - 1] in "_$")):
            close = sql.find(dollar.group(), dollar.end())
            index = len(sql) if close < 0 else close + len(dollar.group())
        else:
            index += 1
        end = index
    return sql[:end]


def _after_quote(sql: str, start: int) -> int:
    quote = sql[start]
    backslashes = quote == "'" and start > 0 and sql[start - 1] in "eE"
    index = start + 1
    while index < len(sql):
        if backslashes and sql[index] == "\\":
            index += 2
        elif sql[index] == quote:
            if not sql.startswith(quote, index + 1):
                return index + 1
            index += 2
        else:
            index += 1
    return len(sql)


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


def save_reference(
    tag: str,
    features: Any,
    output: Any,
    *,
    names: Sequence[str] = (),
    classes: Sequence[str] = (),
    target: Any = None,
    sensitive: Mapping[str, str] | None = None,
    rows: int = REFERENCE_ROWS,
    seed: int = 0,
) -> Path:
    """Keep a sample of the training data and of the model's own output on it with model version ``tag``.

    ``features``: a float array (rows, len(names)) or a sequence of request rows (mappings, or the request
    model's instances: text and base64 images then get the log's derived columns); ``output``: the
    model's raw output for those rows (what ``model_io.predict`` returns; the service logs the same);
    ``target``: the true values (optional). Written as ``reference.parquet`` in the version's folder of the
    BentoML store, with the same columns as the prediction log (``modelkit.predlog``), so it travels with the
    model (export, import, bento). The template's ``train.py`` calls it from ``remember()``, right after
    ``model_io.save``. ``sensitive`` defaults to ``monitor.sensitive`` of the ``config.yaml`` in the current folder
    (training runs from the model's folder); every field named there is left out of the reference, hashed or not.
    """
    import bentoml

    from modelkit import predlog

    if sensitive is None and Path("config.yaml").is_file():
        from modelkit.loader import load_config

        sensitive = dict(load_config(Path("config.yaml")).monitor.sensitive)
    sensitive = dict.fromkeys(sensitive or {}, "drop")  # a reference needs no join key: nothing sensitive is kept
    table = reference_table(
        features, output, names=names, classes=classes, target=target, sensitive=sensitive, rows=rows, seed=seed
    )
    path = Path(bentoml.models.get(tag).path) / predlog.REFERENCE_FILE
    predlog.atomic_write(path, predlog.parquet_bytes(table))
    return path


def reference_table(
    features: Any,
    output: Any,
    *,
    names: Sequence[str] = (),
    classes: Sequence[str] = (),
    target: Any = None,
    sensitive: Mapping[str, str] | None = None,
    rows: int = REFERENCE_ROWS,
    seed: int = 0,
) -> Any:
    """The reference as an Arrow table (see :func:`save_reference`); ``target`` becomes ``label`` (class names for
    classification). Raises ValueError naming what does not fit."""
    from modelkit import predlog

    if isinstance(features, np.ndarray):
        if features.ndim != 2 or features.shape[1] != len(names):
            raise ValueError(
                f"features has shape {features.shape}; expected (rows, {len(names)}) for names {list(names)}"
            )
        records = [dict(zip(names, row, strict=True)) for row in features.tolist()]
        encoded: frozenset[str] = frozenset()
    else:
        given = list(features)
        encoded = predlog.encoded_fields(type(given[0])) if given else frozenset()
        records = [predlog.as_dict(row) for row in given]
    count = len(records)
    if not count:
        raise ValueError("no rows to keep as the reference")
    predicted = predlog.prediction_values(output, classes, count)
    truth = None if target is None else np.asarray(target).tolist()
    if truth is not None and len(truth) != count:
        raise ValueError(f"target has {len(truth)} values for {count} rows")
    picked = sorted(np.random.default_rng(seed).choice(count, size=min(rows, count), replace=False).tolist())
    kept = sensitive or {}
    table_rows = []
    for index in picked:
        row: dict[str, Any] = predlog.row_values(records[index], kept, encoded=encoded)
        row.update(predicted[index])
        if truth is not None:
            value = truth[index]
            row[predlog.TRUTH] = classes[int(value)] if classes else float(value)
        table_rows.append(row)
    return predlog.to_table(table_rows, {predlog.ROWS_META: str(count).encode()})
