"""``--since``: a UTC time (ISO 8601) or a duration back from now (``90m``, ``24h``, ``7d``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from modelctl.errors import UsageError

_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def since(value: str, now: datetime | None = None) -> datetime:
    """The start of the window ``value`` names (UsageError naming it when it is neither form)."""
    now = now or datetime.now(UTC)
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {value!r} is neither a duration (90m, 24h, 7d) nor an ISO time (2026-12-01T06:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
