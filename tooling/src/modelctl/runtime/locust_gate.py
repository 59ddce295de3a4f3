"""The load-test gate's own Locust user: POST /predict with requests made from plain JSON the platform wrote.

    python -I -m locust -f locust_gate.py,locust_summary.py ...   (from an empty folder, never the model's)

The model supplies data only: `$MODELCTL_LOADTEST_PAYLOAD` holds ``{"rows": [...], "bounds": {field:
{"integer", "minimum", "maximum", "exclusive"}}}`` (rows from its ``loadtest.payload``, bounds from its request
schema, validated by modelctl). Nothing of the model's folder is importable here, so no listener but the
platform's sees the stats the verdict is made of (issue #20, item 3: a model's locustfile could rewrite them).
The requests and response checks are those of `modelkit.loadtest.ModelUser`.
"""

from __future__ import annotations

import json
import math
import os
from functools import cache

# The module, not its classes: Locust runs every User class it finds in this file's namespace.
from modelkit import loadtest
from modelkit.samples import Bounds, RequestMaker


def _limit(value: float | None, default: float) -> float:
    return default if value is None else float(value)


@cache
def requests_from_payload() -> RequestMaker:
    with open(os.environ["MODELCTL_LOADTEST_PAYLOAD"], encoding="utf-8") as handle:
        payload = json.load(handle)
    bounds = {
        name: Bounds(
            bool(bound["integer"]),
            _limit(bound["minimum"], -math.inf),
            _limit(bound["maximum"], math.inf),
            bool(bound["exclusive"]),
        )
        for name, bound in payload["bounds"].items()
    }
    return RequestMaker(payload["rows"], bounds, max_rows=loadtest.MAX_ROWS_PER_REQUEST)


class GateUser(loadtest.PredictUser):
    def make_requests(self) -> RequestMaker:
        return requests_from_payload()
