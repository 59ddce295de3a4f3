"""Ground truth from the warehouse: a model's ``queries/labels.sql`` run where its labels live (issue 22, item 4).

The query returns a ``label`` column (the class name, or the true number) beside either the log's ``_row_key`` or
the request fields, as a labels file does (:func:`modelctl.monitor.quality.keyed_labels` joins both). It may use the
bind parameters ``:since`` and ``:until`` (timestamps with a time zone, the monitored window) to read only the
window's labels. It runs at the SQLAlchemy URL in the first of these variables that is set:

- ``<SLUG>_LABELS_URL``: where this model's labels live;
- ``MODELCTL_LABELS_URL``: one warehouse for every model's labels (the scheduled workflow's secret);
- ``<SLUG>_DATA_URL``: the model's training data (``queries/training.sql``'s database).

The query is SQL, never code: it runs from the tooling environment, in the same process as the monitor. On
PostgreSQL it runs read-only, with a connect timeout and a statement timeout; give each model a read-only login of
its own (``<SLUG>_LABELS_URL``) where one warehouse holds more than labels. Rows are
fetched a block at a time and at most :data:`MAX_ROWS` of them are read (more is an error naming the query: filter
it on ``:since``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl.monitor.quality import LabelsError
from modelctl.redact import redact
from modelkit import predlog

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

QUERY = Path("queries") / "labels.sql"
SHARED_URL = "MODELCTL_LABELS_URL"
MAX_ROWS = 2_000_000
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_S = 300
_BLOCK = 50_000


def url_variables(model: str) -> tuple[str, ...]:
    """The variables that may hold the labels URL of ``model``, the first set one wins."""
    return (f"{model.upper()}_LABELS_URL", SHARED_URL, f"{model.upper()}_DATA_URL")


def labels_url(model: str, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, URL) of the first labels URL variable set for ``model``; None when none is."""
    environ = os.environ if environ is None else environ
    for name in url_variables(model):
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def run_query(url: str, query: Path, since: datetime, until: datetime) -> pa.Table:
    """The rows of ``query`` at ``url`` as an Arrow table with a ``label`` column; LabelsError naming the query."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    try:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError
        from sqlalchemy.pool import NullPool
    except ModuleNotFoundError as exc:  # pragma: no cover - a dependency of modelctl
        raise LabelsError(f"{query}: SQLAlchemy is not installed ({exc})") from exc
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LabelsError(f"{query}: the labels URL is not a SQLAlchemy URL (dialect://user@host/database)") from None
    if parsed.get_backend_name() == "postgresql" and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver modelctl brings
    try:
        sql = query.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{query}: cannot be read ({exc})") from exc
    statement = text(sql)
    wanted = set(statement.compile().params)
    params = {k: v for k, v in (("since", since), ("until", until)) if k in wanted}
    unknown = sorted(wanted - {"since", "until"})
    if unknown:
        raise LabelsError(f"{query}: unknown bind parameters {unknown}; a labels query may use :since and :until")
    rows: list[dict[str, Any]] = []
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # Bounded, and read-only: a warehouse that never answers costs CONNECT_TIMEOUT_S, a query that never ends
        # STATEMENT_TIMEOUT_S, and the query can change nothing (the SQL is a model folder's).
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_S * 1000} -c default_transaction_read_only=on"
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S, "options": options}
    try:
        engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except ModuleNotFoundError as exc:
        raise LabelsError(f"{query}: no driver for {parsed.drivername}:// URLs here ({exc.name})") from None
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(statement, params)
            if not result.returns_rows:
                raise LabelsError(f"{query}: is not a query (it returns no rows)")
            names = list(result.keys())
            if predlog.TRUTH not in names:
                raise LabelsError(f"{query}: returns no {predlog.TRUTH!r} column (it returns {names[:10]})")
            for block in result.partitions(_BLOCK):
                rows.extend({n: _plain(v) for n, v in zip(names, row, strict=True)} for row in block)
                if len(rows) > MAX_ROWS:
                    raise LabelsError(
                        f"{query}: returned more than {MAX_ROWS} rows; filter it on :since (the window's start)"
                    )
    except SQLAlchemyError as exc:
        # The record and the alert get the error's class and SQLSTATE only: a driver's message can quote the data
        # (`invalid input syntax for type integer: "<a value>"`); the terminal gets the message too.
        state = getattr(getattr(exc, "orig", None), "sqlstate", None)
        error = LabelsError(
            f"{query}: the labels query failed ({type(exc).__name__}{f', SQLSTATE {state}' if state else ''})"
        )
        error.detail = redact(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300])
        raise error from None
    finally:
        engine.dispose()
    try:
        return pa.Table.from_pylist(rows) if rows else pa.table({n: pa.array([], pa.null()) for n in names})
    except (pa.ArrowException, TypeError) as exc:
        raise LabelsError(f"{query}: its rows cannot be read as columns ({str(exc)[:200]})") from None
