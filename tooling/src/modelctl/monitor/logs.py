"""Read a model's prediction log from the state store: the Parquet parts of a window, the damaged ones named.

A part that is listed but gone, empty, not Parquet, or without the log's own columns is one problem line naming its
key; the rest of the window is still read. ``dropped`` sums what the services reported dropping (buffer full, store
down) in the parts' metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelctl.statestore import Store, StoreError
from modelkit import predlog

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

REQUIRED = (predlog.TS, predlog.VERSION)
MAX_PART_ROWS = 1_000_000  # a part holds at most predlog.PART_ROWS rows; a bigger one was not written by a service


@dataclass
class LogWindow:
    table: pa.Table | None
    parts: int = 0
    problems: list[str] = field(default_factory=list)
    dropped: int = 0
    other_versions: dict[str, int] = field(default_factory=dict)  # rows of versions other than the one judged
    synthetic: int = 0  # rows left out as the post-deploy watch's own smoke load

    @property
    def rows(self) -> int:
        return 0 if self.table is None else int(self.table.num_rows)


def part_keys(store: Store, model: str, env: str, start: datetime, end: datetime | None = None) -> list[str]:
    """Keys of the parts whose day partition (``YYYY-MM-DD``) may hold rows from ``start`` to ``end``: a folder
    that is not a day, or a day after ``end``, is never read."""
    prefix = f"{predlog.PREFIX}/{model}/{env}/"
    first_day = start.strftime("%Y-%m-%d")
    last_day = (end or datetime.now(UTC)).strftime("%Y-%m-%d")
    keys = []
    for key in store.list(prefix):
        day, _, name = key.removeprefix(prefix).partition("/")
        if name.endswith(".parquet") and "/" not in name and _DAY.fullmatch(day) and first_day <= day <= last_day:
            keys.append(key)
    return keys


def read_part(store: Store, key: str) -> tuple[pa.Table | None, str | None]:
    """(the part, None) or (None, a one-line problem naming it)."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    try:
        blob = store.read(key)
    except StoreError as exc:
        return None, f"{store.where(key)}: cannot be read ({exc})"
    if blob is None:
        return None, f"{store.where(key)}: missing (listed, then gone)"
    if not blob.data:
        return None, f"{store.where(key)}: empty (a partial write)"
    try:
        parquet = pq.ParquetFile(pa.BufferReader(blob.data))
        rows = parquet.metadata.num_rows
        if rows > MAX_PART_ROWS:  # checked before anything is decoded: a tiny file can expand to gigabytes
            return None, f"{store.where(key)}: {rows} rows, more than a log part holds ({MAX_PART_ROWS}); skipped"
        table = parquet.read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, f"{store.where(key)}: not a readable Parquet file ({reason})"
    missing = [name for name in REQUIRED if name not in table.column_names]
    if missing:
        return None, f"{store.where(key)}: partial, lacks the columns {missing}"
    stamp, version = table.schema.field(predlog.TS).type, table.schema.field(predlog.VERSION).type
    if not (pa.types.is_timestamp(stamp) and stamp.tz is not None) or not pa.types.is_string(version):
        return None, (
            f"{store.where(key)}: {predlog.TS} is {stamp} and {predlog.VERSION} is {version}; "
            "a log part has a timestamp with a time zone and a string: skipped"
        )
    return table, None


def _dropped(table: pa.Table) -> int:
    metadata: dict[bytes, bytes] = table.schema.metadata or {}
    try:
        return max(0, int(metadata.get(predlog.DROPPED_META, b"0")))
    except ValueError:
        return 0


def read_window(store: Store, model: str, env: str, start: datetime, end: datetime | None = None) -> LogWindow:
    """The log of ``model`` in ``env`` from ``start`` to ``end`` (default: now), every version. A part whose columns
    cannot be merged with the ones read before it (a feature that changed type) is named and skipped."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    end = end or datetime.now(UTC)
    window = LogWindow(None)
    merged: Any = None
    for key in part_keys(store, model, env, start, end):
        table, problem = read_part(store, key)
        if problem is None and table is not None and table.num_rows == 0:
            # A part of no rows only reports drops (written as a log closed): counted, its columns never merged (they
            # may be another day's, and would make the real parts look as if they disagreed).
            window.parts += 1
            window.dropped += _dropped(table)
            continue
        if problem is None and table is not None:
            try:
                stamps = table.column(predlog.TS)
                span = pc.and_(
                    pc.greater_equal(stamps, pa.scalar(start, type=stamps.type)),
                    pc.less_equal(stamps, pa.scalar(end, type=stamps.type)),
                )
                rows = table.replace_schema_metadata(None).filter(span)
                merged = rows if merged is None else pa.concat_tables([merged, rows], promote_options="permissive")
            except pa.ArrowException as exc:
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
                problem = f"{store.where(key)}: its columns do not agree with the other parts ({reason}); skipped"
        if problem is not None:
            window.problems.append(problem)
            continue
        assert table is not None
        window.parts += 1
        window.dropped += _dropped(table)
    window.table = merged
    return window


def only_version(window: LogWindow, version: str) -> None:
    """Keep the rows of model ``version``; the others are counted in ``other_versions``."""
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    if window.table is None or not window.table.num_rows:
        return
    versions = window.table.column(predlog.VERSION)
    counts = pc.value_counts(versions).to_pylist()
    window.other_versions = {str(c["values"]): int(c["counts"]) for c in counts if c["values"] != version}
    window.table = window.table.filter(pc.equal(versions, version))


def without_keys(window: LogWindow, keys: set[str]) -> None:
    """Leave out the rows whose row key is one of ``keys`` (the watch's smoke load: the model's sample rows,
    :func:`modelctl.monitor.quality.sample_keys`); they are counted in ``synthetic``."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    table = window.table
    if table is None or not table.num_rows or not keys or predlog.ROW_KEY not in table.column_names:
        return
    smoke = pc.fill_null(pc.is_in(table.column(predlog.ROW_KEY), value_set=pa.array(sorted(keys))), False)
    window.synthetic += int(pc.sum(smoke).as_py() or 0)
    window.table = table.filter(pc.invert(smoke))


def latest_version(window: LogWindow) -> str | None:
    """The model version of the most recent row (when nothing says which version is live)."""
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    if window.table is None or not window.table.num_rows:
        return None
    index = int(pc.index(window.table.column(predlog.TS), pc.max(window.table.column(predlog.TS))).as_py())
    value = window.table.column(predlog.VERSION)[index].as_py()
    return None if value is None else str(value)
