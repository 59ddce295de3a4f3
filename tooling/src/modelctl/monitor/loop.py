"""The scheduled monitor (issue 22, item 5): monitor, and on drift or a quality breach alert and, when the model's
config says so (``monitor.retrain_on_drift``), start a retrain, which still has to beat the champion to ship.

A run with too little traffic says so and neither alerts nor retrains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelctl.model import Model
from modelctl.monitor.run import Outcome, monitor
from modelctl.notify import Message, notify

Retrain = Callable[[Model, str], Any]


@dataclass(frozen=True)
class Acted:
    outcome: Outcome
    alerted: bool
    retrain: Any = None  # what the retrain returned (its record), when one ran


def _retrain(model: Model, env: str) -> Any:
    """In CI: dispatch retrain.yml (its jobs separate model code from credentials); elsewhere retrain here."""
    from modelctl.delivery.release import in_ci

    if in_ci():
        from modelctl.monitor.dispatch import dispatch_retrain

        return {"decision": "retrain.yml dispatched", "url": dispatch_retrain(model.name)}
    from modelctl.delivery.retrain import retrain

    return retrain(model, env)


def alert_message(model: Model, outcome: Outcome) -> Message:
    result = outcome.result
    drifted = [c.label for c in result.columns if c.drifted]
    facts = {"rows": str(result.rows), "drifted": ", ".join(drifted) or "none"}
    if result.quality is not None and result.quality.training is not None:
        facts["quality"] = (
            f"live {result.quality.metric} {result.quality.live:.4f} vs training {result.quality.training:.4f}"
        )
    if outcome.html is not None:
        facts["report"] = str(outcome.html)
    return Message(
        title=f"{model.name} in {result.env}: {result.verdict}",
        model=model.name,
        verdict=result.verdict,
        env=result.env,
        version=result.version,
        facts=facts,
        channel=model.config.notify.slack_channel,
    )


def scheduled(
    model: Model,
    env: str,
    since: str | None = None,
    labels: Path | None = None,
    *,
    retrain: Retrain | None = _retrain,
) -> Acted:
    """Monitor; on drift or a breach alert, and start ``retrain`` when ``monitor.retrain_on_drift`` (None: the
    caller retrains itself, as the Airflow DAG does with its own tasks)."""
    outcome = monitor(model, env, since, labels)
    result = outcome.result
    if not result.enough or not (result.drifted or result.breached):
        return Acted(outcome, alerted=False)
    alerted = notify(alert_message(model, outcome))
    ran = retrain(model, env) if retrain is not None and model.config.monitor.retrain_on_drift else None
    return Acted(outcome, alerted=alerted, retrain=ran)


def before_retrain(model: Model, env: str) -> bool:
    """The monitor task in front of a scheduled retrain (the Airflow DAG): alert on drift or a breach; True when the
    retrain should go on. With ``monitor.retrain_on_drift`` only drift or a breach retrains; otherwise the schedule
    does. A monitor that cannot run (no log store, no reference yet) never holds back a scheduled retrain."""
    from modelctl.console import err
    from modelctl.errors import ModelctlError

    try:
        acted = scheduled(model, env, retrain=None)
    except ModelctlError as exc:
        err.print(f"monitor {model.name} in {env} could not run ({exc}); retraining on schedule", markup=False)
        return True
    result = acted.outcome.result
    if not model.config.monitor.retrain_on_drift:
        return True
    go = result.enough and (result.drifted or result.breached)
    err.print(
        f"monitor {model.name} in {env}: {result.verdict}; {'retraining' if go else 'no retrain needed'}", markup=False
    )
    return go
