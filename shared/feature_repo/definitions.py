"""The entities and feature views of the shared feature repository (applied by `modelkit.features.prepare`).

``definitions(data)`` builds them for the data folder that holds the offline sources (generate.py writes them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Float64, Int64
from feast.value_type import ValueType

CUSTOMER = "customer"
CUSTOMER_STATS = "customer_stats"
STATS_FILE = "customer_stats.parquet"
# A snapshot older than this is not joined (training) and not materialized (serving). Wide: the example's data has
# fixed dates (generate.py) and must stay usable for a while.
TTL = timedelta(days=730)


def definitions(data: Path) -> list[Any]:
    customer = Entity(
        name=CUSTOMER, join_keys=["customer_id"], value_type=ValueType.INT64, description="a customer, by id"
    )
    source = FileSource(
        name="customer_stats_source",
        path=str((data / STATS_FILE).resolve()),  # generate.py writes it
        timestamp_field="event_timestamp",
    )
    stats = FeatureView(
        name=CUSTOMER_STATS,
        entities=[customer],
        ttl=TTL,
        schema=[
            Field(name="tenure_months", dtype=Int64),
            Field(name="monthly_spend", dtype=Float64),
            Field(name="support_tickets_30d", dtype=Int64),
            Field(name="logins_30d", dtype=Int64),
        ],
        source=source,
        online=True,
        description="weekly activity of every customer",
    )
    return [customer, stats]
