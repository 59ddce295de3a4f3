"""Quality once ground truth arrives: labels joined to the prediction log, the live metric against the training one.

Labels come as CSV or Parquet files (``--labels FILE``, or every file uploaded under ``labels/<model>/<env>/`` in the
state store, which the scheduled run reads) with a ``label`` column (the class name, or the true number) and either the
log's ``_row_key`` or the request fields themselves (the key is then computed as the service computed it, from the
fields not marked sensitive). The metric is ``retrain.metric`` when it is one computed here (accuracy for
classification; rmse or mae for regression), else the task's default; the training value is the one recorded with
the model version. Breached when the live value is worse than the training value by more than
``monitor.max_metric_drop``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl.errors import ModelctlError, UsageError
from modelctl.statestore import Store
from modelkit import predlog

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    from modelkit import ModelConfig

LABELS_PREFIX = "labels"

METRICS: dict[str, tuple[str, str]] = {  # name -> (task, direction)
    "accuracy": ("classification", "maximize"),
    "rmse": ("regression", "minimize"),
    "mae": ("regression", "minimize"),
}


class LabelsError(ModelctlError):
    """A labels file or query that cannot be used (names the file and the problem); ``detail``: more, for the
    terminal only (a driver's message may quote the data)."""

    detail = ""


@dataclass(frozen=True)
class Quality:
    metric: str
    live: float
    training: float | None
    breached: bool
    rows: int  # logged rows that found their label
    note: str = ""

    def record(self) -> dict[str, Any]:
        return {"metric": self.metric, "live": self.live, "training": self.training, "breached": self.breached}


def parse_labels(data: bytes, source: str) -> pa.Table:
    """A labels table from the bytes of a Parquet (``.parquet``) or CSV file; LabelsError naming ``source``."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.csv as csv  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    parquet = source.endswith(".parquet")
    try:
        reader = pa.BufferReader(data)
        table = pq.read_table(reader) if parquet else csv.read_csv(reader)
    except (pa.ArrowException, OSError) as exc:
        raise LabelsError(f"{source}: cannot be read as {'Parquet' if parquet else 'CSV'} ({exc})") from exc
    if predlog.TRUTH not in table.column_names:
        raise LabelsError(f"{source}: has no {predlog.TRUTH!r} column (columns: {table.column_names[:10]})")
    return table


def read_labels(path: Path) -> pa.Table:
    if not path.is_file():
        raise UsageError(f"labels file {path} does not exist")
    return parse_labels(path.read_bytes(), str(path))


def stored_labels(
    store: Store, model: str, env: str, log: pa.Table, sensitive: Mapping[str, str], warn: Callable[[str], None]
) -> dict[str, Any]:
    """Ground truth uploaded to ``labels/<model>/<env>/`` in the state store (CSV or Parquet files, any tool), keyed;
    a file that cannot be used is one warning naming it, and the others still count."""
    keyed: dict[str, Any] = {}
    for key in store.list(f"{LABELS_PREFIX}/{model}/{env}/"):
        if not key.endswith((".csv", ".parquet")):
            continue
        blob = store.read(key)
        if blob is None:
            continue
        try:
            keyed.update(keyed_labels(parse_labels(blob.data, store.where(key)), log, sensitive, store.where(key)))
        except LabelsError as exc:
            warn(str(exc))
    return keyed


def keyed_labels(labels: pa.Table, log: pa.Table, sensitive: Mapping[str, str], source: Path | str) -> dict[str, Any]:
    """``{row key: label}`` from a labels table (its ``_row_key``, or the key computed from the request fields)."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    truth = labels.column(predlog.TRUTH).to_pylist()
    if predlog.ROW_KEY in labels.column_names:
        keys = [str(k) for k in labels.column(predlog.ROW_KEY).to_pylist()]
        return dict(zip(keys, truth, strict=True))
    fields = [n for n in labels.column_names if n != predlog.TRUTH]
    logged = [n.removeprefix(predlog.FEATURE) for n in log.column_names if n.startswith(predlog.FEATURE)]
    if not fields or not set(fields) <= set(logged) | set(sensitive):
        raise LabelsError(
            f"{source}: needs a {predlog.ROW_KEY!r} column or the request fields {sorted(set(logged))} beside "
            f"{predlog.TRUTH!r}; it has {labels.column_names[:10]}"
        )
    columns = {}
    for name in fields:
        column = labels.column(name)
        logged_column = predlog.FEATURE + name
        if (
            pa.types.is_integer(column.type)
            and logged_column in log.column_names
            and pa.types.is_floating(log.column(logged_column).type)
        ):
            column = column.cast(pa.float64())  # the service saw the JSON number as a float
        columns[name] = column.to_pylist()
    rows = [{name: columns[name][i] for name in fields} for i in range(labels.num_rows)]
    return {predlog.row_key(row, sensitive): value for row, value in zip(rows, truth, strict=True)}


def sample_keys(rows: list[Mapping[str, Any]], log: pa.Table, sensitive: Mapping[str, str]) -> set[str]:
    """The row keys the service logged for ``rows`` (the model's sample rows: what the post-deploy watch sends).

    A whole number in a field the log holds as a float is the float the service saw (JSON 5 is 5.0 to a float
    field), as :func:`keyed_labels` does for labels files."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    floats = {
        name.removeprefix(predlog.FEATURE)
        for name in log.column_names
        if name.startswith(predlog.FEATURE) and pa.types.is_floating(log.schema.field(name).type)
    }
    keys = set()
    for row in rows:
        seen = {
            k: float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v for k, v in row.items()
        }
        keys.add(predlog.row_key(seen, sensitive))
    return keys


def metric_for(config: ModelConfig) -> str:
    wanted = config.retrain.metric
    if wanted in METRICS and METRICS[wanted][0] == config.task:
        return wanted
    return "accuracy" if config.task == "classification" else "rmse"


def compute(metric: str, predicted: list[Any], truth: list[Any]) -> float:
    if metric == "accuracy":
        return sum(str(p) == str(t) for p, t in zip(predicted, truth, strict=True)) / len(truth)
    errors = [float(p) - float(t) for p, t in zip(predicted, truth, strict=True)]
    if metric == "rmse":
        return math.sqrt(sum(e * e for e in errors) / len(errors))
    return sum(abs(e) for e in errors) / len(errors)


def judge(
    config: ModelConfig,
    log: pa.Table,
    labels: dict[str, Any],
    training: dict[str, float],
) -> Quality | None:
    """The live metric over the logged rows that have a label; None when fewer than ``monitor.min_labels`` do."""
    metric = metric_for(config)
    column = predlog.LABEL if config.task == "classification" else predlog.VALUE
    if column not in log.column_names or predlog.ROW_KEY not in log.column_names:
        return None
    predicted, truth = [], []
    unusable = 0  # a NaN or infinite true value would make the metric NaN, which never breaches: left out, counted
    for key, value in zip(log.column(predlog.ROW_KEY).to_pylist(), log.column(column).to_pylist(), strict=True):
        if key in labels and value is not None and labels[key] is not None:
            if isinstance(labels[key], float) and not math.isfinite(labels[key]):
                unusable += 1
                continue
            predicted.append(value)
            truth.append(labels[key])
    note = f"{unusable} labels were NaN or infinite and left out" if unusable else ""
    if len(truth) < config.monitor.min_labels:
        if not truth and labels:
            note = (
                f"none of the {log.num_rows} logged rows matched any of the {len(labels)} labels: they must carry the "
                "request fields as the service logged them (or its _row_key)" + (f"; {note}" if note else "")
            )
        return Quality(metric, math.nan, training.get(metric), False, len(truth), note or "too few labelled rows")
    try:
        live = compute(metric, predicted, truth)
    except (TypeError, ValueError) as exc:
        raise LabelsError(f"the labels are not {metric} values for {config.name}'s predictions ({exc})") from exc
    trained = training.get(metric)
    breached = False
    if trained is not None:
        drop = config.monitor.max_metric_drop
        breached = live < trained - drop if METRICS[metric][1] == "maximize" else live > trained + drop
    return Quality(metric, live, trained, breached, len(truth), note)
