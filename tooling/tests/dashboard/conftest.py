"""A monorepo with models in every state the dashboard must show, and its state store, written through modelctl's
own APIs (the ledger, the retrain log, gate results) and in the record shape `modelctl monitor` writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelctl.ledger import Ledger, Record
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.statestore import Store

CONFIG = """name: {name}
description: {description}
owner: {owner}
framework: {framework}
task: {task}
{extra}"""

HOSTILE = '<script>window.__pwned = 1</script><b>bold</b> & "quoted"'


def write_model(
    root: Path,
    name: str,
    *,
    description: str = "A model for the dashboard tests.",
    owner: str = "data-science",
    framework: str = "sklearn",
    task: str = "classification",
    extra: str = "",
) -> None:
    folder = root / "models" / name
    folder.mkdir(parents=True)
    text = CONFIG.format(
        name=name, description=json.dumps(description), owner=owner, framework=framework, task=task, extra=extra
    )
    (folder / "config.yaml").write_text(text, encoding="utf-8")


def bare_repo(root: Path) -> Repo:
    (root / "models").mkdir(parents=True)
    (root / "cookiecutter-model").mkdir()
    return Repo(root)


def at(day: int, hour: int = 10) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:00:00+00:00"


def deploy(ledger: Ledger, model: str, env: str, bento: str, when: str, **fields: object) -> Record:
    gate = fields.pop("gate", None)
    record = Record(model=model, env=env, target="local", outcome="deployed", bento=f"{model}:{bento}", at=when,
                    triggered_by="alice@laptop", **fields)  # type: ignore[arg-type]  # fmt: skip
    if gate is not None:
        record.loadtest = dict(gate)  # type: ignore[call-overload]
    return ledger.append(record)


@dataclass(frozen=True)
class Scenario:
    repo: Repo
    state: State
    models: tuple[str, ...]  # every model the site must list
    gate_points: dict[str, int]  # chart id -> points of iris_classifier's page
    report_href: str


def gate(p90: float, rps: float, error_rate: float = 0.001, report_dir: str | None = None) -> dict[str, object]:
    numbers: dict[str, object] = {"p90_ms": p90, "rps": rps, "error_rate": error_rate, "requests": 1000}
    if report_dir:
        numbers["report_dir"] = report_dir
    return numbers


def build_scenario(root: Path, store: Store | None = None) -> Scenario:
    """Models in every state, in ``store`` (default: a local folder)."""
    repo = bare_repo(root / "repo")
    state = State(root / "state", given_store=store)
    store = state.store
    ledger, retrains = state.ledger, state.retrain_log

    write_model(repo.root, "iris_classifier", description="Predicts the species of an iris flower.")
    report = repo.root / "reports" / "iris_classifier" / "20261101T100000000000Z"
    report.mkdir(parents=True)
    (report / "report.html").write_text("<!doctype html><title>Locust report</title><h1>Load test</h1>\n")
    deploy(ledger, "iris_classifier", "staging", "aaa", at(1), gate=gate(120, 80, report_dir=str(report)))
    deploy(ledger, "iris_classifier", "production", "aaa", at(2), gate=gate(120, 80))
    deploy(ledger, "iris_classifier", "staging", "bbb", at(3), gate=gate(140, 75))
    deploy(ledger, "iris_classifier", "staging", "ccc", at(4), gate=gate(110, 90))
    deploy(ledger, "iris_classifier", "production", "ccc", at(5), gate=gate(110, 90))
    for day, (challenger, champion, decision) in enumerate(
        [(0.91, 0.90, "kept champion"), (0.95, 0.90, "promoted"), (0.94, 0.95, "kept champion")], start=6
    ):
        retrains.append("iris_classifier", {"at": at(day), "env": "production", "metric": "accuracy",
                                            "decision": decision, "candidate_metrics": {"accuracy": challenger},
                                            "champion_metrics": {"accuracy": champion}})  # fmt: skip
    for day, share in ((6, 0.0), (7, 0.25), (8, 0.1)):
        store.write_json(
            f"monitor/iris_classifier/production/202611{day:02d}T100000000000Z.json",
            {"model": "iris_classifier", "env": "production", "at": f"2026-11-{day:02d}T10:00:00Z",
             "drifted": False, "share_drifted": share, "verdict": "ok", "rows": 500,
             "features": [{"name": "petal_length", "drifted": False, "test": "ks", "p_value": 0.4}]},
        )  # fmt: skip

    write_model(repo.root, "fraud_scorer", description=HOSTILE, owner="risk", framework="xgboost")

    write_model(repo.root, "churn_model", owner="growth", framework="lightgbm", extra="input: text\n")
    deploy(ledger, "churn_model", "staging", "one", at(1), gate=gate(200, 50))
    ledger.append(Record(model="churn_model", env="staging", target="local", outcome="failed",
                         bento="churn_model:two", at=at(2), triggered_by="ci",
                         reason="P90 latency 900 ms exceeds loadtest.max_p90_ms 500 ms"))  # fmt: skip

    write_model(repo.root, "rolled_model", task="regression")
    first = deploy(ledger, "rolled_model", "staging", "good", at(1), gate=gate(90, 100))
    deploy(ledger, "rolled_model", "staging", "bad", at(2), gate=gate(95, 100))
    ledger.append(Record(model="rolled_model", env="staging", target="local", outcome="rolled_back",
                         bento="rolled_model:good", version=first.version, at=at(3)))  # fmt: skip
    store.write_json(
        "monitor/rolled_model/staging/20261103T100000000000Z.json",
        {"at": "2026-11-03T10:00:00Z", "drifted": True, "share_drifted": 0.75, "verdict": "drift",
         "features": [{"name": "age", "drifted": True}, {"name": "income", "drifted": False}]},
    )  # fmt: skip

    write_model(repo.root, "retrain_failed")
    deploy(ledger, "retrain_failed", "staging", "v", at(1), gate=gate(100, 60))
    retrains.append("retrain_failed", {"at": at(2), "decision": "failed", "failed_step": "extract",
                                       "reason": "no rows since the last run"})  # fmt: skip

    write_model(repo.root, "broken_ledger")
    store.write("ledger/broken_ledger.json", b'{"records": [{"model": "broken_ledger"}]}')

    # Removed from models/, still in the ledger (maybe still live).
    deploy(ledger, "gone_model", "production", "old", at(1), gate=gate(100, 60))

    models = ("broken_ledger", "churn_model", "fraud_scorer", "iris_classifier", "retrain_failed", "rolled_model")
    return Scenario(
        repo=repo,
        state=state,
        models=(*models, "gone_model"),
        gate_points={"chart-p90": 5, "chart-rps": 5, "chart-retrain": 6, "chart-drift": 3},
        report_href="reports/iris_classifier/20261101T100000000000Z/report.html",
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return build_scenario(tmp_path_factory.mktemp("dashboard"))
