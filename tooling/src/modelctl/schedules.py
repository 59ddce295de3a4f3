"""Retraining schedules (cron, UTC): which are due now, and whether a workflow's crons cover them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def is_due(schedule: str, at: datetime, window: timedelta) -> bool:
    """Whether `schedule` fired in (at - window, at]: scheduled CI runs start late, so a window, not a minute."""
    from croniter import croniter

    return bool(croniter(schedule, at - window).get_next(datetime) <= at)


def schedule_covered(schedule: str, crons: list[str], window: timedelta, checks: int = 60) -> datetime | None:
    """The first fire time of ``schedule`` that no cron in ``crons`` picks up within ``window``, or None.

    A workflow run at time w retrains what fired in (w - window, w], so each fire time t needs a run
    in [t, t + window).
    """
    from croniter import croniter

    fires = croniter(schedule, datetime(2026, 1, 1, tzinfo=UTC))
    for _ in range(checks):
        fire = fires.get_next(datetime)
        runs = [croniter(cron, fire - timedelta(seconds=1)).get_next(datetime) for cron in crons]
        if not any(fire <= run < fire + window for run in runs):
            return fire
    return None
