"""The prediction log's writer: turns logged requests into Parquet parts in the store (see ``modelkit.predlog``).

A served model's worker runs it as a child process (``python -m modelkit.predlog_writer``), so the worker never
imports pyarrow and spends no time of its own on columns: with pyarrow in ``sys.modules``, every scikit-learn
``predict`` pays for dataframe checks (narwhals looks for a pyarrow table on each input), measured at 29 % of the
tiny model's call. The same :class:`PartWriter` also runs in the worker's thread for callers that ask for it
(``PredictionLog(..., in_process=True)``).

The child's protocol, private to this module and ``modelkit.predlog``: frames of a 4-byte big-endian length and a
pickle on stdin (the first one the settings, salt included, so it never appears in a process listing; then
``("batch", [Request, ...], dropped)`` and ``("flush", token)``); one JSON object per line on stdout reporting
what became of the rows (:class:`Outcome`). The child stops when its stdin closes (the worker exited or died),
after writing what it holds; SIGINT is the worker's to handle, and SIGTERM gives it ``STOP_GRACE_S`` to finish.
It runs at a lower scheduling priority than the worker (``WRITER_NICENESS``, or ``MODELKIT_PREDLOG_NICE``): on a
busy machine serving gets the CPU first, the buffer absorbs the writer's lag, and what does not fit is dropped and
counted. On a machine kept saturated by other work the writer is starved (seen: 30 s to import pyarrow beside eight
busy test processes); ``MODELKIT_PREDLOG_NICE=0`` puts it level with the worker where the log matters as much.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple, Protocol

from modelkit.predlog import (
    DROPPED_META,
    ENV_NICE,
    PART_ROWS,
    ROW_KEY,
    TS,
    VERSION,
    Destination,
    add_counts,
    parquet_bytes,
    partition,
    prediction_values,
    row_key,
    row_values,
    to_table,
)

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

log = logging.getLogger("modelkit.predlog")

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 31  # bytes: a frame announcing more is a broken stream, not a batch
WRITER_NICENESS = 10  # the writer process's scheduling priority below the worker's (os.nice)
STOP_GRACE_S = 5.0  # after SIGTERM: how long the child waits for the worker's last rows


class Request(NamedTuple):
    """One logged call: when, its rows and key rows as plain dicts, the model's output, its base64 fields.

    A named tuple, not a dataclass: it crosses the pipe pickled, where a tuple costs the worker least."""

    at: float
    rows: list[dict[str, Any]]
    output: Any
    keys: list[dict[str, Any]] | None = None
    encoded: frozenset[str] = frozenset()


@dataclass
class Outcome:
    """What became of rows the writer held: ``done`` of them are finished with (written or dropped)."""

    done: int = 0
    written: int = 0
    parts: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    flushed: int | None = None  # the token of a flush request this answers

    def add(self, other: Outcome) -> Outcome:
        self.done += other.done
        self.written += other.written
        self.parts += other.parts
        add_counts(self.dropped, other.dropped)
        return self

    def drop(self, reason: str, rows: int) -> Outcome:
        self.done += rows
        add_counts(self.dropped, {reason: rows})
        return self


class PartWriter:
    """Logged requests -> Arrow tables (per day) -> one Parquet part per day and write, at most PART_ROWS rows each.

    Not thread-safe: one caller (the child's loop, or the worker's log thread) drives it.
    """

    def __init__(
        self,
        destination: Destination,
        *,
        model: str,
        env: str,
        version: str,
        classes: Sequence[str] = (),
        sensitive: Mapping[str, str] | None = None,
        salt: str = "",
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.destination = destination
        self.model, self.env, self.version = model, env, version
        self.classes = tuple(classes)
        self.sensitive = dict(sensitive or {})
        self.salt = salt
        self.held = 0  # rows converted, not yet written
        self._chunks: dict[str, list[pa.Table]] = {}
        self._unreported = 0  # dropped rows (here or in the worker) not yet in a part's metadata
        self._seq = 0
        self._schema: Any = None  # the columns of the last part written (for a part that only reports drops)
        self._warn = warn if warn is not None else _warner()

    def note_dropped(self, rows: int) -> None:
        """Rows dropped before they reached the writer: the next part's ``modelkit.dropped`` reports them."""
        self._unreported += rows

    def add(self, requests: Sequence[Request]) -> Outcome:
        """Convert logged requests to columns (held until :meth:`write`); rows that cannot be are dropped."""
        count = sum(len(request.rows) for request in requests)
        try:
            for day, records in self._records(requests).items():
                self._chunks.setdefault(day, []).append(to_table(records))
        except Exception as exc:  # noqa: BLE001 - rows that cannot be converted are dropped, counted
            self._unreported += count
            self._warn(f"{count} rows could not be converted ({type(exc).__name__}: {exc})")
            return Outcome().drop("error", count)
        self.held += count
        return Outcome()

    def write(self) -> Outcome:
        """Write every held row: one part per day (of at most PART_ROWS rows)."""
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

        chunks, self._chunks = self._chunks, {}
        self.held = 0
        outcome = Outcome()
        for day, tables in sorted(chunks.items()):
            try:
                table = pa.concat_tables(tables, promote_options="permissive")
            except pa.ArrowException as exc:  # a field changed type between requests: a part per chunk instead
                self._warn(f"log chunks of {day} do not merge ({exc}); written one part each")
                for one in tables:
                    outcome.add(self._write(day, one))
                continue
            for start in range(0, table.num_rows, PART_ROWS):
                outcome.add(self._write(day, table.slice(start, PART_ROWS)))
        return outcome

    def _records(self, requests: Sequence[Request]) -> dict[str, list[dict[str, Any]]]:
        by_day: dict[str, list[dict[str, Any]]] = {}
        days: dict[int, str] = {}
        all_predictions = batch_prediction_values(requests, self.classes)
        for request, predictions in zip(requests, all_predictions, strict=True):
            stamp = datetime.fromtimestamp(request.at, UTC)
            number = int(request.at // 86400)
            name = days.get(number)
            if name is None:
                name = days[number] = stamp.strftime("%Y-%m-%d")
            day = by_day.setdefault(name, [])
            keys = request.keys if request.keys is not None else request.rows
            for values, keyed, predicted in zip(request.rows, keys, predictions, strict=True):
                record: dict[str, Any] = {TS: stamp, VERSION: self.version, ROW_KEY: row_key(keyed, self.sensitive)}
                record.update(row_values(values, self.sensitive, self.salt, request.encoded))
                record.update(predicted)
                day.append(record)
        return by_day

    def _part_name(self) -> str:
        self._seq += 1
        return f"{datetime.now(UTC):%H%M%S}-{os.getpid()}-{self._seq:06d}-{uuid.uuid4().hex[:6]}.parquet"

    def _write(self, day: str, table: pa.Table) -> Outcome:
        key = f"{partition(self.model, self.env, day)}/{self._part_name()}"
        dropped = self._unreported
        rows = int(table.num_rows)
        try:
            data = parquet_bytes(table.replace_schema_metadata({DROPPED_META: str(dropped).encode()}))
            self.destination.put(key, data)
        except Exception as exc:  # noqa: BLE001 - a slow or absent store costs rows, never a request
            self._unreported += rows
            self._warn(f"{rows} rows not written to {self.destination.url}/{key} ({type(exc).__name__}: {exc})")
            return Outcome().drop("store", rows)
        self._unreported -= dropped
        self._schema = table.schema
        return Outcome(done=rows, written=rows, parts=1)

    def write_drops(self, after: Outcome) -> Outcome:
        """At the end, after the last ``write`` (``after``): drops reported after the last part go into a part of no
        rows, so no count leaves with the process. Not tried when that write just failed on the store (it would wait
        on a store that is down, past the close's timeout); then, or with no part written before (no columns known),
        the count is only in a warning, which is logged whatever the once-a-minute limit."""
        rows = self._unreported
        if rows <= 0 or self.held:
            return Outcome()
        if "store" in after.dropped or self._schema is None:
            why = "the store failed" if self._schema is not None else "no part was written"
            log.warning("prediction log: %d dropped rows are in no part's metadata (%s)", rows, why)
            return Outcome()
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        key = f"{partition(self.model, self.env, day)}/{self._part_name()}"
        try:
            data = parquet_bytes(self._schema.empty_table().replace_schema_metadata({DROPPED_META: str(rows).encode()}))
            self.destination.put(key, data)
        except Exception as exc:  # noqa: BLE001 - the process is ending: the count is in the warning instead
            log.warning(
                "prediction log: %d dropped rows are in no part's metadata (%s: %s)", rows, type(exc).__name__, exc
            )
            return Outcome()
        self._unreported = 0
        return Outcome(parts=1)


def batch_prediction_values(requests: Sequence[Request], classes: Sequence[str]) -> list[list[dict[str, Any]]]:
    """:func:`modelkit.predlog.prediction_values` of each request, in one call when their outputs stack (the same
    dtype and shape but for the rows: one array operation for the batch instead of one per request)."""
    import numpy as np

    outputs = [request.output for request in requests]
    counts = [len(request.rows) for request in requests]
    if outputs and all(isinstance(o, np.ndarray) for o in outputs):
        first = outputs[0]
        if first.dtype != object and all(
            o.dtype == first.dtype and o.ndim == first.ndim >= 1 and o.shape[1:] == first.shape[1:] and len(o) == n
            for o, n in zip(outputs, counts, strict=True)
        ):
            joined = prediction_values(np.concatenate(outputs), classes, sum(counts))
            split: list[list[dict[str, Any]]] = []
            start = 0
            for count in counts:
                split.append(joined[start : start + count])
                start += count
            return split
    return [prediction_values(o, classes, n) for o, n in zip(outputs, counts, strict=True)]


def writer_niceness(value: str | None) -> int:
    """The niceness the writer adds to the worker's: ``MODELKIT_PREDLOG_NICE`` (0-19), else WRITER_NICENESS."""
    if value is None or not value.strip():
        return WRITER_NICENESS
    try:
        nice = int(value)
    except ValueError:
        nice = -1
    if not 0 <= nice <= 19:
        log.warning("prediction log: %s=%r is not 0-19; the writer runs at +%d", ENV_NICE, value[:20], WRITER_NICENESS)
        return WRITER_NICENESS
    return nice


def _warner(every_s: float = 60.0) -> Callable[[str], None]:
    """A warning line at most once a minute (a store that is down would otherwise fill the server's log)."""
    last = [0.0]

    def warn(message: str) -> None:
        now = time.monotonic()
        if last[0] == 0.0 or now - last[0] >= every_s:
            last[0] = now
            log.warning("prediction log: %s", message)

    return warn


# --- the frames between the worker and the child ---------------------------------------------------------------


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def send_frame(stream: IO[bytes], message: Any) -> None:
    stream.write(frame(message))
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream (also for a stream cut off inside a frame)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size >= MAX_FRAME:
        raise ValueError(f"a frame of {size} bytes: the stream is broken")
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - written by this process's parent, over its own pipe


def report(stream: IO[str], outcome: Outcome) -> None:
    stream.write(json.dumps(asdict(outcome)) + "\n")
    stream.flush()


def parse_report(line: str) -> Outcome:
    raw = json.loads(line)
    return Outcome(
        done=int(raw["done"]),
        written=int(raw["written"]),
        parts=int(raw["parts"]),
        dropped={str(k): int(v) for k, v in raw["dropped"].items()},
        flushed=None if raw.get("flushed") is None else int(raw["flushed"]),
    )


# --- where the worker hands its rows: a thread of its own, or the child process ---------------------------------

WRITER_SETTINGS = ("model", "env", "version", "classes", "sensitive", "salt")
RESTART_S = 10.0  # a writer that died is started again at most this often; meanwhile its rows are dropped
SPAWN_CODE = "import sys; sys.path.append(sys.argv[1]); from modelkit.predlog_writer import main; sys.exit(main())"


class Sink(Protocol):
    def start(self) -> None: ...
    def ship(self, requests: Sequence[Request], rows: int, dropped: int) -> None: ...
    def tick(self) -> None: ...
    def flush(self, timeout: float) -> int: ...
    def close(self, timeout: float) -> None: ...


class ThreadSink:
    """The writer in the worker's own log thread (``PredictionLog(in_process=True)``)."""

    def __init__(self, writer: PartWriter, apply: Callable[[Outcome], None], flush_s: float, part_rows: int) -> None:
        self.writer = writer
        self._apply = apply
        self._flush_s = flush_s
        self._part_rows = part_rows
        self._lock = threading.Lock()
        self._last_write = time.monotonic()
        self._closed = False

    def start(self) -> None:
        pass  # nothing to start: the log's thread drives the writer

    def ship(self, requests: Sequence[Request], rows: int, dropped: int) -> None:
        with self._lock:
            self.writer.note_dropped(dropped)
            outcome = self.writer.add(requests)
            if self.writer.held >= self._part_rows:
                outcome.add(self._write())
        self._apply(outcome)

    def tick(self) -> None:
        if time.monotonic() - self._last_write >= self._flush_s:
            with self._lock:
                outcome = self._write()
            self._apply(outcome)

    def flush(self, timeout: float) -> int:
        with self._lock:
            outcome = self._write()
        self._apply(outcome)
        return outcome.written

    def close(self, timeout: float) -> None:
        with self._lock:
            if self._closed and not self.writer.held:
                return  # closed twice (at shutdown and at exit): the end's drops and warnings happen once
            self._closed = True
            last = self._write()
            outcome = Outcome().add(last).add(self.writer.write_drops(last))
        self._apply(outcome)

    def _write(self) -> Outcome:
        self._last_write = time.monotonic()
        return self.writer.write()


class ChildSink:
    """The writer as a child process: batches go down its stdin, what became of them comes back on its stdout.

    ``buffer_rows`` holds across both: rows sent count as held (``apply`` gets them back as ``done``) until the child
    reports them written or dropped. A child that dies costs the rows it held (dropped, reason ``error``) and is
    started again with the next batch, at most every RESTART_S. A stopped or hung child blocks only the log's
    thread (the pipe fills); the worker's buffer then fills and drops, and requests never wait.
    """

    def __init__(self, settings: Mapping[str, Any], apply: Callable[[Outcome], None]) -> None:
        self.settings = dict(settings)
        self._apply = apply
        self._lock = threading.Lock()  # _proc, _outstanding, _carry, the flush answers
        self._send_lock = threading.Lock()  # one frame at a time on the pipe
        self._answered = threading.Condition(self._lock)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._outstanding = 0  # rows sent to the current child it has not reported done
        self._carry = 0  # dropped rows not yet handed to a child (for its parts' metadata)
        self._started_at = -RESTART_S
        self._flushes = 0
        self._answers: dict[int, int] = {}  # flush token -> rows that flush wrote
        self._closing = False
        self._warn = _warner()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    def start(self) -> None:
        with self._lock:
            if self._proc is None:
                self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        """Start a child (the caller holds ``_lock``); None when it cannot be started now."""
        if self._closing or time.monotonic() - self._started_at < RESTART_S:
            return None
        self._started_at = time.monotonic()
        package_root = str(Path(__file__).resolve().parents[1])  # where modelkit is, whatever sys.path says
        try:
            proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed code
                [sys.executable, "-c", SPAWN_CODE, package_root],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
            assert proc.stdin is not None  # noqa: S101 - PIPE was asked for
            send_frame(proc.stdin, self.settings)
        except (OSError, ValueError) as exc:
            self._warn(f"the writer process could not be started ({type(exc).__name__}: {exc}); rows are dropped")
            return None
        self._proc = proc
        self._reader = threading.Thread(target=self._read, args=(proc,), name="modelkit-predlog-reports", daemon=True)
        self._reader.start()
        return proc

    def ship(self, requests: Sequence[Request], rows: int, dropped: int) -> None:
        with self._lock:
            proc = self._proc if self._proc is not None else self._spawn()
            if proc is None:
                self._carry += dropped + rows
            else:
                self._outstanding += rows
                dropped, self._carry = dropped + self._carry, 0
        if proc is None:
            self._apply(Outcome().drop("error", rows))
            return
        if not (requests or dropped):
            return
        try:
            data = frame(("batch", [tuple(request) for request in requests], dropped))  # plain tuples pickle fastest
        except Exception as exc:  # noqa: BLE001 - a value that cannot be pickled: this batch is not logged
            with self._lock:
                if self._proc is proc:
                    self._outstanding -= rows
                self._carry += dropped + rows
            self._warn(f"{rows} rows could not be handed to the writer ({type(exc).__name__}: {exc})")
            self._apply(Outcome().drop("error", rows))
            return
        self._send(proc, data)

    def tick(self) -> None:
        pass  # the child writes every flush_s by itself

    def flush(self, timeout: float) -> int:
        """Ask the child to write now and wait (up to ``timeout``) for its answer: the rows it wrote."""
        with self._lock:
            proc = self._proc
            self._flushes += 1
            token = self._flushes
        if proc is None:
            return 0
        self._send(proc, frame(("flush", token)))
        deadline = time.monotonic() + timeout
        with self._answered:
            while token not in self._answers and self._proc is proc and time.monotonic() < deadline:
                self._answered.wait(max(0.0, deadline - time.monotonic()))
            return self._answers.pop(token, 0)

    def close(self, timeout: float) -> None:
        """End the child's input: it writes what it holds, reports and exits; killed after ``timeout``."""
        with self._lock:
            self._closing = True
            proc, reader = self._proc, self._reader
        if proc is None or reader is None:
            return
        deadline = time.monotonic() + timeout
        # The log's thread may be stuck writing to a child that does not read (stopped, hung): then it is killed.
        if self._send_lock.acquire(timeout=timeout):
            try:
                assert proc.stdin is not None  # noqa: S101 - PIPE was asked for
                proc.stdin.close()
            except OSError:
                pass
            finally:
                self._send_lock.release()
            reader.join(max(0.0, deadline - time.monotonic()))  # it counts the child's last report, then its end
        if reader.is_alive():
            self._warn(f"the writer did not finish in {timeout:.0f} s; stopped, and what it held is lost")
            proc.kill()
            reader.join(5)
        try:
            proc.wait(5)  # reaped before close() returns, whichever thread saw it end
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, proc: subprocess.Popen[bytes], data: bytes) -> None:
        try:
            with self._send_lock:
                assert proc.stdin is not None  # noqa: S101 - PIPE was asked for
                proc.stdin.write(data)
                proc.stdin.flush()
        except (OSError, ValueError):  # the pipe broke or was closed: the child is gone
            self._ended(proc)

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        """The child's reports, until its stdout closes (it finished, or died)."""
        assert proc.stdout is not None  # noqa: S101 - PIPE was asked for
        with proc.stdout:
            for line in proc.stdout:
                try:
                    outcome = parse_report(line.decode())
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue  # not a report: nothing to count
                with self._lock:
                    if self._proc is not proc:
                        continue
                    self._outstanding -= outcome.done
                    if outcome.flushed is not None:
                        self._answers[outcome.flushed] = outcome.written
                        self._answered.notify_all()
                self._apply(outcome)
        self._ended(proc)

    def _ended(self, proc: subprocess.Popen[bytes]) -> None:
        """The child is gone (or its pipe broke): the rows it held are dropped, once."""
        with self._lock:
            if self._proc is not proc:
                return
            self._proc = None
            lost, self._outstanding = self._outstanding, 0
            self._carry += lost
            self._answered.notify_all()
            closing = self._closing
            if lost:  # counted before the lock is let go: whoever saw the child end first, close() sees the count
                self._apply(Outcome().drop("error", lost))
        try:
            code = proc.wait(2)  # a child whose output ended is exiting
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        with self._send_lock:  # its input pipe (a write to a child that is gone fails fast, releasing the lock)
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass
        if not closing or lost:
            self._warn(f"the writer process exited (code {code}) holding {lost} rows, which are lost")


# --- the child process -----------------------------------------------------------------------------------------


def main() -> int:
    """The child's loop: read frames (a thread), convert each batch, write every ``flush_s`` or a part's worth."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Background work: where it competes with serving for a CPU, serving wins, and the bounded buffer absorbs the lag.
    os.nice(writer_niceness(os.environ.get(ENV_NICE)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal reaches the whole group: the worker decides
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopping.set())
    stdin, stdout = sys.stdin.buffer, sys.stdout
    settings = read_frame(stdin)
    if not isinstance(settings, dict):
        return 2
    writer = PartWriter(
        Destination(settings["url"], settings.get("endpoint_url")),
        model=settings["model"],
        env=settings["env"],
        version=settings["version"],
        classes=settings.get("classes", ()),
        sensitive=settings.get("sensitive"),
        salt=settings.get("salt", ""),
    )
    flush_s = float(settings.get("flush_s", 30.0))
    part_rows = int(settings.get("part_rows", PART_ROWS))
    inbox: queue.Queue[Any] = queue.Queue()

    def read_all() -> None:
        try:
            while (message := read_frame(stdin)) is not None:
                inbox.put(message)
        except Exception as exc:  # noqa: BLE001 - a broken stream ends the child like a closed one
            log.warning("prediction log: the writer's input is broken (%s: %s)", type(exc).__name__, exc)
        inbox.put(None)

    threading.Thread(target=read_all, name="predlog-reader", daemon=True).start()
    import pyarrow  # type: ignore[import-untyped, unused-ignore]  # noqa: F401 - loaded while nothing waits

    last_write = time.monotonic()
    stop_at: float | None = None
    while True:
        if stopping.is_set() and stop_at is None:
            stop_at = time.monotonic() + STOP_GRACE_S
        wait = max(0.0, last_write + flush_s - time.monotonic())
        if stop_at is not None:
            wait = min(wait, max(0.0, stop_at - time.monotonic()))
        try:
            message = inbox.get(timeout=min(wait, 0.5) if wait > 0 else 0.0)
        except queue.Empty:
            message = ()
        if message is None or (stop_at is not None and time.monotonic() >= stop_at):
            final = Outcome()
            while message is not None:  # what was read before the end: nothing received is left behind
                if message and message[0] == "batch":
                    writer.note_dropped(int(message[2]))
                    final.add(writer.add([Request(*fields) for fields in message[1]]))
                try:
                    message = inbox.get_nowait()
                except queue.Empty:
                    break
            last = writer.write()
            report(stdout, final.add(last).add(writer.write_drops(last)))
            return 0
        outcome = Outcome()
        if message and message[0] == "batch":
            _, requests, dropped = message
            writer.note_dropped(int(dropped))
            outcome.add(writer.add([Request(*fields) for fields in requests]))
        if (message and message[0] == "flush") or writer.held >= part_rows or time.monotonic() - last_write >= flush_s:
            outcome.add(writer.write())
            last_write = time.monotonic()
            if message and message[0] == "flush":
                outcome.flushed = int(message[1])
        if outcome.done or outcome.flushed is not None:
            report(stdout, outcome)


if __name__ == "__main__":
    sys.exit(main())
