"""What the dashboard shows, as plain data: collected once (``collect``), then charted and rendered.

Nothing here reads a file or knows HTML; every value is already what a page prints (or None for "not known").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

INPUT_DEFAULT = "tabular"


@dataclass(frozen=True)
class Identity:
    """A model as its ``config.yaml`` describes it (or as far as a broken one could be read)."""

    name: str
    description: str = ""
    owner: str = ""
    framework: str = ""
    task: str = ""
    input_kind: str = INPUT_DEFAULT
    retrain_metric: str = ""
    max_p90_ms: float | None = None
    max_error_rate: float | None = None
    in_repo: bool = True  # False: only the state store knows it (removed from models/, maybe still live)


# Not frozen, with slots: a site of 1,000 models holds ~80,000 releases, and frozen dataclasses are slow to create.
@dataclass(slots=True)
class Gate:
    """The load-test gate numbers of one bento."""

    p90_ms: float | None
    error_rate: float | None
    rps: float | None


@dataclass(frozen=True)
class Report:
    """A load-test report: ``href`` (relative to the site root) when the site holds a copy of ``source``, else None
    (the report is not on the machine that built the site)."""

    name: str
    href: str | None
    source: Path | None = None


@dataclass(slots=True)
class Release:
    """One record of the release ledger; ``number`` counts per environment (``v1`` is the first release there)."""

    env: str
    number: int
    outcome: str
    bento: str | None
    target: str
    at: str
    by: str
    url: str | None = None
    reason: str | None = None
    git_commit: str | None = None
    gate: Gate | None = None
    report: Report | None = None

    @property
    def label(self) -> str:
        return f"v{self.number}" if self.number else "-"


@dataclass(frozen=True)
class RetrainRun:
    """One run of the retrain log: the challenger's and champion's score on the same holdout, and the verdict."""

    at: str
    decision: str
    metric: str
    challenger: float | None
    champion: float | None
    reason: str = ""
    env: str = ""

    @property
    def failed(self) -> bool:
        return self.decision == "failed"


@dataclass(frozen=True)
class DriftCheck:
    """One monitoring result (see ``modelctl.dashboard.drift`` for the record it is read from)."""

    env: str
    at: str
    drifted: bool
    score: float | None = None
    threshold: float | None = None
    features: tuple[str, ...] = ()
    verdict: str = ""

    @property
    def needs_attention(self) -> bool:
        return self.drifted or "quality breached" in self.verdict


@dataclass(frozen=True)
class EnvState:
    """One environment of one model: what is live, the last attempt, its health, its gate and its drift."""

    env: str
    live: Release | None
    last: Release | None
    health: str
    gate: Gate | None
    drift: DriftCheck | None

    @property
    def deployed(self) -> bool:
        return self.live is not None


@dataclass
class ModelView:
    """Everything one model's row and page show."""

    identity: Identity
    envs: list[EnvState] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    retrains: list[RetrainRun] = field(default_factory=list)
    drift: list[DriftCheck] = field(default_factory=list)
    #: One line per source that could not be read (ledger, retrain log, config, monitoring records).
    problems: list[str] = field(default_factory=list)
    ledger_read: bool = True  # False: the ledger could not be read, so "never deployed" is not known

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def last_retrain(self) -> RetrainRun | None:
        return self.retrains[-1] if self.retrains else None

    @property
    def ever_deployed(self) -> bool:
        return any(r.outcome in ("deployed", "rolled_back") for r in self.releases)

    @property
    def drift_status(self) -> str:
        """One of: drift in ENV, ... / no drift / no monitoring yet."""
        checked = [e for e in self.envs if e.drift is not None]
        if not checked:
            return "no monitoring yet"
        drifted = [e.env for e in checked if e.drift is not None and e.drift.drifted]
        return f"drift in {', '.join(drifted)}" if drifted else "no drift"

    @property
    def attention(self) -> list[str]:
        """Why someone should look at this model (empty: nothing to do)."""
        reasons = [f"unreadable: {problem}" for problem in self.problems]
        still_live = [state.env for state in self.envs if state.live is not None]
        if not self.identity.in_repo and still_live:
            reasons.append(f"removed from models/ but still live in {', '.join(still_live)}")
        if self.ledger_read and not self.ever_deployed:
            reasons.append("never deployed")
        for state in self.envs:
            last = state.last
            if last is not None and last.outcome == "failed":
                reasons.append(f"last deploy to {state.env} failed: {last.reason or 'no reason recorded'}")
            if state.live is not None and state.live.outcome == "rolled_back":
                reasons.append(f"rolled back in {state.env} (to {state.live.label} {state.live.bento or ''})".rstrip())
            if state.health == "down":
                reasons.append(f"down in {state.env}")
            if state.drift is not None and state.drift.needs_attention:
                reasons.append(f"monitoring in {state.env}: {state.drift.verdict} (checked {state.drift.at})")
        retrain = self.last_retrain
        if retrain is not None and retrain.failed:
            reasons.append(f"last retrain failed: {retrain.reason or 'no reason recorded'}")
        return reasons


@dataclass(frozen=True)
class Site:
    """The whole dashboard: every model, and when and from where it was built."""

    models: list[ModelView]
    environments: tuple[str, ...]
    built_at: str
