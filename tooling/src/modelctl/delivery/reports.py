"""Where a run's reports go: `reports/<model>/<UTC time>/` (HTML load test, CSVs, summaries, fuzz results)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from modelctl.model import Model


def new_report_dir(model: Model) -> Path:
    """A fresh, empty report folder; create it only once the run is sure to start (nothing empty left behind)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = model.repo.root / "reports" / model.name / stamp
    path.mkdir(parents=True)
    return path
