"""The example's offline store: weekly snapshots of every customer's activity and churn labels, as Parquet.

Deterministic (a seeded generator, fixed dates) and made from nothing downloaded: `modelkit.features.prepare` runs
``generate(data)`` when the files are missing. A real repository points its sources at the warehouse instead.

A label is drawn from the customer's features as they were at the label's time, so a training frame that joined a
later snapshot (not point-in-time correct) would learn from the future; `modelkit.features` tests check the join.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 21
FIRST_ID = 1000
CUSTOMERS = 500  # ids FIRST_ID .. FIRST_ID + CUSTOMERS - 1, every one of them in the store
WEEKS = 12
LAST_SNAPSHOT = datetime(2026, 11, 1, tzinfo=UTC)
STATS = "customer_stats.parquet"
LABELS = "customer_labels.parquet"
FILES = (STATS, LABELS)


def snapshot_times() -> list[datetime]:
    return [LAST_SNAPSHOT - timedelta(weeks=WEEKS - 1 - week) for week in range(WEEKS)]


def churn_probability(tenure_months: int, monthly_spend: float, support_tickets_30d: int, logins_30d: int) -> float:
    score = 2.0 - 0.13 * tenure_months + 0.75 * support_tickets_30d - 0.2 * logins_30d + 0.006 * monthly_spend
    return 1.0 / (1.0 + math.exp(-score))


def generate(data: Path) -> list[Path]:
    """Write the two Parquet files into ``data``; return their paths."""
    rng = random.Random(SEED)
    times = snapshot_times()
    names = ("customer_id", "event_timestamp", "tenure_months", "monthly_spend", "support_tickets_30d", "logins_30d")
    stats: dict[str, list[object]] = {name: [] for name in names}
    labels: dict[str, list[object]] = {"customer_id": [], "event_timestamp": [], "churned": []}
    for customer_id in range(FIRST_ID, FIRST_ID + CUSTOMERS):
        tenure = rng.randint(0, 60)
        spend = round(rng.uniform(10.0, 200.0), 2)
        history = []
        for week, time in enumerate(times):
            # Activity drifts week to week: the snapshot a label is joined with matters.
            tickets = max(0, min(12, int(rng.gauss(2.0, 2.0))))
            logins = max(0, int(rng.gauss(15.0, 8.0)))
            spend = round(max(5.0, spend + rng.uniform(-15.0, 15.0)), 2)
            row = (customer_id, time, tenure + week // 4, spend, tickets, logins)
            history.append(row)
            for name, value in zip(stats, row, strict=True):
                stats[name].append(value)
        for _ in range(2):  # two labels per customer, each between two snapshots
            week = rng.randrange(WEEKS)
            time = times[week] + timedelta(days=rng.randint(1, 6))
            _, _, tenure_now, spend_now, tickets_now, logins_now = history[week]
            churned = rng.random() < churn_probability(tenure_now, spend_now, tickets_now, logins_now)
            labels["customer_id"].append(customer_id)
            labels["event_timestamp"].append(time)
            labels["churned"].append(int(churned))
    data.mkdir(parents=True, exist_ok=True)
    timestamp = pa.timestamp("us", tz="UTC")
    stats_schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("event_timestamp", timestamp),
            ("tenure_months", pa.int64()),
            ("monthly_spend", pa.float64()),
            ("support_tickets_30d", pa.int64()),
            ("logins_30d", pa.int64()),
        ]
    )
    labels_schema = pa.schema([("customer_id", pa.int64()), ("event_timestamp", timestamp), ("churned", pa.int64())])
    written = []
    for name, columns, schema in ((STATS, stats, stats_schema), (LABELS, labels, labels_schema)):
        path = data / name
        partial = path.with_suffix(".partial")
        pq.write_table(pa.table(columns, schema=schema), partial)
        partial.replace(path)  # never a half-written source
        written.append(path)
    return written
