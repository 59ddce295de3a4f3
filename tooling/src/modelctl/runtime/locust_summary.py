"""Locust plugin: at exit, write the final aggregated stats to $MODELCTL_LOCUST_SUMMARY as JSON.

Loaded beside the gate's own user (`-f locust_gate.py,locust_summary.py`, a process that imports nothing of the
model's: only then are these numbers a verdict), or beside the model's locustfile in an exploratory run, whose
numbers its listeners can rewrite and which never records a pass. Locust's own CSV is rewritten on a one-second
loop and not again at shutdown, so a short run can end with a stale row; this reads `environment.stats.total`
after the last request.
"""

from __future__ import annotations

import json
import os

from locust import events


@events.quitting.add_listener
def _write_summary(environment, **_kwargs):  # noqa: ANN001, ANN003, ANN202 - locust's listener signature
    path = os.environ.get("MODELCTL_LOCUST_SUMMARY")
    if not path:
        return
    total = environment.stats.total
    requests = total.num_requests
    summary = {
        "requests": requests,
        "failures": total.num_failures,
        "rps": total.total_rps,
        "p50_ms": total.get_response_time_percentile(0.5) if requests else None,
        "p90_ms": total.get_response_time_percentile(0.9) if requests else None,
        "p99_ms": total.get_response_time_percentile(0.99) if requests else None,
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(summary, handle)
