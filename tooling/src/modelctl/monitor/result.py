"""What one monitor run found, and the JSON record of it that the state store keeps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelctl.errors import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE
from modelctl.monitor.drift import ColumnDrift, finite
from modelctl.monitor.quality import Quality

RECORD_PREFIX = "monitor"


@dataclass
class Result:
    model: str
    env: str
    at: datetime
    since: datetime
    version: str | None
    rows: int
    min_rows: int
    columns: list[ColumnDrift] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    dropped: int = 0
    other_versions: dict[str, int] = field(default_factory=dict)
    synthetic: int = 0  # rows left out: the post-deploy watch's smoke load
    drifted: bool = False
    share_drifted: float = 0.0
    quality: Quality | None = None

    @property
    def enough(self) -> bool:
        return self.rows >= self.min_rows

    @property
    def breached(self) -> bool:
        return self.quality is not None and self.quality.breached

    @property
    def compared(self) -> bool:
        """Whether anything was judged: a version, and at least one column compared with its reference."""
        return self.version is not None and bool(self.columns)

    @property
    def verdict(self) -> str:
        if not self.enough:
            return "no traffic" if self.rows == 0 else "too few rows"
        if not self.compared:
            return "nothing compared"
        parts = [p for p, on in (("drift", self.drifted), ("quality breached", self.breached)) if on]
        return ", ".join(parts) if parts else "ok"

    @property
    def exit_code(self) -> int:
        if not self.enough:
            return EXIT_USAGE
        if not self.compared:  # rows, but no version or no column to judge: never "ok"
            return EXIT_ERROR
        return EXIT_REFUSED if self.drifted or self.breached else EXIT_OK

    def rows_line(self) -> str:
        since = self.since.strftime("%Y-%m-%dT%H:%M:%SZ")
        version = f" (version {self.version})" if self.version else ""
        text = f"{self.rows} logged rows of {self.model} in {self.env}{version} since {since}"
        if not self.enough:
            text += f"; monitor.min_rows needs {self.min_rows}"
        return text

    def record(self) -> dict[str, Any]:
        """The JSON record at ``monitor/<model>/<env>/<timestamp>.json`` (a dashboard reads these)."""
        quality = None
        if self.quality is not None and not math.isnan(self.quality.live):
            quality = self.quality.record()
        return {
            "model": self.model,
            "env": self.env,
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "since": self.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "version": self.version,
            "rows": self.rows,
            "drifted": self.drifted,
            "share_drifted": round(self.share_drifted, 6),
            "features": [
                {
                    "name": c.label,
                    "role": c.role,
                    "test": c.test,
                    "statistic": finite(c.statistic),
                    "p_value": finite(c.p_value),
                    "drifted": c.drifted,
                }
                for c in self.columns
            ],
            "quality": quality,
            "verdict": self.verdict,
            "problems": self.problems,
            "dropped_rows": self.dropped,
            "smoke_rows": self.synthetic,
        }

    def record_key(self) -> str:
        return f"{RECORD_PREFIX}/{self.model}/{self.env}/{self.at.strftime('%Y%m%dT%H%M%S%fZ')}.json"
