"""The prediction log (issue 22): what a served model was asked and what it answered, as Parquet in the state store.

The service's ``predict`` calls :meth:`PredictionLog.record` with the request rows and the model's raw output. That
call only decides the sample (``monitor.sample_rate``) and appends references to a bounded in-memory buffer
(``monitor.buffer_rows``). Every half second a background thread hands the buffered rows, as plain dicts, to the
log's writer, a child process of the worker (``modelkit.predlog_writer``), which turns them into columns and writes
one Parquet part per flush (``monitor.flush_s``) to

    <store>/predictions/<model>/<env>/<YYYY-MM-DD>/<time>-<pid>-<seq>.parquet

The serving process never imports pyarrow (with it loaded, every scikit-learn call pays for dataframe checks) and
spends no time of its own on columns. ``buffer_rows`` bounds the rows of both processes together: the worker counts
what it handed over until the writer reports it written or dropped.

Serving never waits for the store: a full buffer or a failed write drops rows, and each drop is counted (the
Prometheus counter ``modelkit_predlog_dropped_rows_total{reason}`` on ``/metrics``, a warning line, and the next
part's ``modelkit.dropped`` metadata, which ``modelctl monitor`` reports).

Where the log goes is given to the service process by environment variables (nothing else is needed: the process
gets no state-store credentials from modelkit):

- ``MODELKIT_PREDLOG_URL``: the store root, a folder or ``s3://bucket/prefix`` (needs ``s3fs`` in the model's
  environment; credentials from the usual AWS variables; endpoint from ``MODELKIT_PREDLOG_ENDPOINT_URL``). Unset:
  nothing is logged.
- ``MODELKIT_ENV``: the environment name in the partition (default ``dev``).

Columns: ``_ts`` (UTC), ``_version`` (the model version), ``_row_key`` (a hash of the row's non-sensitive fields:
ground truth that arrives later joins on it), ``feature.<field>`` per request field and derived
``feature.<field>.<stat>`` for text (``length``, ``words``), base64 images (``bytes``, ``width``, ``height``,
``mean``, ``std``; the image itself is not kept), sequences (``len``, ``mean``, ``std``: embeddings) and bytes
(``bytes``); ``prediction.label`` and ``prediction.confidence`` (classification) or ``prediction.value``.
A field named in ``monitor.sensitive`` is left out (``drop``) or kept as a salted hash (``hash``; salt from
``MODELKIT_PREDLOG_SALT``) with no derived statistics.

BentoML's ``bentoml.monitor`` was considered first: its default writer is JSON lines to a local folder per worker
(through Python logging, for a log forwarder to ship), not day partitions of Parquet in an object store, and its
API records value by value inside the request (a call per value per column). A custom ``monitor_class`` could
receive the columns, but the work would still happen in the request path, and ``monitoring.enabled: false``
silently turns it into a no-op. So the request path here only appends references, and the conversion happens
in another process (measured by ``bench/predlog.py``).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import importlib.util
import io
import logging
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    from modelkit import predlog_writer
    from modelkit.config import ModelConfig

ENV_URL = "MODELKIT_PREDLOG_URL"
ENV_ENDPOINT = "MODELKIT_PREDLOG_ENDPOINT_URL"
ENV_NAME = "MODELKIT_ENV"
ENV_ACTIVE = "MODELKIT_PREDLOG_ACTIVE_FILE"  # when set: log only while this file exists
ENV_SALT = "MODELKIT_PREDLOG_SALT"
ENV_NICE = "MODELKIT_PREDLOG_NICE"  # the writer process's niceness above the worker's, 0-19 (default 10)
PREFIX = "predictions"
REFERENCE_FILE = "reference.parquet"

TS = "_ts"
VERSION = "_version"
ROW_KEY = "_row_key"
FEATURE = "feature."
PREDICTION = "prediction."
LABEL = "prediction.label"
CONFIDENCE = "prediction.confidence"
VALUE = "prediction.value"
DROPPED_META = b"modelkit.dropped"
ROWS_META = b"modelkit.training_rows"  # reference: rows of the training data it was sampled from
TRUTH = "label"  # reference and labels: the true value (class name or number)
MAX_TEXT = 1000  # characters of a text field kept in the log (its length is kept whole)
PART_ROWS = 100_000  # rows per Parquet part at most
CONVERT_S = 0.5  # how often buffered requests become Arrow columns (they are written every monitor.flush_s)

log = logging.getLogger("modelkit.predlog")

Row = Mapping[str, Any]


# --- columns ---------------------------------------------------------------------------------------------------


def _hashed(value: Any, salt: str) -> str:
    return hashlib.sha256(f"{salt}\x00{value}".encode()).hexdigest()[:16]


def _numbers(value: Any) -> list[float] | None:
    """A flat list of floats from a (nested) sequence of numbers; None when it is not one."""
    flat: list[float] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            flat.append(float(item))
        else:
            return None
    return flat


_ENCODED: dict[type, frozenset[str]] = {}


def encoded_fields(row_type: type) -> frozenset[str]:
    """Fields of a request model that carry base64 data (``contentEncoding: base64`` in its JSON schema: images)."""
    known = _ENCODED.get(row_type)
    if known is not None:
        return known
    try:
        schema = row_type.model_json_schema()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a pydantic model, or no schema: no encoded fields
        schema = {}
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    found = frozenset(n for n, p in properties.items() if isinstance(p, dict) and p.get("contentEncoding") == "base64")
    _ENCODED[row_type] = found
    return found


def image_stats(text: str) -> dict[str, float]:
    """Size and grayscale statistics of a base64 image (empty when it cannot be decoded or PIL is absent)."""
    try:
        import numpy as np
        from PIL import Image  # type: ignore[import-not-found, unused-ignore]

        with Image.open(io.BytesIO(base64.b64decode(text, validate=False))) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
            width, height = image.size
    except Exception:  # noqa: BLE001 - the service validated it; whatever else fails costs only these columns
        return {}
    return {"width": float(width), "height": float(height), "mean": float(pixels.mean()), "std": float(pixels.std())}


def row_values(
    row: Row, sensitive: Mapping[str, str], salt: str = "", encoded: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """One request row -> ``{column: value}`` (features only), sensitive fields dropped or hashed.

    Text keeps its first characters and gets ``.length`` and ``.words``; base64 fields (``encoded``: images) are
    not kept but give ``.bytes`` and, for images, ``.width``, ``.height``, ``.mean`` and ``.std`` (grayscale).
    """
    values: dict[str, Any] = {}
    for name, value in row.items():
        column = FEATURE + name
        if sensitive:
            # A sensitive name applies at any depth: {"email": "hash"} covers profile.email too.
            how = sensitive.get(name) or sensitive.get(name.rpartition(".")[2])
            if how == "drop":
                continue
            if how == "hash":
                values[column] = None if value is None else _hashed(value, salt)
                continue
        if type(value) is float:  # the common case first: most request fields are numbers
            values[column] = value
        elif name in encoded and isinstance(value, str):
            values[column + ".bytes"] = float(len(value) * 3 // 4)
            values.update({f"{column}.{stat}": number for stat, number in image_stats(value).items()})
        elif value is None:
            values[column] = None
        elif isinstance(value, bool):
            values[column] = "true" if value else "false"
        elif isinstance(value, int | float):
            values[column] = float(value)
        elif isinstance(value, str):
            values[column] = value[:MAX_TEXT]
            values[column + ".length"] = float(len(value))
            values[column + ".words"] = float(len(value.split()))
        elif isinstance(value, bytes | bytearray):
            values[column + ".bytes"] = float(len(value))
        elif isinstance(value, list | tuple):
            numbers = _numbers(value)
            if numbers is None:
                values[column + ".len"] = float(len(value))
            else:
                count = len(numbers)
                mean = math.fsum(numbers) / count if count else math.nan
                spread = math.sqrt(math.fsum((x - mean) ** 2 for x in numbers) / count) if count else math.nan
                values[column + ".len"] = float(count)
                values[column + ".mean"] = mean
                values[column + ".std"] = spread
        elif isinstance(value, Mapping):
            nested = row_values({f"{name}.{k}": v for k, v in value.items()}, sensitive, salt, encoded)
            values.update(nested)
        else:
            values[column] = str(value)[:MAX_TEXT]
    return values


def row_key(row: Row, sensitive: Mapping[str, str]) -> str:
    """The key ground truth joins on: a hash of the row's non-sensitive fields and values (in name order).

    ``repr`` of the items, not JSON: the same for the service and ``modelctl monitor`` (both Python, float fields as
    floats), and a third of the cost per logged row.
    """
    kept = sorted((k, v) for k, v in row.items() if k not in sensitive)
    return hashlib.blake2b(repr(kept).encode(), digest_size=12).hexdigest()


_PLAIN = frozenset({float, int, str, bool, type(None)})


def as_dict(row: Any) -> dict[str, Any]:
    """A request row (a pydantic model or a mapping) as a plain dict."""
    fields = getattr(row, "__dict__", None) if hasattr(row, "model_dump") else None
    if isinstance(fields, dict) and all(type(v) in _PLAIN for v in fields.values()):
        return dict(fields)  # a flat pydantic row: its field values as they are (what model_dump gives, ~20x faster)
    dump = getattr(row, "model_dump", None)
    if callable(dump):
        result: dict[str, Any] = dump(mode="python")
        return result
    return dict(row)


def prediction_values(output: Any, classes: Sequence[str], rows: int) -> list[dict[str, Any]]:
    """The model's raw output for ``rows`` rows -> one ``{column: value}`` per row.

    Classification (``classes`` given): class probabilities (rows, n_classes) give the label and its probability;
    class ids (rows,) give the label. Otherwise one number per row is ``prediction.value``.
    """
    import numpy as np

    array = np.asarray(output)
    if array.dtype == object or array.shape[:1] != (rows,):
        return [{} for _ in range(rows)]
    if classes and array.ndim == 2 and array.shape[1] == len(classes):
        best = array.argmax(axis=1)
        confidence = array.max(axis=1)
        return [
            {LABEL: classes[int(b)], CONFIDENCE: float(c)}
            for b, c in zip(best.tolist(), confidence.tolist(), strict=True)
        ]
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        return [{} for _ in range(rows)]
    if classes and np.issubdtype(array.dtype, np.integer):
        return [{LABEL: classes[int(i)] if 0 <= int(i) < len(classes) else str(int(i))} for i in array.tolist()]
    return [{VALUE: float(v)} for v in array.astype(np.float64).tolist()]


def to_table(records: Sequence[Mapping[str, Any]], metadata: Mapping[bytes, bytes] | None = None) -> pa.Table:
    """Rows of ``{column: value}`` -> an Arrow table: numbers float64, text string, ``_ts`` a UTC timestamp."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    arrays = []
    fields = []
    for name in names:
        values = [record.get(name) for record in records]
        if name == TS:
            array = pa.array(values, type=pa.timestamp("us", tz="UTC"))
        else:
            array = _column(values)
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    schema = pa.schema(fields, metadata=dict(metadata or {}))
    return pa.Table.from_arrays(arrays, schema=schema)


def _column(values: list[Any]) -> pa.Array:
    """float64 when every value is a float (or None), null when all are None (it merges with whatever type the
    column has in other parts), else the values as text. Arrow infers the type in one pass (no Python loop per
    value): the log's own conversion is most of its cost per row."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is not None and (pa.types.is_floating(array.type) or pa.types.is_null(array.type)):
        return array.cast(pa.float64()) if pa.types.is_floating(array.type) else array
    if array is not None and pa.types.is_string(array.type):
        return array
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def parquet_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()
    return data


# --- where parts go --------------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> None:
    """A temp file beside ``path``, renamed over it: a reader sees the whole part or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Destination:
    """The store root the log is written under: a local folder or an fsspec URL (``s3://bucket/prefix``)."""

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        scheme, sep, rest = self.url.partition("://")
        self.local: Path | None = None
        if not sep:
            self.local = Path(url)
        elif scheme == "file":
            self.local = Path(rest)
        self.endpoint_url = endpoint_url
        self._fs: Any = None

    def put(self, key: str, data: bytes) -> None:
        if self.local is not None:
            atomic_write(self.local / key, data)
            return
        if self._fs is None:
            import fsspec

            options: dict[str, Any] = {}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            self._fs, _ = fsspec.core.url_to_fs(self.url, **options)
        with self._fs.open(f"{self.url}/{key}", "wb") as handle:  # one PUT: whole or absent
            handle.write(data)


def partition(model: str, env: str, day: str) -> str:
    return f"{PREFIX}/{model}/{env}/{day}"


# --- the log ---------------------------------------------------------------------------------------------------


def _prometheus_counter() -> Callable[[str, int], None]:
    """Drops counted on the service's /metrics (``modelkit_predlog_dropped_rows_total{reason}``).

    prometheus_client directly, as BentoML 1.4 asks (``bentoml.metrics`` is deprecated): BentoML's /metrics collects
    every worker's samples from its multiprocess folder.
    """
    try:
        from prometheus_client import Counter

        counter = _COUNTERS.get("dropped")
        if counter is None:
            counter = Counter(
                "modelkit_predlog_dropped_rows",
                "Prediction-log rows dropped: buffer full, store write failed, or not convertible",
                ["reason"],
            )
            for reason in DROP_REASONS:
                counter.labels(reason=reason).inc(0)  # shown at 0 before the first drop
            _COUNTERS["dropped"] = counter
    except Exception as exc:  # noqa: BLE001 - no metrics is no reason to stop serving
        log.warning("prediction log: drops are not exported to /metrics (%s: %s)", type(exc).__name__, exc)
        return lambda _reason, _count: None

    def count(reason: str, rows: int) -> None:
        counter.labels(reason=reason).inc(rows)

    return count


DROP_REASONS = ("buffer_full", "store", "error")
_COUNTERS: dict[str, Any] = {}


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add per-reason row counts (drops) into ``into``."""
    for reason, rows in counts.items():
        into[reason] = into.get(reason, 0) + rows


@dataclass
class Stats:
    """What the log did in this process (for tests, the benchmark and the warning lines)."""

    recorded: int = 0
    written: int = 0
    parts: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


class PredictionLog:
    """Samples requests into a bounded buffer and hands them to a writer off the request path (see the module doc).

    The writer is a child process by default (``modelkit.predlog_writer``): the serving process never imports
    pyarrow nor spends its own time on columns. ``in_process=True`` runs the same writer in this process's log
    thread instead (for a caller that is not serving, or a ``Destination`` that only exists in this process).
    """

    def __init__(
        self,
        destination: Destination,
        *,
        model: str,
        env: str,
        version: str,
        classes: Sequence[str] = (),
        sample_rate: float = 1.0,
        sensitive: Mapping[str, str] | None = None,
        buffer_rows: int = 50_000,
        flush_s: float = 30.0,
        salt: str = "",
        on_drop: Callable[[str, int], None] | None = None,
        start: bool = True,
        active_file: str | None = None,
        in_process: bool = False,
    ) -> None:
        from modelkit import predlog_writer

        self.destination = destination
        # With ``active_file``, rows are logged only while that file exists (checked at most once a second): a
        # candidate under test (fuzzing, the load test) logs nothing until modelctl makes it the live deployment.
        self.active_file = active_file
        self._active = active_file is None
        self._active_checked = 0.0
        self.model, self.env, self.version = model, env, version
        self.classes = tuple(classes)
        self.sample_rate = sample_rate
        self.sensitive = dict(sensitive or {})
        self.capacity = buffer_rows
        self.flush_s = flush_s
        self.salt = salt
        self.in_process = in_process
        self.stats = Stats()
        self._on_drop = on_drop if on_drop is not None else _prometheus_counter()
        self._random = random.random
        self._lock = threading.Lock()
        # One hand-over at a time: a flush's rows reach the writer before its flush request, even while the log's
        # thread is handing over the rows it took a moment before.
        self._ship_lock = threading.Lock()
        self._pending: list[tuple[float, Any, Any, Any]] = []
        self._queued = 0  # rows in _pending
        self._held = 0  # rows handed to the writer that it has not finished with (written or dropped)
        self._unreported = 0  # rows dropped here, not yet handed to the writer (for its parts' metadata)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        settings: dict[str, Any] = {
            "model": model,
            "env": env,
            "version": version,
            "classes": self.classes,
            "sensitive": self.sensitive,
            "salt": salt,
            "flush_s": flush_s,
            "part_rows": self._part_rows,
        }
        self._sink: predlog_writer.Sink
        if in_process:
            writer = predlog_writer.PartWriter(destination, **{k: settings[k] for k in predlog_writer.WRITER_SETTINGS})
            self._sink = predlog_writer.ThreadSink(writer, self._apply, flush_s, self._part_rows)
        else:
            if type(destination) is not Destination:
                raise TypeError(f"{type(destination).__name__} exists only in this process: use in_process=True")
            settings.update(url=destination.url, endpoint_url=destination.endpoint_url)
            self._sink = predlog_writer.ChildSink(settings, self._apply)
        if start:
            self.start()

    # The request path: a sampling decision and an append, nothing else.
    def record(self, rows: Sequence[Any], output: Any, keys: Sequence[Any] | None = None) -> None:
        """Log ``rows`` and the model's raw ``output``. ``keys``: the request rows ground truth joins on, one per row,
        when ``rows`` are not those (an entity model logs each id with the features it read; labels name the id)."""
        try:
            if not self._active and not self._activated():
                return
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return
            count = len(rows)
            with self._lock:
                # Every row the log holds counts (buffered here, or held by the writer until it is written): buffer_rows
                # bounds its memory even while a slow store keeps a write waiting.
                if self._queued + self._held + count > self.capacity:
                    self._drop("buffer_full", count)
                    return
                self._pending.append((time.time(), rows, output, keys))
                self._queued += count
                self.stats.recorded += count
                full = self._queued >= self._part_rows
            if full:
                self._wake.set()
        except Exception:  # noqa: BLE001 - the log never fails a request
            with self._lock:
                self._drop("error", len(rows) if isinstance(rows, Sized) else 0)

    @property
    def _part_rows(self) -> int:
        """Rows that start a write early: a part's worth, or half the buffer when that is smaller."""
        return min(PART_ROWS, max(1, self.capacity // 2))

    def _activated(self) -> bool:
        now = time.monotonic()
        if now - self._active_checked >= 1.0:
            self._active_checked = now
            self._active = self.active_file is None or os.path.exists(self.active_file)
        return self._active

    def _drop(self, reason: str, rows: int) -> None:
        """Rows dropped in this process (the caller holds ``_lock``)."""
        add_counts(self.stats.dropped, {reason: rows})
        self._unreported += rows
        self._count_drop(reason, rows)

    def _count_drop(self, reason: str, rows: int) -> None:
        try:
            self._on_drop(reason, rows)
        except Exception:  # noqa: BLE001, S110 - counting a drop must not fail either
            pass

    def _apply(self, outcome: predlog_writer.Outcome) -> None:
        """What the writer reports: rows it is done with leave the buffer's count; its drops are counted here."""
        with self._lock:
            self._held -= outcome.done
            self.stats.written += outcome.written
            self.stats.parts += outcome.parts
            add_counts(self.stats.dropped, outcome.dropped)
        for reason, rows in outcome.dropped.items():
            self._count_drop(reason, rows)

    def start(self) -> None:
        """Start the writer and the thread that hands it the buffer every CONVERT_S (before serving)."""
        if self._thread is None:
            self._sink.start()
            self._thread = threading.Thread(target=self._run, name="modelkit-predlog", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered and stop the thread and the writer (at exit; bounded by ``timeout``, a few
        seconds more to reap the writer). Rows that could not be handed over in time are counted as dropped
        (``error``), never silently lost."""
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return max(0.1, deadline - time.monotonic())

        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            # The last hand-over in a thread of its own: to a writer that does not read it blocks on a full pipe,
            # and the sink's close below then stops that writer, which ends the blocked write.
            last = threading.Thread(target=self._ship, args=(remaining(),), name="modelkit-predlog-close", daemon=True)
            last.start()
            last.join(remaining())
        self._sink.close(remaining())
        with self._lock:  # what is still here was never handed over (a hand-over held elsewhere, a stuck thread)
            count, self._queued, self._pending = self._queued, 0, []
            if count:
                self._drop("error", count)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(CONVERT_S)
            self._wake.clear()
            self._ship()
            self._sink.tick()

    def flush(self, timeout: float = 30.0) -> int:
        """Hand over everything buffered and have the writer write it now; the number of rows it wrote (0 when the
        writer does not answer within ``timeout``)."""
        deadline = time.monotonic() + timeout
        if not self._ship(max(0.0, timeout)):
            return 0
        return self._sink.flush(max(0.0, deadline - time.monotonic()))

    def _ship(self, timeout: float = -1) -> bool:
        """The buffered requests, as plain dicts, to the writer; False when another hand-over held on past
        ``timeout`` seconds (a writer that does not read). The timeout bounds only that wait: the hand-over itself
        blocks while the writer's pipe is full (``close`` bounds that by stopping the writer).

        Done every CONVERT_S rather than once per flush: thousands of request rows held as Python objects for
        ``flush_s`` would make every full garbage collection of the serving process walk them.
        """
        if not self._ship_lock.acquire(timeout=timeout):
            return False
        try:
            self._ship_held()
        finally:
            self._ship_lock.release()
        return True

    def _ship_held(self) -> None:
        from modelkit.predlog_writer import Outcome, Request

        with self._lock:
            pending, self._pending = self._pending, []
            count, self._queued = self._queued, 0
            self._held += count  # moved from queued to held in one step, so record() never sees them uncounted
            dropped, self._unreported = self._unreported, 0
        if not pending and not dropped:
            return
        requests: list[Request] = []
        failed = 0
        for at, rows, output, keys in pending:
            try:
                requests.append(
                    Request(
                        at=at,
                        rows=[as_dict(row) for row in rows],
                        output=_plain_output(output),
                        keys=None if keys is None else [as_dict(key) for key in keys],
                        encoded=encoded_fields(type(rows[0])) if len(rows) else frozenset(),
                    )
                )
            except Exception:  # noqa: BLE001 - a row that is not a mapping or model: that request is not logged
                failed += len(rows)
        if failed:
            self._apply(Outcome().drop("error", failed))
            dropped += failed
        self._sink.ship(requests, count - failed, dropped)


def _plain_output(output: Any) -> Any:
    """The model's output as a NumPy array where it is array-like (a tensor of any framework): it travels pickled."""
    import numpy as np

    try:
        return np.asarray(output)
    except Exception:  # noqa: BLE001 - not array-like: the writer logs no prediction columns for it
        return None


def from_env(config: ModelConfig, version: str, classes: Sequence[str] = ()) -> PredictionLog | None:
    """The service's log, configured from ``config.monitor`` and the environment; None when logging is off."""
    url = os.environ.get(ENV_URL, "").strip()
    monitor = config.monitor
    if not url or monitor.sample_rate <= 0:
        return None
    # Looked up, not imported: the writer process imports it, the serving process never does.
    if importlib.util.find_spec("pyarrow") is None:
        log.warning("prediction log off: %s is set but pyarrow is not installed in this environment", ENV_URL)
        return None
    from modelkit.config import ENVIRONMENTS

    env = os.environ.get(ENV_NAME, "").strip() or "dev"
    if env not in ("dev", *ENVIRONMENTS):  # it becomes part of every key written: never a path of its own
        log.warning("prediction log off: %s=%r is not dev or one of %s", ENV_NAME, env[:80], ", ".join(ENVIRONMENTS))
        return None
    salt = os.environ.get(ENV_SALT, "")
    sensitive = dict(monitor.sensitive)
    unsalted = sorted(name for name, how in sensitive.items() if how == "hash")
    if unsalted and not salt:
        # A hash without a secret salt is reversible for low-entropy values (an email, a phone number): dropped.
        log.warning("prediction log: %s unset, so %s are dropped, not hashed", ENV_SALT, ", ".join(unsalted))
        sensitive.update(dict.fromkeys(unsalted, "drop"))
    return PredictionLog(
        Destination(url, os.environ.get(ENV_ENDPOINT, "").strip() or None),
        model=config.name,
        env=env,
        version=version,
        classes=classes,
        sample_rate=monitor.sample_rate,
        sensitive=sensitive,
        buffer_rows=monitor.buffer_rows,
        flush_s=monitor.flush_s,
        salt=salt,
        active_file=os.environ.get(ENV_ACTIVE, "").strip() or None,
    )
