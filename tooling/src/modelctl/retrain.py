"""Champion/challenger decisions, schedules, and the GitHub dispatch that promotes in CI."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from modelctl.errors import ModelctlError
from modelkit import ModelConfig


class DispatchError(ModelctlError):
    pass


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    candidate: float
    champion: float | None


def decide(config: ModelConfig, candidate: dict[str, float], champion: dict[str, float] | None) -> Decision:
    """Promote only when the candidate beats the champion by `retrain.min_improvement` on `retrain.metric`."""
    rule = config.retrain
    if rule.metric not in candidate:
        raise ModelctlError(
            f"retrain.metric {rule.metric!r} is not among the metrics train.evaluate() returns: {sorted(candidate)}"
        )
    score = candidate[rule.metric]
    if champion is None:
        return Decision(True, f"no live champion: candidate {rule.metric}={score:.4f}", score, None)
    best = champion[rule.metric]
    gain = score - best if rule.direction == "maximize" else best - score
    verdict = "better" if gain >= rule.min_improvement else "not better"
    reason = (
        f"candidate {rule.metric}={score:.4f} vs champion {best:.4f} ({rule.direction}): {verdict} by "
        f"{gain:+.4f}, needs {rule.min_improvement:+.4f}"
    )
    return Decision(gain >= rule.min_improvement, reason, score, best)


def is_due(schedule: str, at: datetime, window: timedelta) -> bool:
    """Whether `schedule` fired in (at - window, at]: scheduled CI runs start late, so a window, not a minute."""
    from croniter import croniter

    return bool(croniter(schedule, at - window).get_next(datetime) <= at)


def dispatch_deploy(model: str, candidate: str) -> str:
    """Trigger deploy.yml through the GitHub REST API (`workflow_dispatch`); the token needs actions: write."""
    import httpx

    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise DispatchError("promotion in CI needs GITHUB_TOKEN and GITHUB_REPOSITORY to dispatch deploy.yml")
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    url = f"{api}/repos/{repository}/actions/workflows/deploy.yml/dispatches"
    body = {"ref": os.environ.get("GITHUB_REF_NAME", "main"), "inputs": {"models": model, "candidate": candidate}}
    try:
        response = httpx.post(
            url,
            json=body,
            timeout=30,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
    except httpx.HTTPError as exc:
        raise DispatchError(f"dispatching deploy.yml failed: {exc}") from exc
    if response.status_code != 204:
        raise DispatchError(f"dispatching deploy.yml answered {response.status_code}: {response.text[:300]}")
    return url


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
