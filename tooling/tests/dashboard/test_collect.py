"""What the dashboard reads from the repository and the state store, before any HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelctl.dashboard import drift
from modelctl.dashboard.collect import collect, identity, report
from modelctl.dashboard.model import ModelView, Report
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.statestore import open_store
from tests.dashboard.conftest import HOSTILE, Scenario, bare_repo, build_scenario, write_model
from tests.s3_stand_in import use_s3


def views(scenario: Scenario) -> dict[str, ModelView]:
    site = collect(scenario.repo, scenario.state)
    return {view.name: view for view in site.models}


def test_every_model_is_collected_deployed_or_not(scenario: Scenario) -> None:
    found = views(scenario)
    assert sorted(found) == sorted(scenario.models)
    assert found["fraud_scorer"].attention == ["never deployed"]
    assert found["fraud_scorer"].identity.description == HOSTILE
    assert not found["gone_model"].identity.in_repo
    assert [e.live.label if e.live else None for e in found["gone_model"].envs] == [None, "v1"]
    assert found["gone_model"].attention == ["removed from models/ but still live in production"]


def test_releases_are_numbered_per_environment_with_their_bento(scenario: Scenario) -> None:
    iris = views(scenario)["iris_classifier"]
    staging, production = iris.envs
    assert (staging.env, staging.live.label, staging.live.bento) == ("staging", "v3", "iris_classifier:ccc")  # type: ignore[union-attr]
    assert (production.env, production.live.label, production.live.bento) == (  # type: ignore[union-attr]
        "production", "v2", "iris_classifier:ccc"
    )  # fmt: skip
    assert production.gate is not None and (production.gate.p90_ms, production.gate.rps) == (110, 90)
    assert [(r.env, r.number) for r in iris.releases] == [
        ("staging", 1), ("production", 1), ("staging", 2), ("staging", 3), ("production", 2)
    ]  # fmt: skip
    assert iris.attention == []


def test_what_needs_attention_and_why(scenario: Scenario) -> None:
    found = views(scenario)
    assert found["churn_model"].attention == [
        "last deploy to staging failed: P90 latency 900 ms exceeds loadtest.max_p90_ms 500 ms"
    ]
    rolled = found["rolled_model"].attention
    assert rolled[0] == "rolled back in staging (to v1 rolled_model:good)"
    assert rolled[1].startswith("monitoring in staging: drift (checked 2026-11-03T10:00:00Z)")
    assert found["retrain_failed"].attention == ["last retrain failed: no rows since the last run"]
    assert found["churn_model"].identity.input_kind == "text"
    assert found["iris_classifier"].identity.input_kind == "tabular"


def test_a_corrupt_ledger_is_one_line_naming_it_and_the_rest_still_builds(scenario: Scenario) -> None:
    found = views(scenario)
    broken = found["broken_ledger"]
    assert len(broken.problems) == 1
    problem = broken.problems[0]
    assert "broken_ledger.json" in problem and "has no 'env'" in problem and "\n" not in problem
    assert "modelctl ledger restore broken_ledger" in problem
    assert broken.attention == [f"unreadable: {problem}"], "an unreadable ledger is not claimed to be 'never deployed'"
    assert found["iris_classifier"].releases, "the other models are still read"


def test_drift_records_as_modelctl_monitor_writes_them(scenario: Scenario) -> None:
    iris = views(scenario)["iris_classifier"]
    assert [(c.env, c.score, c.drifted, c.verdict) for c in iris.drift] == [
        ("production", 0.0, False, "ok"), ("production", 0.25, False, "ok"), ("production", 0.1, False, "ok")
    ]  # fmt: skip
    assert iris.drift_status == "no drift"
    rolled = views(scenario)["rolled_model"]
    assert rolled.drift[0].features == ("age",) and rolled.drift_status == "drift in staging"
    assert views(scenario)["churn_model"].drift_status == "no monitoring yet"


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ([], "is a list, not an object"),
        ({"drifted": True}, "field 'at' should be a time (a string), found null"),
        ({"at": "2026-11-01T00:00:00Z", "drifted": "yes"}, "field 'drifted' should be true/false, found a string"),
        ({"at": "2026-11-01T00:00:00Z", "drifted": True, "score": "high"}, "field 'score' should be a number"),
        ({"at": "2026-11-01T00:00:00Z", "drifted": True, "features": 3}, "field 'features' should be a list"),
    ],
)
def test_an_unreadable_drift_record_is_named_and_the_others_count(tmp_path: Path, record: object, problem: str) -> None:
    store = State(tmp_path / "state").store
    store.write_json("monitor/m/staging/1.json", record)
    store.write_json("monitor/m/staging/2.json", {"at": "2026-11-02T00:00:00Z", "drifted": True, "score": 0.5})
    checks, problems = drift.read(store, drift.keys_by_model(store)["m"])
    assert [(c.at, c.drifted, c.score) for c in checks] == [("2026-11-02T00:00:00Z", True, 0.5)]
    assert len(problems) == 1 and problems[0].startswith(store.where("monitor/m/staging/1.json"))
    assert problem in problems[0]


def test_a_broken_config_still_lists_the_model_with_what_could_be_read(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "repo")
    write_model(repo.root, "odd", owner="ops", extra="serving: {workers: 0}\n")
    found, problem = identity(repo.model_dir("odd") / "config.yaml", "odd")
    assert (found.name, found.owner, found.framework) == ("odd", "ops", "sklearn")
    assert problem is not None and "config.yaml:6" in problem and "serving.workers" in problem
    site = collect(repo, State(tmp_path / "state"))
    assert site.models[0].attention[0].startswith("unreadable: ") and "never deployed" in site.models[0].attention


def test_only_reports_inside_the_repository_are_published(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "repo")
    inside = repo.root / "reports" / "m" / "run1"
    inside.mkdir(parents=True)
    (inside / "report.html").write_text("report")
    outside = tmp_path / "elsewhere" / "run2"
    outside.mkdir(parents=True)
    (outside / "report.html").write_text("secret")
    href = "reports/m/run1/report.html"
    assert report(repo, "m", str(inside)) == Report("run1", href, inside / "report.html")
    # The path the gate's runner recorded (CI downloads the build jobs' reports into reports/ of its checkout).
    assert report(repo, "m", "/home/runner/work/mono/mono/reports/m/run1").href == href  # type: ignore[union-attr]
    assert report(repo, "m", str(outside)) == Report("run2", None)
    assert report(repo, "m", str(repo.root / "reports" / "m" / ".." / ".." / "elsewhere" / "run2")).href is None  # type: ignore[union-attr]
    assert report(repo, "other", str(inside)).href is None  # type: ignore[union-attr]
    assert report(repo, "m", str(repo.root / "reports" / "m" / "gone")).href is None  # type: ignore[union-attr]
    linked = repo.root / "reports" / "m" / "run3"
    linked.mkdir()
    (linked / "report.html").symlink_to(outside / "report.html")
    assert report(repo, "m", str(linked)) == Report("run3", None), "a link out of reports/ is not followed"
    assert report(repo, "m", None) is None


def test_the_ledger_lists_models_without_reading_the_rest_of_the_store(tmp_path: Path) -> None:
    state = State(tmp_path / "state")
    state.store.write_json("ledger/a.json", {"model": "a", "records": []})
    state.retrain_log.append("b", {"decision": "kept champion"})
    state.store.write_json("gates/c/1.json", {})
    assert state.ledger.models() == ["a"]
    assert json.loads((tmp_path / "state" / "ledger" / "a.json").read_text())["model"] == "a"


def test_a_model_folder_whose_name_the_store_cannot_hold(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "repo")
    write_model(repo.root, "Bad Name")
    site = collect(Repo(repo.root), State(tmp_path / "state"))
    (view,) = site.models
    assert any("model name" in p for p in view.problems) and not view.ledger_read


def test_an_object_store_gives_the_same_site(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    """The same records in S3 (moto's server; read by several threads at once) read as in a local folder."""
    url = use_s3(monkeypatch, s3_endpoint)
    in_s3 = build_scenario(tmp_path, open_store(url, base=tmp_path))

    def summary(found: dict[str, ModelView]) -> dict[str, object]:
        return {
            name: ([(r.env, r.number, r.outcome, r.bento) for r in view.releases], len(view.retrains),
                   [(c.env, c.score) for c in view.drift], len(view.attention), len(view.problems))
            for name, view in found.items()
        }  # fmt: skip

    from_s3 = views(in_s3)
    assert summary(from_s3) == summary(views(scenario))
    assert from_s3["broken_ledger"].problems[0].startswith(f"{url}/ledger/broken_ledger.json is not a release ledger")


@pytest.mark.parametrize(
    ("written", "shown"), [("", "tabular"), ("input: text\n", "text"), ("input: {kind: image}\n", "image")]
)
def test_the_input_kind_is_read_whatever_this_schema_knows_of_it(tmp_path: Path, written: str, shown: str) -> None:
    """`input` comes with a newer template: absent means tabular, and a form this schema does not accept (or a
    schema without the key at all) still leaves the rest of the config valid and the kind shown."""
    repo = bare_repo(tmp_path / "repo")
    write_model(repo.root, "m", extra=written)
    found, problem = identity(repo.model_dir("m") / "config.yaml", "m")
    assert (found.input_kind, problem, found.retrain_metric) == (shown, None, "accuracy")
